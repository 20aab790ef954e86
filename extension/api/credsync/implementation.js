// credsync Experiment, parent side: primitives only, each documented in
// schema.json; every decision is the host's (PROTOCOL.md). Works on
// Thunderbird 128, 140 and 153 by feature detection. No password ever goes
// into an error message, the console or an event.

"use strict";

var { MailServices } = ChromeUtils.importESModule("resource:///modules/MailServices.sys.mjs");
// The Experiment's sandbox may lack TextEncoder; every module global has it.
var Encoder = globalThis.TextEncoder ?? Cu.getGlobalForObject(MailServices).TextEncoder;

// How long a write of writeLogins waits for its storage notification.
const OWN_WRITE_MS = 60 * 1000;
const MAIL_ORIGIN = /^(imap|mailbox|smtp):\/\//i;

// The origin (== httpRealm) of a server's saved login, no user, no port:
// IMAP the raw host (nsMsgIncomingServer); POP3 mailbox:// and the encoded,
// bracketed host (MsgIncomingServer._getServerURI); SMTP the bracketed host
// (SmtpServer._getServerURISpec).
function loginOrigin(protocol, host) {
  const bracketed = host.includes(":") ? `[${host}]` : host;
  const origins = { imap: `imap://${host}`, pop3: `mailbox://${encodeURIComponent(bracketed)}`, smtp: `smtp://${bracketed}` };
  return origins[protocol];
}

// SHA-256 of the certificate of Thunderbird's exception for host:port
// (nsICertOverride.fingerprint "AB:CD:…") as 64 hex digits, or undefined.
function certSha256(host, port) {
  try {
    const overrides = Cc["@mozilla.org/security/certoverride;1"].getService(Ci.nsICertOverrideService).getOverrides();
    const hex = overrides.find(o => o.asciiHost === host && o.port === port)?.fingerprint.replace(/:/g, "").toLowerCase();
    return /^[0-9a-f]{64}$/.test(hex) ? hex : undefined;
  } catch (e) {
    return undefined;
  }
}

function endpoint(protocol, host, port, server) {
  const { socketType, authMethod, username } = server;
  const cert = certSha256(host, port);
  const ep = { protocol, host, port, socketType, authMethod, username, origin: loginOrigin(protocol, host) };
  return cert ? { ...ep, certSha256: cert } : ep;
}

// nsIMsgIncomingServer: hostName up to 140, hostname from 153. Its port
// getter already returns the protocol default.
function incomingOf(account) {
  const server = account.incomingServer;
  if (!server || !["imap", "pop3"].includes(server.type)) {
    return null;
  }
  return { server, endpoint: endpoint(server.type, server.hostname ?? server.hostName, server.port, server) };
}

// The outgoing server of the account's default identity, or null.
function outgoingOf(account) {
  try {
    const server = account.defaultIdentity && MailServices.outgoingServer.getServerByIdentity(account.defaultIdentity);
    return server ? { server, endpoint: smtpEndpoint(server) } : null;
  } catch (e) {
    return null;
  }
}

// Host and port live on nsISmtpServer; port 0 is the default SmtpClient picks.
function smtpEndpoint(server) {
  const smtp = server.QueryInterface(Ci.nsISmtpServer);
  return endpoint("smtp", smtp.hostname, smtp.port || (server.socketType === 3 ? 465 : 587), server);
}

// Lowercase hex SHA-256 of the UTF-8 of salt + ":" + password.
function fingerprint(salt, password) {
  const hash = Cc["@mozilla.org/security/hash;1"].createInstance(Ci.nsICryptoHash);
  hash.init(Ci.nsICryptoHash.SHA256);
  const bytes = Array.from(new Encoder().encode(`${salt}:${password}`));
  hash.update(bytes, bytes.length);
  return Array.from(hash.finish(false), c => c.charCodeAt(0).toString(16).padStart(2, "0")).join("");
}

async function findLogin(origin, username) {
  const logins = await Services.logins.searchLoginsAsync({ origin, httpRealm: origin });
  return logins.find(l => l.username === username) ?? null;
}

// Login-manager writes: async in 153, synchronous modify/remove in 128/140.
// Services is looked up at each call (the e2e harness swaps it to inject faults).
const loginStore = {
  add: login => Services.logins.addLoginAsync(login),
  modify: (old, changes) =>
    Services.logins.modifyLoginAsync ? Services.logins.modifyLoginAsync(old, changes) : Services.logins.modifyLogin(old, changes),
  remove: login => (Services.logins.removeLoginAsync ? Services.logins.removeLoginAsync(login) : Services.logins.removeLogin(login)),
};

function passwordBag(password) {
  const bag = Cc["@mozilla.org/hash-property-bag;1"].createInstance(Ci.nsIWritablePropertyBag2);
  bag.setPropertyAsAString("password", password);
  return bag;
}

