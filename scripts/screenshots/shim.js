// A stand-in for the WebExtension APIs the popup page calls, so that
// scripts/screenshots/run can render the real popup (extension/popup/) in a
// plain headless Chromium. serve.go loads it before the popup's scripts.
//
// The popup calls exactly (grep messenger. extension/popup extension/lib/{i18n,describe,expiry}.js):
//   messenger.i18n.getMessage(key, substitutions)   the locale's real messages.json
//   messenger.i18n.getUILanguage()
//   messenger.runtime.sendMessage({cmd: "accounts"}) fake accounts below
//   messenger.runtime.sendMessage({cmd: "hello"})    the back-ends and their rules
//   messenger.runtime.sendMessage({cmd: "guided"})   not sent to a provider's page
//   messenger.runtime.sendMessage({cmd: "status"})   no earlier change
//   messenger.runtime.sendMessage({cmd: "check"})    the host's rules check: nothing broken
//   messenger.runtime.sendMessage({cmd: "settings"}) the password checks: the defaults
//   messenger.runtime.sendMessage({cmd: "openPage"}) guided mode (only on click): opens nothing
//   messenger.runtime.sendMessage({cmd: "chosenAccount"}) no notification was clicked
//   messenger.runtime.sendMessage({cmd: "expiry"})   the expiries the background read:
//                                                    none, or (state=expiry) account2's in 5 days
//   messenger.accounts.getDefault()
//   messenger.runtime.connect({name: "credsync"})    a change or a sync
//                                                    ({cmd: "change" | "sync"}): progress events
//   messenger.runtime.openOptionsPage()              (only on click)
// and the strength meter's worker (popup/strength-worker.js): a stand-in
// that answers what zxcvbn-ts estimates for the password typed below (score
// 4, no advice), since the estimator is packed into the .xpi, not served
// from extension/.
//
// expiry-notice.html (expiry notification) runs the background's expiry check
// (lib/expiry.js runExpiry) against this shim too, which adds what that
// check calls: messenger.storage.local (in memory), messenger.credsync.readLogin
// (a saved password), messenger.notifications.create (kept for the page
// to draw: credsyncShim.notifications).
//
// Query parameters of popup.html:
//   lang=en|it          the locale (default en)
//   mode=change|sync    "change my password" (default) or "I already changed it"
//   mode=guided         a mailbox without a password-change service: the
//                       popup offers the provider's page (state is ignored)
//   state=progress      form filled in and submitted, change half-way (default)
//   state=form          form filled in, not submitted
//   state=done          the change finished successfully
//   state=expiry        just opened on account2, nothing typed: its password
//                       expires in 5 days (the expiry line); account2's
//                       back-end is then ldap, which reads expiries. The
//                       page's clock is fixed (EXPIRY below), so the date shown
//                       does not depend on the day of the run.
//   account=accountN    the mailbox selected at first (default account2, with
//                       mode=guided account4; account1 is an Aruba PEC box)
//
// When the page has reached the state, <html> gets data-shim-ready="WxH"
// (the popup's size in CSS pixels at its preferred width, which body's
// min-width and max-width bound, as Thunderbird sizes its panel; with
// state=expiry only the top of the popup, down to the mailbox and its
// expiry line) and, if the page asked for a message the locale lacks,
// data-shim-missing="key,...". run reads both from --dump-dom, and
// data-shim-error="why" when the state cannot be reached. expiry-notice.html marks
// itself through credsyncShim.markReady and markFailed.

