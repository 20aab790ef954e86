// The Experiment's parent script (extension/api/credsync/implementation.js)
// in a node vm context with fake Thunderbird services: what listAccounts
// lists, writeLogins' all-or-none with compare-and-swap, onLoginChanged.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import vm from "node:vm";

const SOURCE = readFileSync(new URL("../../extension/api/credsync/implementation.js", import.meta.url), "utf8");
const SALT = "00112233445566778899aabbccddeeff";
const fp = (salt, password) => createHash("sha256").update(`${salt}:${password}`, "utf8").digest("hex");

// A login manager as Thunderbird's: exact origin/httpRealm matching,
// passwordmgr-storage-changed notifications; `failOn` makes writes of an
// origin throw.
function loginManager(obs, { tb153 = true } = {}) {
  const logins = [];
  const notify = (data, subject) => obs.notify(subject, "passwordmgr-storage-changed", data);
  const copy = l => ({ ...l, QueryInterface: () => copy(l) });
  const m = {
    logins,
    failOn: null,
    calls: [],
    isLoggedIn: true,
    uiBusy: false,
    initializationPromise: Promise.resolve(),
    async searchLoginsAsync({ origin, httpRealm }) {
      return logins.filter(l => l.origin === origin && l.httpRealm === httpRealm).map(copy);
    },
    async addLoginAsync(login) {
      m.calls.push(`add ${login.origin}`);
      if (m.failOn === login.origin) {
        throw new Error(`disk full writing ${login.password}`);
      }
      const stored = { origin: login.origin, httpRealm: login.httpRealm, username: login.username, password: login.password };
      logins.push(stored);
      notify("addLogin", copy(stored));
    },
  };
  const modify = (old, bag) => {
    m.calls.push(`modify ${old.origin}`);
    if (m.failOn === old.origin) {
      throw new Error("disk full");
    }
    const stored = logins.find(l => l.origin === old.origin && l.username === old.username);
    const before = { ...stored };
    stored.password = bag.props.password;
    const pair = [copy(before), copy(stored)];
    notify("modifyLogin", { QueryInterface: () => ({ queryElementAt: i => pair[i] }) });
  };
  const remove = login => {
    m.calls.push(`remove ${login.origin}`);
    logins.splice(logins.findIndex(l => l.origin === login.origin && l.username === login.username), 1);
  };
  if (tb153) {
    m.modifyLoginAsync = async (old, bag) => modify(old, bag);
    m.removeLoginAsync = async login => remove(login);
  } else {
    m.modifyLogin = modify;
    m.removeLogin = remove;
  }
  return m;
}

function server(type, host, username, { tb153 = true, authMethod = 3, port = 993 } = {}) {
  const s = {
    type,
    port,
    socketType: 3,
    authMethod,
    username,
    prettyName: `${username} on ${host}`,
    calls: [],
    forgetSessionPassword: () => s.calls.push("forget"),
    closeCachedConnections: () => s.calls.push("close"),
  };
  s[tb153 ? "hostname" : "hostName"] = host;
  return s;
}

function smtpServer(host, username) {
  const s = {
    socketType: 3,
    authMethod: 3,
    username,
    password: "cached",
    calls: [],
    closeCachedConnections: () => s.calls.push("close"),
    QueryInterface: () => ({ hostname: host, port: 0 }),
  };
  return s;
}

