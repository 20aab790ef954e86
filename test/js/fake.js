// A small fake of the `messenger` API the extension uses, and a scriptable
// native host behind runtime.connectNative. Install it with
// installMessenger() before importing an extension module.

import { readFileSync } from "node:fs";

const ROOT = new URL("../../extension/", import.meta.url);

/** The messages of extension/_locales/<locale>/messages.json. */
export function loadMessages(locale) {
  return JSON.parse(readFileSync(new URL(`_locales/${locale}/messages.json`, ROOT), "utf8"));
}

export function event() {
  const listeners = [];
  return {
    listeners,
    addListener: fn => listeners.push(fn),
    removeListener: fn => listeners.splice(listeners.indexOf(fn) >>> 0, 1),
    hasListener: fn => listeners.includes(fn),
  };
}

function storageArea(initial = {}) {
  const data = structuredClone(initial);
  return {
    data,
    async get(key) {
      if (key == null) {
        return structuredClone(data);
      }
      const keys = typeof key === "string" ? [key] : Array.isArray(key) ? key : Object.keys(key);
      return Object.fromEntries(keys.filter(k => k in data).map(k => [k, structuredClone(data[k])]));
    },
    async set(values) {
      Object.assign(data, structuredClone(values));
    },
  };
}

/**
 * The native host's end of a port: records what the extension sends,
 * answers requests with `handlers[type](request, host)` (a thrown
 * {code, message, ...} becomes an error reply; a handler that returns
 * host.HOLD leaves the request unanswered), and can send requests to the
 * extension (request()).
 */
export class FakeHost {
  static HOLD = Symbol("hold");
  HOLD = FakeHost.HOLD;
  handlers = {};
  sent = []; // messages from the extension
  ports = 0; // connections opened
  #port = null;
  #nextId = 1;
  #waiting = new Map(); // id of our request -> resolve

  connect() {
    this.ports++;
    const onMessage = event();
    const onDisconnect = event();
    const port = {
      name: "credsync",
      error: null,
      onMessage,
      onDisconnect,
      postMessage: msg => {
        if (this.#port !== port) {
          throw new Error("Attempt to postMessage on disconnected port");
        }
        const copy = structuredClone(msg);
        this.sent.push(copy);
        queueMicrotask(() => this.#receive(copy));
      },
      disconnect: () => {
        if (this.#port === port) {
          this.#port = null;
        }
      },
    };
    this.#port = port;
    return port;
  }

  get connected() {
    return this.#port !== null;
  }

  /** Delivers a message from the host to the extension. */
  post(msg) {
    this.#port.onMessage.listeners.forEach(l => l(structuredClone(msg)));
  }

  /** The host exits: the port closes with an error. */
  exit(error = "the program exited") {
    const port = this.#port;
    this.#port = null;
    port.onDisconnect.listeners.forEach(l => l({ error: { message: error } }));
  }

  /** Sends a request to the extension and resolves with its reply. */
  request(type, members = {}) {
    const id = `h${this.#nextId++}`;
    return new Promise(resolve => {
      this.#waiting.set(id, resolve);
      this.post({ ...members, id, type });
    });
  }

  requests(type) {
    return this.sent.filter(m => m.type === type && "id" in m && !("status" in m));
  }

  async #receive(msg) {
    if ("status" in msg) {
      this.#waiting.get(msg.id)?.(msg);
      this.#waiting.delete(msg.id);
      return;
    }
    const handler = this.handlers[msg.type];
    if (!handler) {
      this.post({ id: msg.id, status: "error", code: "unknown_type", message: "no handler" });
      return;
    }
    try {
      const result = await handler(msg, this);
      if (result !== FakeHost.HOLD && this.#port) {
        this.post({ id: msg.id, status: "ok", result });
      }
    } catch (e) {
      if (this.#port) {
        this.post({ ...e, id: msg.id, status: "error" });
      }
    }
  }
}

/**
 * A fake messenger. options: locale, local/managed/session storage
 * contents, accounts (Experiment listAccounts facts), identities (account
 * id -> email, or {email, name}), logins (origin\nusername -> password), writeLogins.
 */