// ---- own writes: every write (and undo) of writeLogins is announced as
// origin + user + fingerprint with a per-session salt; the storage observer
// consumes it and reports the change byCredsync.
const SESSION_SALT = Services.uuid.generateUUID().toString();
const ownWrites = new Map(); // key -> [expiry, ...]

function writeKey(origin, username, password) {
  return `${origin.toLowerCase()}\n${username}\n${fingerprint(SESSION_SALT, password)}`;
}

// With add, announces the write; without, consumes one announcement and
// says whether there was one.
function ownWrite(key, add) {
  const now = Date.now();
  const list = (ownWrites.get(key) ?? []).filter(t => t > now);
  const ours = list.length > 0;
  add ? list.push(now + OWN_WRITE_MS) : list.shift();
  list.length ? ownWrites.set(key, list) : ownWrites.delete(key);
  return ours;
}

async function announced(origin, username, password, write) {
  const key = writeKey(origin, username, password);
  ownWrite(key, true);
  try {
    return await write();
  } catch (e) {
    ownWrite(key, false);
    throw e;
  }
}

// Writes one login: modifies `existing`, or adds it.
async function writeOne({ origin, username, password }, existing) {
  if (existing) {
    return announced(origin, username, password, () => loginStore.modify(existing, passwordBag(password)));
  }
  const login = Cc["@mozilla.org/login-manager/loginInfo;1"].createInstance(Ci.nsILoginInfo);
  login.init(origin, null, origin, username, password, "", "");
  return announced(origin, username, password, () => loginStore.add(login));
}

// Puts back the password a login had before (`before`), or removes it.
function undoOf({ origin, username }, before) {
  if (before === null) {
    return async () => loginStore.remove(await findLogin(origin, username));
  }
  return () =>
    announced(origin, username, before, async () => loginStore.modify(await findLogin(origin, username), passwordBag(before)));
}

// Unlocks the primary password with Thunderbird's own prompt if it is set
// and locked (after a prompt already open elsewhere closes); false when it
// was not entered. Token: nsIPKCS11Token in 153, nsIPK11Token in 128/140.
async function ensureUnlocked() {
  if (!Services.logins.isLoggedIn && Services.logins.uiBusy) {
    const topics = ["passwordmgr-crypto-login", "passwordmgr-crypto-loginCanceled"];
    await new Promise(resolve => {
      const observer = () => resolve(topics.forEach(t => Services.obs.removeObserver(observer, t)));
      topics.forEach(t => Services.obs.addObserver(observer, t));
    });
  }
  const token153 = "@mozilla.org/security/internalkeytoken;1";
  try {
    if (!Services.logins.isLoggedIn && token153 in Cc) {
      Cc[token153].createInstance(Ci.nsIPKCS11Token).login();
    } else if (!Services.logins.isLoggedIn) {
      Cc["@mozilla.org/security/pk11tokendb;1"].createInstance(Ci.nsIPK11TokenDB).getInternalKeyToken().login(true);
    }
  } catch (e) {
    // Cancel throws; isLoggedIn decides.
  }
  return Services.logins.isLoggedIn;
}

// Makes the servers using a written login drop cached passwords and
// connections, so the running Thunderbird uses it at once. Best effort.
function refreshServers(written) {
  const keys = new Set(written.map(l => `${l.origin.toLowerCase()}\n${l.username}`));
  for (const account of MailServices.accounts.accounts) {
    for (const [found, forget] of [
      [incomingOf(account), s => s.forgetSessionPassword(false)],
      [outgoingOf(account), s => (s.password = "")],
    ]) {
      try {
        if (found && keys.has(`${found.endpoint.origin.toLowerCase()}\n${found.endpoint.username}`)) {
          forget(found.server);
          found.server.closeCachedConnections();
        }
      } catch (e) {
        console.warn(`credsync: could not refresh a server: ${e.name || e}`);
      }
    }
  }
}

async function listAccounts(salt) {
  await Services.logins.initializationPromise;
  const locked = !Services.logins.isLoggedIn;
  const accounts = [];
  for (const account of MailServices.accounts.accounts) {
    const incoming = incomingOf(account)?.endpoint;
    if (!incoming) {
      continue;
    }
    const outgoing = outgoingOf(account)?.endpoint ?? null;
    for (const ep of salt && !locked ? [incoming, outgoing].filter(Boolean) : []) {
      const login = await findLogin(ep.origin, ep.username);
      ep.saved = login ? fingerprint(salt, login.password) : null;
    }
    accounts.push({ id: account.key, name: account.incomingServer.prettyName, incoming, outgoing });
  }
  return { accounts, locked };
}