// Loads the script; returns its global (functions, the API class) and the fakes.
function load({ tb153 = true, accounts = [], unlock = () => true, biff = { calls: [] } } = {}) {
  const observers = new Map();
  const obs = {
    addObserver: (o, topic) => observers.set(topic, [...(observers.get(topic) ?? []), o]),
    removeObserver: (o, topic) => observers.set(topic, (observers.get(topic) ?? []).filter(x => x !== o)),
    notify: (subject, topic, data) => (observers.get(topic) ?? []).forEach(o => (o.observe ?? o)(subject, topic, data)),
  };
  const logins = loginManager(obs, { tb153 });
  const contracts = {
    "@mozilla.org/security/hash;1": () => {
      const h = createHash("sha256");
      return {
        init() {},
        update: (bytes, length) => h.update(Buffer.from(bytes.slice(0, length))),
        finish: asBase64 => (asBase64 ? h.digest("base64") : h.digest("latin1")),
      };
    },
    "@mozilla.org/security/certoverride;1": () => ({
      getOverrides: () => [{ asciiHost: "imap.example.org", port: 993, fingerprint: "AB:".repeat(31) + "CD" }],
    }),
    "@mozilla.org/hash-property-bag;1": () => {
      const bag = { props: {}, setPropertyAsAString: (k, v) => (bag.props[k] = v) };
      return bag;
    },
    "@mozilla.org/messenger/biffManager;1": () => ({
      removeServerBiff: server => biff.calls.push(`remove ${server.username}`),
      addServerBiff: server => biff.calls.push(`add ${server.username}`),
    }),
    "@mozilla.org/login-manager/loginInfo;1": () => ({
      init(origin, action, realm, username, password) {
        Object.assign(this, { origin, httpRealm: realm, username, password });
      },
    }),
  };
  const token = {
    login() {
      if (!unlock()) {
        throw new Error("User canceled primary password entry");
      }
      logins.isLoggedIn = true;
    },
  };
  contracts[tb153 ? "@mozilla.org/security/internalkeytoken;1" : "@mozilla.org/security/pk11tokendb;1"] = () =>
    tb153 ? token : { getInternalKeyToken: () => token };
  const Cc = Object.fromEntries(
    Object.entries(contracts).map(([k, make]) => [k, { createInstance: () => make(), getService: () => make() }])
  );
  const MailServices = {
    accounts: { accounts },
    outgoingServer: { getServerByIdentity: identity => identity.smtp },
  };
  class ExtensionError extends Error {}
  const context = {
    Cc,
    Ci: new Proxy({ nsICryptoHash: { SHA256: 4 } }, { get: (t, k) => t[k] ?? String(k) }),
    Cr: { NS_ERROR_ABORT: 0x80004004 },
    Cu: { getGlobalForObject: () => ({ TextEncoder }) },
    ChromeUtils: { importESModule: () => ({ MailServices }) },
    Services: {
      logins,
      obs,
      uuid: { generateUUID: () => "{session}" },
      // messenger.properties as Thunderbird formats it (here in Italian).
      strings: {
        createBundle: url => ({
          formatStringFromName(name, params) {
            assert.equal(url, "chrome://messenger/locale/messenger.properties");
            assert.equal(name, "mailServerLoginFailed2");
            return `Accesso al server ${params[0]} con nome utente ${params[1]} non riuscito.`;
          },
        }),
      },
    },
    ExtensionCommon: { ExtensionAPIPersistent: class { constructor(extension) { this.extension = extension; } } },
    ExtensionUtils: { ExtensionError },
    console: { warn() {}, error() {} },
  };
  vm.createContext(context);
  vm.runInContext(SOURCE, context);
  const api = new context.credsync({});
  const events = [];
  api.PERSISTENT_EVENTS.onLoginChanged({ fire: { async: change => events.push(change) } });
  const failures = [];
  api.PERSISTENT_EVENTS.onLoginFailed({ fire: { async: login => failures.push(login) } });
  return { g: context, api, logins, events, failures, observers };
}

function mailbox({ tb153 = true } = {}) {
  const imap = server("imap", "imap.example.org", "mario", { tb153 });
  const smtp = smtpServer("smtp.example.org", "mario");
  const pop = server("pop3", "::1", "mario", { tb153, port: 995 });
  const accounts = [
    { key: "account1", incomingServer: imap, defaultIdentity: { smtp } },
    { key: "account2", incomingServer: pop, defaultIdentity: null },
    { key: "account3", incomingServer: { type: "nntp", prettyName: "news" } },
  ];
  return { accounts, imap, smtp, pop };
}