export function fakeMessenger(options = {}) {
  const messages = loadMessages(options.locale ?? "en");
  const host = new FakeHost();
  const shown = []; // notifications created
  const logins = new Map(Object.entries(options.logins ?? {}));
  // An account's default identity: options.identities[id] is its e-mail
  // address, or {email, name}.
  const identity = id => {
    const v = options.identities?.[id];
    return v && typeof v === "object" ? { email: v.email ?? "", name: v.name ?? "" } : { email: v ?? "" };
  };
  const m = {
    host,
    shown,
    logins,
    writes: [], // writeLogins calls
    i18n: {
      getUILanguage: () => options.locale ?? "en",
      getMessage(key, subs = []) {
        const entry = messages[key];
        if (!entry) {
          return "";
        }
        const list = Array.isArray(subs) ? subs : [subs];
        return entry.message.replace(/\$(\d)/g, (_, n) => list[n - 1] ?? "");
      },
    },
    runtime: {
      onMessage: event(),
      onConnect: event(),
      onStartup: event(),
      connectNative: name => {
        if (options.noHost) {
          throw new Error(`No such native application ${name}`);
        }
        return host.connect(name);
      },
      // As Thunderbird: the first listener's answer that is not false.
      async sendMessage(message) {
        for (const listener of m.runtime.onMessage.listeners) {
          const answer = listener(structuredClone(message), {});
          if (answer !== false && answer !== undefined) {
            return structuredClone(await answer);
          }
        }
        return undefined;
      },
      openOptionsPage: async () => {},
    },
    storage: {
      local: storageArea(options.local),
      session: storageArea(options.session),
      managed: options.managed
        ? storageArea(options.managed)
        : { get: async () => Promise.reject(new Error("Managed storage manifest not found")) },
    },
    notifications: {
      create: async (id, details) => {
        shown.push({ id, ...details });
        return id;
      },
      clear: async () => true,
      onClicked: event(),
    },
    action: options.openPopup === false ? {} : { openPopup: async () => m.opened.push("popup") },
    opened: [], // action.openPopup calls and tabs created
    alarms: { created: [], onAlarm: event(), create(name, info) { this.created.push({ name, ...info }); } },
    accounts: {
      get: async id => ({ id, identities: [identity(id)] }),
      list: async () => (options.accounts ?? []).map(a => ({ id: a.id, identities: [identity(a.id)] })),
      getDefault: async () => null,
    },
    tabs: {
      create: async details => {
        m.opened.push(details.url);
        return { id: 1, ...details };
      },
    },
    windows: { openDefaultBrowser: async () => {} },
    paused: new Map(), // account id -> pauses
    checkCalls: [], // pauseChecks, resumeChecks, resumeAllChecks
    credsync: {
      onLoginChanged: event(),
      onLoginFailed: event(),
      pauseChecks: async ids => {
        m.checkCalls.push(`pause ${ids.join(",")}`);
        const known = ids.filter(id => (options.accounts ?? []).some(a => a.id === id));
        known.forEach(id => m.paused.set(id, (m.paused.get(id) ?? 0) + 1));
        return known;
      },
      resumeChecks: async ids => {
        m.checkCalls.push(`resume ${ids.join(",")}`);
        const known = ids.filter(id => m.paused.has(id));
        known.forEach(id => (m.paused.get(id) > 1 ? m.paused.set(id, m.paused.get(id) - 1) : m.paused.delete(id)));
        return known;
      },
      resumeAllChecks: async () => {
        m.checkCalls.push("resumeAll");
        m.paused.clear();
      },
      pausedChecks: async () => [...m.paused.keys()],
      listAccounts: async salt => {
        const accounts = structuredClone(options.accounts ?? []);
        const locked = options.locked === true;
        if (salt !== undefined && !locked) {
          for (const a of accounts) {
            for (const ep of [a.incoming, a.outgoing].filter(Boolean)) {
              ep.saved = logins.has(`${ep.origin}\n${ep.username}`) ? `fp:${logins.get(`${ep.origin}\n${ep.username}`)}` : null;
            }
          }
        }
        return { accounts, locked };
      },
      readLogin: async (origin, username) => logins.get(`${origin}\n${username}`) ?? null,
      writeLogins: async (salt, list) => {
        m.writes.push({ salt, logins: structuredClone(list) });
        if (options.writeLogins) {
          return options.writeLogins(salt, list);
        }
        for (const l of list) {
          logins.set(`${l.origin}\n${l.username}`, l.password);
        }
        return { logins: list.map(({ origin, username }) => ({ origin, username, state: "stored" })) };
      },
    },
  };
  return m;
}

/** Installs a fake messenger as globalThis.messenger and returns it. */
export function installMessenger(options) {
  const m = fakeMessenger(options);
  globalThis.messenger = m;
  return m;
}

/** An IMAP account with an SMTP server, as the Experiment lists it. */
export function imapAccount(id, { name = id, host = "mail.example.org", user = "mario", authMethod = 3, outgoing = true } = {}) {
  const ep = (protocol, port, origin) => ({ protocol, host, port, socketType: 3, authMethod, username: user, origin });
  return {
    id,
    name,
    incoming: ep("imap", 993, `imap://${host}`),
    outgoing: outgoing ? ep("smtp", 465, `smtp://${host}`) : null,
  };
}

/** Resolves after pending promise jobs and timers of 0 ms. */
export function settle(ms = 0) {
  return new Promise(resolve => setTimeout(resolve, ms));
}