async function readLogin(origin, username) {
  await Services.logins.initializationPromise;
  return Services.logins.isLoggedIn ? ((await findLogin(origin, username))?.password ?? null) : null;
}

// After a write threw: "unchanged" if the login is as before; "landed" if
// it holds the new password after all (it is then undone with the others);
// else "unknown".
async function afterFailure({ origin, username, password }, before) {
  const now = await findLogin(origin, username).then(l => l?.password ?? null, () => undefined);
  return now === password ? "landed" : now === before ? "unchanged" : "unknown";
}

async function writeLogins(salt, logins) {
  const states = logins.map(({ origin, username }) => ({ origin, username, state: "unchanged" }));
  const fail = (code, message) => ({ code, message, logins: states });
  await Services.logins.initializationPromise;
  if (!(await ensureUnlocked())) {
    return fail("store_cancelled", "the primary password was not entered; nothing was written");
  }
  const found = [];
  for (const l of logins) {
    const existing = await findLogin(l.origin, l.username);
    const now = existing ? fingerprint(salt, existing.password) : "none";
    if (l.expect !== "any" && l.expect !== now) {
      return fail("store_conflict", `the saved login ${l.origin} of ${l.username} changed meanwhile; nothing was written`);
    }
    found.push(existing);
  }
  const written = []; // indexes, in order
  for (const [i, l] of logins.entries()) {
    try {
      await writeOne(l, found[i]);
      states[i].state = "stored";
      written.push(i);
    } catch (e) {
      const after = await afterFailure(l, found[i]?.password ?? null);
      after === "landed" ? written.push(i) : (states[i].state = after);
      for (const j of written.reverse()) {
        const undo = undoOf(logins[j], found[j]?.password ?? null);
        states[j].state = await undo().then(() => "restored", () => "unknown");
      }
      const reason = `${e.name || "Error"}: ${e.message ?? ""}`.split(l.password).join("***").slice(0, 200);
      const left = states.some(s => s.state === "unknown") ? "some logins may hold the new password" : "nothing was changed";
      const code = e.result === Cr.NS_ERROR_ABORT ? "store_cancelled" : "store_failed";
      return fail(code, `could not save the login ${l.origin} of ${l.username} (${reason}); ${left}`);
    }
  }
  refreshServers(logins);
  return { logins: states };
}

// ---- Thunderbird's own background checks (biff), paused while the host
// waits for mail servers that lag behind the provider (PROTOCOL.md,
// "pause"/"resume"): they would log in with the old password, which the
// servers refuse once they caught up, each failure counting towards a
// lockout. An account's incoming server leaves the biff manager's
// schedule (nsIMsgBiffManager.removeServerBiff) in memory only: no
// preference is written (check_new_mail, check_time stay as the user set
// them), so a crash or a restart leaves nothing paused. resumeChecks puts
// back exactly the servers pauseChecks took out (addServerBiff), and only
// if they still check for new mail.
const paused = new Map(); // account key -> {count, removed}

function biffManager() {
  return Cc["@mozilla.org/messenger/biffManager;1"].getService(Ci.nsIMsgBiffManager);
}

function incomingServer(key) {
  for (const account of MailServices.accounts.accounts) {
    if (account.key === key) {
      return account.incomingServer ?? null;
    }
  }
  return null;
}

function pauseChecks(keys) {
  const done = [];
  for (const key of new Set(keys)) {
    const entry = paused.get(key);
    const server = incomingServer(key);
    if (entry) {
      entry.count++;
    } else if (server) {
      const removed = Boolean(server.doBiff) && server.biffMinutes > 0;
      if (removed) {
        biffManager().removeServerBiff(server);
      }
      paused.set(key, { count: 1, removed });
    } else {
      continue;
    }
    done.push(key);
  }
  return done;
}

function resumeChecks(keys) {
  const done = [];
  for (const key of new Set(keys)) {
    const entry = paused.get(key);
    if (!entry) {
      continue;
    }
    done.push(key);
    if (--entry.count > 0) {
      continue;
    }
    paused.delete(key);
    const server = incomingServer(key);
    if (entry.removed && server?.doBiff) {
      biffManager().addServerBiff(server);
    }
  }
  return done;
}

function resumeAll() {
  for (const [key, entry] of paused) {
    entry.count = 1;
    try {
      resumeChecks([key]);
    } catch (e) {
      console.error(`credsync: could not resume the checks of an account: ${e.name || "error"}`);
    }
  }
}

// passwordmgr-storage-changed: addLogin (subject nsILoginInfo) or
// modifyLogin (subject nsIArray [old, new]) of a mail login.
const listeners = new Set(); // fire objects of onLoginChanged