const save = (logins, origin, username, password) => logins.logins.push({ origin, httpRealm: origin, username, password });

test("listAccounts: facts and login keys; without a salt no fingerprints; 140's hostName", async () => {
  for (const tb153 of [true, false]) {
    const { accounts } = mailbox({ tb153 });
    const { g } = load({ tb153, accounts });
    const list = JSON.parse(JSON.stringify(await g.listAccounts()));
    assert.equal(list.locked, false);
    assert.deepEqual(list.accounts.map(a => a.id), ["account1", "account2"], "IMAP and POP3 only");
    const [a1, a2] = list.accounts;
    assert.deepEqual(a1.incoming, {
      protocol: "imap",
      host: "imap.example.org",
      port: 993,
      socketType: 3,
      authMethod: 3,
      username: "mario",
      origin: "imap://imap.example.org",
      certSha256: "ab".repeat(31) + "cd",
    });
    assert.deepEqual(a1.outgoing.origin, "smtp://smtp.example.org");
    assert.equal(a1.outgoing.port, 465, "port 0 with implicit TLS");
    assert.equal(a2.incoming.origin, "mailbox://%5B%3A%3A1%5D");
    assert.equal(a2.outgoing, null);
    assert.equal("saved" in a1.incoming, false);
  }
});

test("listAccounts with a salt: the fingerprint of each saved password (UTF-8), null when none; none while locked", async () => {
  const { accounts } = mailbox();
  const { g, logins } = load({ accounts });
  const password = "pàss€😀";
  save(logins, "imap://imap.example.org", "mario", password);
  const { accounts: list } = await g.listAccounts(SALT);
  assert.equal(list[0].incoming.saved, fp(SALT, password));
  assert.equal(list[0].outgoing.saved, null);
  logins.isLoggedIn = false;
  const locked = await g.listAccounts(SALT);
  assert.equal(locked.locked, true);
  assert.equal("saved" in locked.accounts[0].incoming, false);
});

test("readLogin: the password, null when none or locked", async () => {
  const { g, logins } = load();
  save(logins, "smtp://h", "u", "pw");
  assert.equal(await g.readLogin("smtp://h", "u"), "pw");
  assert.equal(await g.readLogin("smtp://h", "other"), null);
  logins.isLoggedIn = false;
  assert.equal(await g.readLogin("smtp://h", "u"), null);
});

test("writeLogins: compares, writes (modify and add), refreshes the servers, reports its writes byCredsync", async () => {
  for (const tb153 of [true, false]) {
    const { accounts, imap, smtp, pop } = mailbox({ tb153 });
    const { g, logins, events } = load({ tb153, accounts });
    save(logins, "imap://imap.example.org", "mario", "old");
    const result = await g.writeLogins(SALT, [
      { origin: "imap://imap.example.org", username: "mario", password: "new", expect: fp(SALT, "old") },
      { origin: "smtp://smtp.example.org", username: "mario", password: "new", expect: "none" },
    ]);
    assert.deepEqual(JSON.parse(JSON.stringify(result)), {
      logins: [
        { origin: "imap://imap.example.org", username: "mario", state: "stored" },
        { origin: "smtp://smtp.example.org", username: "mario", state: "stored" },
      ],
    });
    assert.deepEqual(logins.logins.map(l => l.password), ["new", "new"]);
    assert.deepEqual(imap.calls, ["forget", "close"]);
    assert.deepEqual(smtp.calls, ["close"]);
    assert.equal(smtp.password, "");
    assert.deepEqual(pop.calls, [], "a server of another login is left alone");
    assert.deepEqual(JSON.parse(JSON.stringify(events)), [
      { origin: "imap://imap.example.org", username: "mario", byCredsync: true },
      { origin: "smtp://smtp.example.org", username: "mario", byCredsync: true },
    ]);
  }
});