(() => {
  "use strict";

  const params = new URLSearchParams(location.search);
  const lang = params.get("lang") || "en";
  const state = params.get("state") || "progress";
  const mode = ["sync", "guided"].includes(params.get("mode")) ? params.get("mode") : "change";
  const isPopup = location.pathname.endsWith("/popup/popup.html");
  const expiryShot = !isPopup || state === "expiry";

  // The expiry the host reads (PROTOCOL.md's example) and the clock of the
  // page, 5 days (less an hour) before it: "January 12 (in 5 days)" on any
  // day the screenshots are taken, in any time zone from UTC-9 to UTC+14.
  const EXPIRY = { expiresAt: "2027-01-12T09:30:00Z", now: Date.parse("2027-01-07T10:30:00Z") };
  if (expiryShot) {
    Date.now = () => EXPIRY.now;
  }

  // ---- i18n ----------------------------------------------------------------

  // Synchronous, like the real getMessage: a sync XHR before any popup code.
  function loadMessages(locale) {
    const xhr = new XMLHttpRequest();
    xhr.open("GET", `/_locales/${locale}/messages.json`, false);
    xhr.send();
    if (xhr.status !== 200) {
      throw new Error(`credsync-shim: no messages.json for locale ${locale}`);
    }
    const messages = new Map();
    for (const [key, value] of Object.entries(JSON.parse(xhr.responseText))) {
      messages.set(key.toLowerCase(), value); // keys are case-insensitive
    }
    return messages;
  }

  const messages = loadMessages(lang);
  const fallback = lang === "en" ? messages : loadMessages("en"); // default_locale
  const missing = new Set();

  // As WebExtensions do: $1..$9 are the substitutions, $$ is a dollar sign,
  // $name$ is a named placeholder whose content may itself use $1..$9.
  function getMessage(key, substitutions = []) {
    const subs = (Array.isArray(substitutions) ? substitutions : [substitutions]).map(String);
    const entry = messages.get(String(key).toLowerCase());
    if (!entry) {
      missing.add(key);
    }
    const found = entry ?? fallback.get(String(key).toLowerCase());
    if (!found) {
      return "";
    }
    const positional = text => text.replace(/\$(\$|[1-9])/g, (_, d) => (d === "$" ? "$" : subs[d - 1] ?? ""));
    const placeholders = Object.fromEntries(
      Object.entries(found.placeholders ?? {}).map(([name, p]) => [name.toLowerCase(), p.content ?? ""])
    );
    const named = found.message.replace(/\$([A-Za-z0-9_@]+)\$/g, (whole, name) =>
      name.toLowerCase() in placeholders ? positional(placeholders[name.toLowerCase()]) : whole
    );
    return positional(named);
  }

  // ---- fake Thunderbird ----------------------------------------------------

  // authMethod: 3 = cleartext password, 10 = OAuth2; socketType 3 = TLS.
  const endpoint = (protocol, host, port, username, authMethod = 3) => ({
    protocol, host, port, socketType: 3, authMethod, username,
  });
  // As core.accounts() lists them: the back-end (or the one the server name
  // implies, "detected"), the provider's page for guided mode, suggestions
  // for typing it, and whether the mailbox is Aruba PEC's.
  const ACCOUNTS = [
    {
      id: "account1",
      name: "mario.rossi@pec.it",
      incoming: endpoint("imap", "imaps.pec.aruba.it", 993, "mario.rossi@pec.it"),
      outgoing: endpoint("smtp", "smtps.pec.aruba.it", 465, "mario.rossi@pec.it"),
      passwordBased: true,
      hasIncomingPassword: true,
      hasOutgoingPassword: true,
      backend: { name: "aruba" },
      backendSource: "detected",
      siblings: [],
      page: { url: "https://gestionemail.pec.it/", source: "aruba" },
      identity: { email: "mario.rossi@pec.it", name: "Mario Rossi" },
      pageSuggestions: ["https://webmail.pec.it/", "https://mail.pec.it/", "https://imaps.pec.aruba.it/"],
      arubaPec: true,
    },
    {
      id: "account2",
      name: "m.rossi@aclibresciane.it",
      incoming: endpoint("imap", "imap.aclibresciane.it", 993, "m.rossi@aclibresciane.it"),
      outgoing: endpoint("smtp", "smtp.aclibresciane.it", 465, "m.rossi@aclibresciane.it"),
      passwordBased: true,
      hasIncomingPassword: true,
      hasOutgoingPassword: true,
      // The demo's back-end; for the expiry shots, a directory that knows
      // when the password expires.
      backend: expiryShot ? { name: "ldap", url: "ldaps://ldap.aclibresciane.it" } : { name: "sandbox" },
      backendSource: "local",
      identity: { email: "m.rossi@aclibresciane.it", name: "Mario Rossi" },
      // The same mailbox, also set up as POP3 (account4): updated together.
      siblings: ["account4"],
      page: null,
      pageSuggestions: ["https://webmail.aclibresciane.it/", "https://mail.aclibresciane.it/", "https://imap.aclibresciane.it/"],
      arubaPec: false,
    },
    {
      id: "account3",
      name: "mario.rossi@gmail.com",
      incoming: endpoint("imap", "imap.gmail.com", 993, "mario.rossi@gmail.com", 10),
      outgoing: endpoint("smtp", "smtp.gmail.com", 465, "mario.rossi@gmail.com", 10),
      passwordBased: false,
      hasIncomingPassword: false,
      hasOutgoingPassword: false,
      backend: null,
      backendSource: null,
      siblings: [],
      page: null,
      pageSuggestions: ["https://webmail.gmail.com/", "https://mail.gmail.com/", "https://imap.gmail.com/"],
      identity: { email: "mario.rossi@gmail.com", name: "Mario Rossi" },
      arubaPec: false,
    },
    {
      id: "account4",
      name: "Ufficio (POP3)",
      incoming: endpoint("pop3", "imap.aclibresciane.it", 995, "m.rossi@aclibresciane.it"),
      outgoing: endpoint("smtp", "smtp.aclibresciane.it", 465, "m.rossi@aclibresciane.it"),
      passwordBased: true,
      hasIncomingPassword: true,
      hasOutgoingPassword: true,
      backend: null,
      backendSource: null,
      siblings: ["account2"],
      page: null,
      pageSuggestions: ["https://webmail.aclibresciane.it/", "https://mail.aclibresciane.it/", "https://imap.aclibresciane.it/"],
      identity: { email: "m.rossi@aclibresciane.it", name: "Mario Rossi" },
      arubaPec: false,
    },
  ];
  // hello's back-ends (internal/provider), with Aruba's published rules.
  const BACKENDS = [
    { name: "aruba", needsUrl: false, needsCurrent: true,
      rules: { minLength: 8, maxLength: 256, needsUpper: true, needsLower: true, needsDigit: true,
               needsSpecial: true, specials: "!#$%&()*+,./-:;=?[]_{|}\\@" } },
    { name: "ldap", needsUrl: true, needsCurrent: true, expiry: true },
    { name: "roundcube", needsUrl: true, needsCurrent: true },
    { name: "sandbox", needsUrl: true, needsCurrent: true },
  ];
  const DEFAULT_ACCOUNT = params.get("account") || (mode === "guided" ? "account4" : "account2");
  const PASSWORDS =
    mode === "sync"
      ? { password: "Lago-d'Iseo-2025" }
      : { current: "Brescia-2024!", new: "Lago-d'Iseo-2025", repeat: "Lago-d'Iseo-2025" };

  // Progress of the change (a sync has no "changing" step) up to the state
  // shown, then (state=done) saving (the sibling account with it) and the result.
  const PROGRESS = [
    ["policy", "running"], ["policy", "ok"],
    ...(mode === "sync" ? [] : [["changing", "running"], ["changing", "ok"]]),
    ["checking_incoming", "running"], ["checking_incoming", "ok"],
    ["checking_outgoing", "running"],
  ];
  const FINISH = [
    ["checking_outgoing", "ok"], ["saving", "running"], ["saving", "ok"],
  ];

  const answers = {
    accounts: () => ({ accounts: structuredClone(ACCOUNTS) }),
    hello: () => ({ name: "credsync", version: "0.2.0", protocol: 2,
                    capabilities: ["verify", "check", "plan", "change", "sync", "propagate"],
                    passwordAuthMethods: [0, 2, 3, 9], backends: structuredClone(BACKENDS) }),
    check: () => ({ violations: [] }),
    guided: () => ({ guided: null }),
    openPage: () => ({ url: "https://webmail.aclibresciane.it/", where: "tab" }),
    status: () => ({ flows: [] }),
    chosenAccount: () => ({ accountId: null }),
    // As lib/expiry.js stores the host's answer (entryOf).
    expiry: () => ({
      expiry: expiryShot ? { account2: { checkedAt: EXPIRY.now, state: "expires", expiresAt: EXPIRY.expiresAt } } : {},
    }),
    settings: () => ({ autoPropagate: true, managed: null, minStrength: 0, breachCheck: false,
                       breachUrl: "https://api.pwnedpasswords.com", breachFailClosed: false,
                       expiryWarnings: true, expiryWarnDays: 14,
                       locked: { minStrength: false, breachCheck: false, breachUrl: false, breachFailClosed: false } }),
  };

  // The meter's worker (lib/strength.js's protocol): {type: "estimate", id}
  // is answered with the estimate.
  class FakeStrengthWorker {
    onmessage = null;
    onerror = null;
    postMessage(msg) {
      if (msg?.type === "estimate") {
        setTimeout(() => this.onmessage?.({ data: { id: msg.id, score: 4, warning: "", suggestions: [] } }), 20);
      }
    }
    terminate() {}
  }
  window.Worker = FakeStrengthWorker;

  function event() {
    const listeners = [];
    return {
      listeners,
      addListener: l => listeners.push(l),
      removeListener: l => listeners.splice(listeners.indexOf(l) >>> 0, 1),
      hasListener: l => listeners.includes(l),
    };
  }

  function connect({ name } = {}) {
    const onMessage = event();
    const onDisconnect = event();
    let open = true;
    const send = (msg, delay) =>
      setTimeout(() => open && onMessage.listeners.forEach(l => l(structuredClone(msg))), delay);
    return {
      name,
      onMessage,
      onDisconnect,
      disconnect() {
        open = false;
      },
      postMessage(message) {
        if (message?.cmd !== "change" && message?.cmd !== "sync") {
          console.warn(`credsync-shim: port message ${message?.cmd} not handled`);
          return;
        }
        const events = state === "done" ? [...PROGRESS, ...FINISH] : PROGRESS;
        events.forEach(([step, s], i) =>
          send({ type: "progress", step, state: s }, 50 * (i + 1))
        );
        const last = 50 * (events.length + 1);
        if (state === "done") {
          const both = ["incoming", "outgoing"];
          const accounts = [
            { id: "account2", name: "m.rossi@aclibresciane.it", sides: both },
            { id: "account4", name: "Ufficio (POP3)", sides: both },
          ];
          const server = (side, protocol, port) =>
            ({ side, protocol, host: "mail.aclibresciane.it", port, username: "m.rossi", outcome: "ok", detail: "" });
          const servers = [server("incoming", "imap", 993), server("incoming", "pop3", 995), server("outgoing", "smtp", 465)];
          send({ type: "result", ok: true, result: { changed: mode === "change", stored: true, accounts, servers } }, last);
        }
        setTimeout(ready, last + 50);
      },
    };
  }

  // The popup has loaded the accounts and looked for earlier changes.
  function afterInit() {
    if (mode === "guided" || state === "expiry") {
      setTimeout(ready, 50);
      return;
    }
    if (mode === "sync") {
      document.getElementById("mode-sync").click();
    }
    for (const [id, value] of Object.entries(PASSWORDS)) {
      const input = document.getElementById(id);
      input.value = value;
      input.dispatchEvent(new Event("input", { bubbles: true }));
    }
    document.activeElement?.blur();
    if (state === "form") {
      setTimeout(ready, 50);
    } else {
      document.getElementById("change").click();
    }
  }

  // Once the strength meter shows its estimate (its estimator loads at the
  // first keystroke), at most 15 s after the state was reached.
  function ready(tries = 300) {
    if (document.getElementById("meter")?.dataset.state === "pending" && tries > 0) {
      setTimeout(() => ready(tries - 1), 50);
      return;
    }
    document.activeElement?.blur();
    // Focusing a field may have scrolled a window shorter than the page
    // (state=expiry's crop).
    window.scrollTo(0, 0);
    const fontSize = parseFloat(getComputedStyle(document.body).fontSize);
    // Thunderbird sizes the panel to the page's preferred width, which the
    // body's min-width and max-width (22em, 32em) bound.
    const body = document.body;
    body.style.width = "max-content";
    const preferred = body.getBoundingClientRect().width;
    body.style.width = "";
    const width = Math.ceil(Math.max(22 * fontSize, Math.min(preferred, 32 * fontSize)));
    body.style.width = `${width}px`;
    // state=expiry: down to the mailbox field (its expiry line), and as
    // much below it as main's padding.
    const field = document.getElementById("account").closest(".field");
    const height = Math.ceil(
      state === "expiry"
        ? field.getBoundingClientRect().bottom + parseFloat(getComputedStyle(document.querySelector("main")).paddingBottom)
        : body.getBoundingClientRect().height
    );
    body.style.width = "";
    if (state === "expiry" && document.getElementById("expiry-line").hidden) {
      markFailed("the popup shows no expiry line");
      return;
    }
    markReady(width, height);
  }

  // The page cannot reach its state: why, for run (which then stops).
  function markFailed(reason) {
    document.documentElement.dataset.shimError = reason;
  }

  // The page has reached its state; its size in CSS pixels.
  function markReady(width, height) {
    const root = document.documentElement;
    root.dataset.shimReady = `${Math.ceil(width)}x${Math.ceil(height)}`;
    if (missing.size) {
      root.dataset.shimMissing = [...missing].join(",");
    }
  }

  const api = {
    i18n: {
      getMessage,
      getUILanguage: () => lang,
      getAcceptLanguages: async () => [lang],
    },
    runtime: {
      async sendMessage(message) {
        const answer = answers[message?.cmd];
        if (!answer) {
          console.warn(`credsync-shim: command ${message?.cmd} not handled`);
          return undefined; // no listener answered
        }
        return { ok: true, result: answer(message) };
      },
      connect,
      openOptionsPage: async () => {},
    },
    accounts: {
      getDefault: async () => ({ id: DEFAULT_ACCOUNT, name: "m.rossi@aclibresciane.it", type: "imap" }),
    },
    // The background's expiry check (expiry-notice.html).
    storage: {
      local: {
        get: async key => (typeof key === "string" && key in stored ? { [key]: structuredClone(stored[key]) } : {}),
        set: async items => void Object.assign(stored, structuredClone(items)),
      },
    },
    credsync: {
      readLogin: async () => PASSWORDS.current ?? PASSWORDS.password,
    },
    notifications: {
      create: async (id, options) => {
        notifications.push({ id, ...structuredClone(options) });
        return id;
      },
      clear: async () => true,
    },
  };
  const stored = {};
  const notifications = [];
  globalThis.messenger = api;
  globalThis.browser = api;
  // For expiry-notice.html: the host's expiry answer, the notifications created,
  // and the mark run waits for.
  globalThis.credsyncShim = {
    lang,
    expiryResult: { state: "expires", expiresAt: EXPIRY.expiresAt, source: "pwdChangedTime + pwdMaxAge" },
    notifications,
    markReady,
    markFailed,
  };
  if (!isPopup) {
    return;
  }
  // The popup marks <html data-ready> when it shows all it shows on opening.
  const opened = setInterval(() => {
    if (document.documentElement.dataset.ready) {
      clearInterval(opened);
      afterInit();
    }
  }, 10);
})();