function onStorageChanged(subject, topic, data) {
  if (data !== "addLogin" && data !== "modifyLogin") {
    return;
  }
  try {
    const pair = data === "modifyLogin" ? subject.QueryInterface(Ci.nsIArray) : null;
    const before = pair?.queryElementAt(0, Ci.nsILoginInfo);
    const login = pair ? pair.queryElementAt(1, Ci.nsILoginInfo) : subject.QueryInterface(Ci.nsILoginInfo);
    if (!MAIL_ORIGIN.test(login.origin ?? "") || !login.password) {
      return;
    }
    // Consumed first, so that an announced write of an unchanged password expires no later.
    const byCredsync = ownWrite(writeKey(login.origin, login.username, login.password), false);
    if (before && before.password === login.password && before.username === login.username && before.origin === login.origin) {
      return;
    }
    const change = { origin: login.origin, username: login.username, byCredsync };
    listeners.forEach(l => l.fire.async(change));
  } catch (e) {
    console.error(`credsync: login observer: ${e.name || "error"}`);
  }
}

// common-dialog-loaded: Thunderbird's own question after a refused login
// ("Login to server %1$S with username %2$S failed.": IMAP, POP3 and SMTP
// all ask it with messenger.properties' mailServerLoginFailed2). Recognised
// by that exact text, formatted by Thunderbird in its own language, for one
// of the accounts' servers; reported as the server's login.
const failureListeners = new Set(); // fire objects of onLoginFailed

function onDialogLoaded(dialog) {
  try {
    const args = dialog?.args;
    if (args?.promptType !== "confirmEx" || typeof args.text !== "string") {
      return;
    }
    const bundle = Services.strings.createBundle("chrome://messenger/locale/messenger.properties");
    const failed = new Map();
    for (const account of MailServices.accounts.accounts) {
      for (const side of [incomingOf(account), outgoingOf(account)]) {
        const { host, username, origin } = side?.endpoint ?? {};
        if (origin && username && args.text === bundle.formatStringFromName("mailServerLoginFailed2", [host, username])) {
          failed.set(`${origin}\n${username}`, { origin, username });
        }
      }
    }
    failed.forEach(login => failureListeners.forEach(l => l.fire.async(login)));
  } catch (e) {
    console.error(`credsync: dialog observer: ${e.name || "error"}`);
  }
}

// Every error reaches the add-on as "code: message"; an unexpected one
// without its message (which could in theory echo data).
function guard(code, fn) {
  return async (...args) => {
    try {
      return await fn(...args);
    } catch (e) {
      console.error(`credsync: ${code}: ${e.name || "error"}`);
      throw new ExtensionUtils.ExtensionError(`${code}: unexpected ${e.name || "error"} in Thunderbird`);
    }
  };
}

// A persistent event's registration, keeping its fire object in set.
function persistent(set) {
  return ({ fire }) => {
    const listener = { fire };
    set.add(listener);
    return { unregister: () => set.delete(listener), convert: newFire => (listener.fire = newFire) };
  };
}

const STORAGE_TOPIC = "passwordmgr-storage-changed";
const DIALOG_TOPIC = "common-dialog-loaded";

var credsync = class extends ExtensionCommon.ExtensionAPIPersistent {
  constructor(extension) {
    super(extension);
    this.observer = { observe: onStorageChanged };
    this.dialogObserver = { observe: onDialogLoaded };
    Services.obs.addObserver(this.observer, STORAGE_TOPIC);
    Services.obs.addObserver(this.dialogObserver, DIALOG_TOPIC);
  }

  onShutdown() {
    Services.obs.removeObserver(this.observer, STORAGE_TOPIC);
    Services.obs.removeObserver(this.dialogObserver, DIALOG_TOPIC);
    resumeAll();
    ownWrites.clear();
    listeners.clear();
    failureListeners.clear();
  }

  // Persistent: a listener of the background page survives its suspension and wakes it.
  PERSISTENT_EVENTS = { onLoginChanged: persistent(listeners), onLoginFailed: persistent(failureListeners) };

  getAPI(context) {
    return {
      credsync: {
        listAccounts: guard("list_failed", listAccounts),
        readLogin: guard("internal_error", readLogin),
        writeLogins: guard("store_failed", writeLogins),
        pauseChecks: guard("internal_error", async keys => pauseChecks(keys)),
        resumeChecks: guard("internal_error", async keys => resumeChecks(keys)),
        resumeAllChecks: guard("internal_error", async () => resumeAll()),
        pausedChecks: guard("internal_error", async () => [...paused.keys()]),
        onLoginChanged: new ExtensionCommon.EventManager({ context, module: "credsync", event: "onLoginChanged", extensionApi: this }).api(),
        onLoginFailed: new ExtensionCommon.EventManager({ context, module: "credsync", event: "onLoginFailed", extensionApi: this }).api(),
      },
    };
  }
};