test("writeLogins: a login that changed meanwhile is store_conflict, nothing written", async () => {
  const { g, logins } = load();
  save(logins, "imap://h", "u", "changed-by-someone");
  save(logins, "smtp://h", "u", "old");
  const result = await g.writeLogins(SALT, [
    { origin: "smtp://h", username: "u", password: "new", expect: fp(SALT, "old") },
    { origin: "imap://h", username: "u", password: "new", expect: fp(SALT, "old") },
  ]);
  assert.equal(result.code, "store_conflict");
  assert.deepEqual(result.logins.map(l => l.state), ["unchanged", "unchanged"]);
  assert.deepEqual(logins.calls, []);
  const exists = await g.writeLogins(SALT, [{ origin: "smtp://h", username: "u", password: "new", expect: "none" }]);
  assert.equal(exists.code, "store_conflict", "expected absent, found");
  const any = await g.writeLogins(SALT, [{ origin: "imap://h", username: "u", password: "new", expect: "any" }]);
  assert.equal(any.logins[0].state, "stored");
});

test("writeLogins: a failed write restores what was written, in reverse order; no password in the message", async () => {
  const { g, logins, events } = load();
  save(logins, "imap://h", "u", "old");
  save(logins, "mailbox://h", "u", "old");
  logins.failOn = "smtp://h";
  const result = await g.writeLogins(SALT, [
    { origin: "imap://h", username: "u", password: "Secret-new-1", expect: "any" },
    { origin: "mailbox://h", username: "u", password: "Secret-new-1", expect: "any" },
    { origin: "smtp://h", username: "u", password: "Secret-new-1", expect: "none" },
  ]);
  assert.equal(result.code, "store_failed");
  assert.deepEqual(result.logins.map(l => l.state), ["restored", "restored", "unchanged"]);
  assert.deepEqual(logins.calls, ["modify imap://h", "modify mailbox://h", "add smtp://h", "modify mailbox://h", "modify imap://h"]);
  assert.deepEqual(logins.logins.map(l => l.password), ["old", "old"]);
  assert.match(result.message, /smtp:\/\/h/);
  assert.doesNotMatch(result.message, /Secret-new-1/);
  assert.ok(events.every(e => e.byCredsync), "the writes and their undo are credsync's");
});

test("writeLogins: an undo that fails leaves the state unknown", async () => {
  const { g, logins } = load();
  save(logins, "imap://h", "u", "old");
  const realModify = logins.modifyLoginAsync;
  let n = 0;
  logins.modifyLoginAsync = async (old, bag) => {
    if (++n === 2) {
      throw new Error("undo fails");
    }
    return realModify(old, bag);
  };
  logins.failOn = "smtp://h";
  const result = await g.writeLogins(SALT, [
    { origin: "imap://h", username: "u", password: "new", expect: "any" },
    { origin: "smtp://h", username: "u", password: "new", expect: "none" },
  ]);
  assert.deepEqual(result.logins.map(l => l.state), ["unknown", "unchanged"]);
  assert.match(result.message, /may hold the new password/);
});

test("writeLogins: the primary-password prompt cancelled is store_cancelled, nothing written", async () => {
  const { g, logins } = load({ unlock: () => false });
  logins.isLoggedIn = false;
  const result = await g.writeLogins(SALT, [{ origin: "imap://h", username: "u", password: "new", expect: "any" }]);
  assert.equal(result.code, "store_cancelled");
  assert.deepEqual(result.logins.map(l => l.state), ["unchanged"]);
  assert.deepEqual(logins.calls, []);
  const unlocked = load({ unlock: () => true });
  unlocked.logins.isLoggedIn = false;
  const ok = await unlocked.g.writeLogins(SALT, [{ origin: "imap://h", username: "u", password: "new", expect: "none" }]);
  assert.equal(ok.logins[0].state, "stored");
});

test("onLoginChanged: a mail login saved with another password, never the password; not the same password, not web logins", async () => {
  const { logins, events, observers } = load();
  const observer = observers.get("passwordmgr-storage-changed")[0];
  save(logins, "imap://h", "u", "old");
  await logins.modifyLoginAsync({ origin: "imap://h", username: "u" }, { props: { password: "typed" } });
  await logins.modifyLoginAsync({ origin: "imap://h", username: "u" }, { props: { password: "typed" } });
  await logins.addLoginAsync({ origin: "https://bank.example", httpRealm: null, username: "u", password: "x" });
  await logins.addLoginAsync({ origin: "smtp://h", httpRealm: "smtp://h", username: "u", password: "typed" });
  observer.observe(null, "passwordmgr-storage-changed", "removeLogin");
  assert.deepEqual(JSON.parse(JSON.stringify(events)), [
    { origin: "imap://h", username: "u", byCredsync: false },
    { origin: "smtp://h", username: "u", byCredsync: false },
  ]);
});

test("onLoginFailed: Thunderbird's own login-failed question for an account's server, in its language; not other dialogs", async () => {
  const { accounts } = mailbox();
  const { failures, observers, api } = load({ accounts });
  const [observer] = observers.get("common-dialog-loaded");
  const dialog = (text, promptType = "confirmEx") => observer.observe({ args: { promptType, text } }, "common-dialog-loaded");
  dialog("Accesso al server imap.example.org con nome utente mario non riuscito.");
  dialog("Accesso al server smtp.example.org con nome utente mario non riuscito.");
  dialog("Accesso al server ::1 con nome utente mario non riuscito.");
  dialog("Accesso al server imap.example.org con nome utente luigi non riuscito.", "confirmEx"); // no such login
  dialog("Accesso al server imap.example.org con nome utente mario non riuscito.", "alert");
  dialog("Login to server imap.example.org with username mario failed."); // not Thunderbird's current language
  observer.observe({}, "common-dialog-loaded");
  observer.observe(null, "common-dialog-loaded");
  assert.deepEqual(JSON.parse(JSON.stringify(failures)), [
    { origin: "imap://imap.example.org", username: "mario" },
    { origin: "smtp://smtp.example.org", username: "mario" },
    { origin: "mailbox://%5B%3A%3A1%5D", username: "mario" },
  ]);
  api.onShutdown();
  assert.deepEqual(observers.get("common-dialog-loaded"), [], "the observer goes at shutdown");
});

test("pauseChecks: the incoming servers leave the biff schedule in memory, no setting written; resumeChecks puts back exactly those", async () => {
  const { accounts, imap, pop } = mailbox();
  imap.doBiff = true;
  imap.biffMinutes = 10;
  pop.doBiff = false; // the user does not check this one: nothing to pause, nothing to put back
  pop.biffMinutes = 10;
  const biff = { calls: [] };
  const { g, api } = load({ accounts, biff });
  assert.deepEqual([...(await g.pauseChecks(["account1", "account2", "account9"]))], ["account1", "account2"]);
  assert.deepEqual(biff.calls, ["remove mario"]);
  assert.deepEqual([...(await g.pauseChecks(["account1"]))], ["account1"], "pauses nest");
  assert.equal(imap.doBiff, true, "no setting written");
  assert.deepEqual([...(await g.resumeChecks(["account1"]))], ["account1"]);
  assert.deepEqual(biff.calls, ["remove mario"], "still paused once");
  assert.deepEqual([...(await g.resumeChecks(["account1", "account2", "account9"]))], ["account1", "account2"]);
  assert.deepEqual(biff.calls, ["remove mario", "add mario"]);
  assert.deepEqual([...(await g.resumeChecks(["account1"]))], [], "not paused any more");
  // A shutdown resumes whatever is still paused.
  await g.pauseChecks(["account1"]);
  api.onShutdown();
  assert.deepEqual(biff.calls, ["remove mario", "add mario", "remove mario", "add mario"]);
});
