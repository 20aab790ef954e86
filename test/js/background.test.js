// background.js with lib/: commands from the popup, requests from the
// host, automatic propagation; against a fake messenger and a fake host.

import assert from "node:assert/strict";
import { before, test } from "node:test";
import { imapAccount, installMessenger, settle } from "./fake.js";

const A = imapAccount("account1", { name: "Mario" });
const B = {
  ...imapAccount("account2", { name: "Mario POP" }),
  incoming: { protocol: "pop3", host: "mail.example.org", port: 995, socketType: 3, authMethod: 3, username: "mario", origin: "mailbox://mail.example.org" },
};
const PEC = imapAccount("account3", { name: "PEC", host: "imaps.pec.aruba.it", user: "pec@example.it" });
const OAUTH = imapAccount("account4", { name: "Gmail", host: "imap.gmail.com", authMethod: 10 });

const HELLO = {
  name: "credsync",
  protocol: 2,
  passwordAuthMethods: [0, 2, 3, 9],
  backends: [
    { name: "sandbox" },
    { name: "aruba", hostSuffixes: [".pec.aruba.it", ".arubapec.it"], webPage: "https://gestionemail.pec.it/", rules: { minLength: 8 } },
    { name: "roundcube", webPage: "url" },
    { name: "cpanel", webPage: "origin" },
  ],
};

const PLAN = {
  accounts: [
    { id: "account1", passwordBased: true, touches: [{ id: "account1", sides: ["incoming", "outgoing"] }, { id: "account2", sides: ["incoming"] }] },
    { id: "account2", passwordBased: true, touches: [{ id: "account2", sides: ["incoming"] }, { id: "account1", sides: ["incoming", "outgoing"] }] },
    { id: "account3", passwordBased: true, touches: [{ id: "account3", sides: ["incoming", "outgoing"] }] },
    { id: "account4", passwordBased: false, touches: [] },
  ],
};

let m;

before(async () => {
  m = installMessenger({
    accounts: [A, B, PEC, OAUTH],
    identities: { account1: "mario@example.org", account3: "pec@example.it" },
    local: { backends: { account1: { name: "sandbox", url: "https://change.example.org/" } } },
    managed: { pages: { "example.org": "https://webmail.example.org/" } },
    logins: { "imap://mail.example.org\nmario": "old-pw", "smtp://mail.example.org\nmario": "old-pw" },
  });
  m.host.handlers.hello = async () => HELLO;
  m.host.handlers.plan = async () => PLAN;
  await import("../../extension/background.js");
  await settle();
});

const command = message => m.runtime.sendMessage(message);
const changed = change => Promise.all(m.credsync.onLoginChanged.listeners.map(l => l(change)));

test("the port opens at startup with one hello, and hello is cached for the connection", async () => {
  assert.ok(m.host.connected);
  assert.equal(m.host.requests("hello").length, 1);
  const r = await command({ cmd: "hello" });
  assert.deepEqual(r, { ok: true, result: HELLO });
  await command({ cmd: "hello" });
  assert.equal(m.host.requests("hello").length, 1, "no second hello on the same connection");
});

test("a new connection asks hello again", async () => {
  m.host.exit();
  await command({ cmd: "hello" });
  assert.equal(m.host.requests("hello").length, 2);
});

test("accounts: facts, plan, back-end (local, detected), page, Aruba", async () => {
  const r = await command({ cmd: "accounts" });
  assert.ok(r.ok, JSON.stringify(r));
  const byId = Object.fromEntries(r.result.accounts.map(a => [a.id, a]));
  assert.deepEqual(Object.keys(byId), ["account1", "account2", "account3", "account4"]);
  const a1 = byId.account1;
  assert.equal(a1.passwordBased, true);
  assert.deepEqual(a1.siblings, ["account2"]);
  assert.deepEqual(a1.backend, { name: "sandbox", url: "https://change.example.org/" });
  assert.equal(a1.backendSource, "local");
  assert.deepEqual(a1.page, { url: "https://webmail.example.org/", source: "managed" });
  assert.equal(a1.incoming.origin, "imap://mail.example.org");
  assert.equal(a1.arubaPec, false);
  assert.deepEqual(byId.account2.siblings, ["account1"]);
  const pec = byId.account3;
  assert.deepEqual(pec.backend, { name: "aruba" });
  assert.equal(pec.backendSource, "detected");
  assert.deepEqual(pec.page, { url: "https://gestionemail.pec.it/", source: "backend" });
  assert.equal(pec.arubaPec, true);
  assert.ok(pec.pageSuggestions.includes("https://webmail.example.it/"));
  assert.equal(byId.account4.passwordBased, false);
  assert.deepEqual(byId.account4.siblings, []);
  assert.equal(r.result.planError, undefined);
});

test("the plan is asked at start-up, and again only when the accounts or the connection changed", async () => {
  const plans = () => m.host.requests("plan").length;
  assert.ok(plans() >= 1, "asked after the start-up hello");
  const before = plans();
  await command({ cmd: "accounts" });
  await command({ cmd: "accounts" });
  assert.equal(plans(), before, "a reopened popup costs no round trip to the host");
  const real = m.credsync.listAccounts;
  m.credsync.listAccounts = async salt => {
    const listed = await real(salt);
    listed.accounts[0].incoming.authMethod = 10;
    return listed;
  };
  try {
    await command({ cmd: "accounts" });
    assert.equal(plans(), before + 1, "the facts changed");
  } finally {
    m.credsync.listAccounts = real;
  }
  await command({ cmd: "accounts" });
  assert.equal(plans(), before + 2);
});

test("accounts without a plan: listed, usable, and the host's error said", async () => {
  const plan = m.host.handlers.plan;
  m.host.handlers.plan = async () => {
    throw { code: "unknown_type", message: "no plan" };
  };
  m.host.exit(); // a new connection: the plan is asked again
  try {
    const r = await command({ cmd: "accounts" });
    assert.ok(r.ok);
    assert.equal(r.result.planError.code, "unknown_type");
    assert.ok(r.result.accounts.every(a => a.passwordBased === true));
  } finally {
    m.host.handlers.plan = plan;
  }
});

test("check forwards the typed password with the back-end", async () => {
  let got;
  m.host.handlers.check = async req => {
    got = req;
    return { violations: [{ rule: "too_short", minLength: 8 }] };
  };
  const r = await command({ cmd: "check", backend: "aruba", current: "a", new: "b" });
  assert.deepEqual(r.result, { violations: [{ rule: "too_short", minLength: 8 }] });
  assert.deepEqual({ backend: got.backend, current: got.current, new: got.new }, { backend: "aruba", current: "a", new: "b" });
  await command({ cmd: "check", new: "c" });
  assert.equal("backend" in got, false, "sync mode: no back-end");
});

test("change sends one change request with the account's back-end; the result comes back as is", async () => {
  const result = {
    changed: true,
    stored: true,
    accounts: [{ id: "account1", name: "Mario", sides: ["incoming", "outgoing"] }, { id: "account2", name: "Mario POP", sides: ["incoming"] }],
    servers: [],
  };
  let got;
  m.host.handlers.change = async req => {
    got = req;
    return result;
  };
  const r = await command({ cmd: "change", accountId: "account1", current: "old-pw", new: "new-pw" });
  assert.deepEqual(r, { ok: true, result });
  assert.equal(got.accountId, "account1");
  assert.deepEqual(got.backend, { name: "sandbox", url: "https://change.example.org/" });
  assert.equal(got.current, "old-pw");
  assert.equal(got.new, "new-pw");
  assert.equal(m.host.requests("sync").length, 0, "no per-sibling syncs");
});

test("change carries the breach check of the settings in force: the administrator's over the user's", async () => {
  const sent = [];
  m.host.handlers.change = async req => {
    sent.push(req);
    return { changed: true, stored: true, breachCheck: "not_listed", accounts: [], servers: [] };
  };
  const change = () => command({ cmd: "change", accountId: "account1", current: "old-pw", new: "new-pw" });
  try {
    await change();
    assert.equal("breachCheck" in sent.at(-1), false, "off by default: no member");

    await command({ cmd: "setSettings", breachCheck: true });
    const r = await change();
    assert.equal(r.result.breachCheck, "not_listed");
    assert.deepEqual(sent.at(-1).breachCheck, { url: "https://api.pwnedpasswords.com", failClosed: false });

    m.storage.managed.data.breachUrl = "https://mirror.example.org/pwned";
    m.storage.managed.data.breachFailClosed = true;
    await command({ cmd: "setSettings", breachUrl: "https://user.example.org" }).then(r => assert.equal(r.error.code, "invalid_request", "locked"));
    await change();
    assert.deepEqual(sent.at(-1).breachCheck, { url: "https://mirror.example.org/pwned", failClosed: true });

    m.storage.managed.data.breachCheck = false; // the administrator turned it off
    await change();
    assert.equal("breachCheck" in sent.at(-1), false);
    const s = await command({ cmd: "settings" });
    assert.deepEqual(s.result.locked, { minStrength: false, breachCheck: true, breachUrl: true, breachFailClosed: true, expiryWarnings: false, expiryWarnDays: false });
  } finally {
    for (const key of ["breachCheck", "breachUrl", "breachFailClosed"]) {
      delete m.storage.managed.data[key];
      delete m.storage.local.data[key];
    }
  }
});

test("change without a back-end: backend_not_configured, nothing sent", async () => {
  const before = m.host.requests("change").length;
  const r = await command({ cmd: "change", accountId: "account4", current: "a", new: "b" });
  assert.equal(r.error.code, "backend_not_configured");
  assert.equal(m.host.requests("change").length, before);
});

test("sync over a port: progress events, then the result; status shows it once", async () => {
  m.host.handlers.sync = async (req, h) => {
    h.post({ type: "progress", request: req.id, step: "checking_incoming", state: "ok" });
    assert.deepEqual({ accountId: req.accountId, password: req.password }, { accountId: "account2", password: "pw" });
    return { changed: false, stored: true, accounts: [], servers: [] };
  };
  const events = [];
  const onMessage = { listeners: [] };
  const port = {
    name: "credsync",
    onMessage: { addListener: fn => onMessage.listeners.push(fn) },
    onDisconnect: { addListener: () => {} },
    postMessage: e => events.push(structuredClone(e)),
  };
  m.runtime.onConnect.listeners.forEach(l => l(port));
  onMessage.listeners.forEach(l => l({ cmd: "sync", accountId: "account2", password: "pw" }));
  await settle(10);
  assert.deepEqual(events, [
    { type: "progress", step: "checking_incoming", state: "ok" },
    { type: "result", ok: true, result: { changed: false, stored: true, accounts: [], servers: [] } },
  ]);
  assert.deepEqual((await command({ cmd: "status" })).result.flows, []);
});

test("the host's accounts request: the Experiment's facts with the salt's fingerprints", async () => {
  const reply = await m.host.request("accounts", { salt: "00112233445566778899aabbccddeeff" });
  assert.equal(reply.status, "ok");
  assert.equal(reply.result.locked, false);
  const a1 = reply.result.accounts[0];
  assert.equal(a1.incoming.saved, "fp:old-pw");
  assert.equal(reply.result.accounts[1].incoming.saved, null);
  assert.equal("passwordBased" in a1, false, "facts only");
});

test("login: not_allowed unless it is the login being propagated", async () => {
  const reply = await m.host.request("login", { origin: "imap://mail.example.org", username: "mario" });
  assert.equal(reply.status, "error");
  assert.equal(reply.code, "not_allowed");
  assert.equal(JSON.stringify(reply).includes("old-pw"), false);
});

test("store: expect mapped for the Experiment; success answers the states", async () => {
  const reply = await m.host.request("store", {
    salt: "s",
    logins: [
      { origin: "imap://mail.example.org", username: "mario", password: "new-pw", expect: "a".repeat(64) },
      { origin: "smtp://mail.example.org", username: "mario", password: "new-pw", expect: null },
      { origin: "mailbox://mail.example.org", username: "mario", password: "new-pw" },
    ],
  });
  assert.equal(reply.status, "ok");
  assert.deepEqual(
    m.writes.at(-1).logins.map(l => l.expect),
    ["a".repeat(64), "none", "any"]
  );
  assert.deepEqual(reply.result.logins.map(l => l.state), ["stored", "stored", "stored"]);
});

test("store: a failure answers its code with the per-login states; no password in it", async () => {
  const real = m.credsync.writeLogins;
  m.credsync.writeLogins = async (salt, list) => ({
    code: "store_failed",
    message: "could not save the login smtp://mail.example.org of mario (Error: disk full); nothing was changed",
    logins: [
      { origin: list[0].origin, username: "mario", state: "restored" },
      { origin: list[1].origin, username: "mario", state: "unchanged" },
    ],
  });
  try {
    const logins = [
      { origin: "imap://mail.example.org", username: "mario", password: "new-pw-2" },
      { origin: "smtp://mail.example.org", username: "mario", password: "new-pw-2" },
    ];
    const reply = await m.host.request("store", { salt: "s", logins });
    assert.equal(reply.status, "error");
    assert.equal(reply.code, "store_failed");
    assert.deepEqual(reply.logins.map(l => l.state), ["restored", "unchanged"]);
    assert.equal(JSON.stringify(reply).includes("new-pw-2"), false);

    m.credsync.writeLogins = async () => {
      throw new Error("store_failed: unexpected TypeError in Thunderbird");
    };
    const thrown = await m.host.request("store", { salt: "s", logins });
    assert.equal(thrown.code, "store_failed");
    assert.deepEqual(thrown.logins.map(l => l.state), ["unchanged", "unchanged"]);

    const bad = await m.host.request("store", { salt: "s", logins: [{ ...logins[0], expect: "nothex" }] });
    assert.equal(bad.code, "invalid_request");
    assert.equal(bad.field, "expect");
  } finally {
    m.credsync.writeLogins = real;
  }
});

test("onLoginFailed: logins kept as failed (no password); a changed login forgets its own, an incoming one its account's", async () => {
  const fail = login => Promise.all(m.credsync.onLoginFailed.listeners.map(l => l(login)));
  const kept = async () => Object.keys((await command({ cmd: "expiry" })).result.failedLogins).sort();
  const IMAP = "imap://mail.example.org\nmario";
  const SMTP = "smtp://mail.example.org\nmario";
  await fail({ origin: "IMAP://mail.example.org", username: "mario" });
  await fail({ origin: "smtp://mail.example.org", username: "mario" });
  await settle();
  assert.deepEqual(await kept(), [IMAP, SMTP]);
  assert.equal(typeof (await command({ cmd: "expiry" })).result.failedLogins[IMAP], "number");
  await changed({ origin: "smtp://mail.example.org", username: "mario", byCredsync: true });
  await settle();
  assert.deepEqual(await kept(), [IMAP], "the outgoing password is not the one the expiry check uses");
  await fail({ origin: "smtp://mail.example.org", username: "mario" });
  await changed({ origin: "imap://mail.example.org", username: "mario", byCredsync: true });
  await settle();
  assert.deepEqual(await kept(), [], "the incoming password changed: the account's failures go");
});

test("onLoginChanged by credsync: nothing forwarded, nothing recorded", async () => {
  await changed({ origin: "imap://mail.example.org", username: "mario", byCredsync: true });
  assert.equal(m.host.requests("propagate").length, 0);
  assert.deepEqual((await command({ cmd: "propagations" })).result.propagations, []);
});

test("onLoginChanged with the setting off: recorded as disabled, nothing forwarded", async () => {
  await command({ cmd: "setSettings", autoPropagate: false });
  await changed({ origin: "imap://mail.example.org", username: "mario", byCredsync: false });
  await command({ cmd: "setSettings", autoPropagate: true });
  assert.equal(m.host.requests("propagate").length, 0);
  const [p] = (await command({ cmd: "propagations" })).result.propagations;
  assert.equal(p.enabled, false);
  assert.deepEqual(p.accountIds, ["account1"]);
  assert.deepEqual(p.results, []);
  assert.equal(p.notification, null);
  assert.equal(m.shown.length, 0);
});

test("onLoginChanged: forwarded; the host may read that login only while it works; a notification from its result", async () => {
  m.logins.set("imap://mail.example.org\nmario", "saved-by-tb");
  let read;
  m.host.handlers.propagate = async (req, h) => {
    assert.deepEqual({ origin: req.origin, username: req.username }, { origin: "imap://mail.example.org", username: "mario" });
    read = await h.request("login", { origin: "imap://mail.example.org", username: "mario" });
    const other = await h.request("login", { origin: "smtp://mail.example.org", username: "mario" });
    assert.equal(other.code, "not_allowed");
    return {
      updated: true,
      stored: true,
      accounts: [
        { id: "account1", name: "Mario", sides: ["outgoing"] },
        { id: "account2", name: "Mario POP", sides: ["incoming"] },
      ],
      logins: [],
      servers: [],
    };
  };
  await changed({ origin: "imap://mail.example.org", username: "mario", byCredsync: false });
  assert.deepEqual(read.result, { password: "saved-by-tb" });
  const after = await m.host.request("login", { origin: "imap://mail.example.org", username: "mario" });
  assert.equal(after.code, "not_allowed", "not after the propagation");
  const p = (await command({ cmd: "propagations" })).result.propagations.at(-1);
  assert.equal(p.enabled, true);
  assert.equal(p.side, "incoming");
  assert.deepEqual(p.accountIds, ["account1", "account2"]);
  assert.deepEqual(p.results, [
    { id: "account1", name: "Mario", sides: ["outgoing"], stored: true },
    { id: "account2", name: "Mario POP", sides: ["incoming"], stored: true },
  ]);
  assert.equal(p.notification.title, "Mail password updated");
  assert.match(p.notification.message, /Thunderbird saved a new password for incoming mail\./);
  assert.match(p.notification.message, /“Mario”: checked and now saved for outgoing mail too/);
  const n = m.shown.at(-1);
  assert.match(n.id, /^credsync-propagation-/);
  assert.equal(n.message, p.notification.message);
  assert.equal(JSON.stringify(p).includes("saved-by-tb"), false);
});

test("a login the host cannot read: no_login", async () => {
  m.host.handlers.propagate = async (req, h) => {
    const reply = await h.request("login", { origin: req.origin, username: req.username });
    assert.equal(reply.code, "no_login");
    throw { code: "no_login", message: "the login is gone" };
  };
  await changed({ origin: "smtp://mail.example.org", username: "nobody", byCredsync: false });
  const p = (await command({ cmd: "propagations" })).result.propagations.at(-1);
  assert.equal(p.side, "outgoing");
  assert.equal(p.error.code, "no_login");
});

test("propagations run one at a time, in order; a failure is notified with the servers' answers", async () => {
  const order = [];
  let release;
  m.host.handlers.propagate = async req => {
    order.push(`start ${req.username}`);
    if (req.username === "first") {
      await new Promise(r => (release = r));
    }
    order.push(`end ${req.username}`);
    if (req.username === "second") {
      throw {
        code: "verification_failed",
        message: "refused",
        accounts: [{ id: "account1", name: "Mario", sides: ["outgoing"] }],
        servers: [{ side: "outgoing", protocol: "smtp", host: "mail.example.org", port: 465, username: "second", outcome: "auth_failed", detail: "535" }],
      };
    }
    return { updated: false, stored: false, accounts: [], logins: [], servers: [] };
  };
  const count = m.shown.length;
  const one = changed({ origin: "imap://mail.example.org", username: "first", byCredsync: false });
  const two = changed({ origin: "imap://mail.example.org", username: "second", byCredsync: false });
  await settle(10);
  assert.deepEqual(order, ["start first"], "the second waits");
  release();
  await Promise.all([one, two]);
  assert.deepEqual(order, ["start first", "end first", "start second", "end second"]);
  const list = (await command({ cmd: "propagations" })).result.propagations;
  const [first, second] = list.slice(-2);
  assert.equal(first.updated, false);
  assert.equal(first.notification, null, "nothing to say when nothing needed writing");
  assert.deepEqual(second.results.map(r => [r.id, r.stored, r.error.code]), [["account1", false, "verification_failed"]]);
  assert.equal(second.notification.title, "Mail password not updated everywhere");
  assert.match(second.notification.message, /outgoing mail: the server rejected the password/);
  assert.equal(m.shown.length, count + 1);
});

test("settings: setSettings validates", async () => {
  const r = await command({ cmd: "setSettings", autoPropagate: "yes" });
  assert.equal(r.error.code, "invalid_request");
  assert.equal(r.error.field, "autoPropagate");
});

test("guided mode: openPage opens the account's page and remembers it; clearGuided forgets", async () => {
  const r = await command({ cmd: "openPage", accountId: "account3", reason: "aruba" });
  assert.deepEqual(r.result, { url: "https://gestionemail.pec.it/", where: "tab" });
  const g = (await command({ cmd: "guided" })).result.guided;
  assert.equal(g.accountId, "account3");
  assert.equal(g.reason, "aruba");
  await command({ cmd: "clearGuided", accountId: "account3" });
  assert.equal((await command({ cmd: "guided" })).result.guided, null);
  const typed = await command({ cmd: "openPage", accountId: "account4", url: "https://mail.google.com/" });
  assert.equal(typed.result.url, "https://mail.google.com/");
  const bad = await command({ cmd: "setPage", accountId: "account4", url: "ftp://x" });
  assert.equal(bad.error.code, "invalid_request");
});

// ---- a change waiting for servers that lag behind the provider (PROTOCOL.md, "Waiting for the servers")

const WAIT = { nextCheck: "2026-03-01T09:01:00Z", checks: 0, failedLogins: 2, budget: 4 };
const MARIO = [{ id: "account1", name: "Mario", sides: ["incoming", "outgoing"] }];

// A change the test ends: the host posts a waiting event, then answers when told.
function heldChange() {
  const held = {};
  m.host.handlers.change = (req, h) =>
    new Promise((resolve, reject) => {
      h.post({ type: "waiting", request: req.id, ...WAIT });
      Object.assign(held, { resolve, reject });
    });
  return held;
}

function openPort() {
  const events = [];
  const onMessage = { listeners: [] };
  const disconnect = { listeners: [] };
  const port = {
    name: "credsync",
    onMessage: { addListener: fn => onMessage.listeners.push(fn) },
    onDisconnect: { addListener: fn => disconnect.listeners.push(fn) },
    postMessage: e => events.push(structuredClone(e)),
  };
  m.runtime.onConnect.listeners.forEach(l => l(port));
  return { events, send: msg => onMessage.listeners.forEach(l => l(msg)), close: () => disconnect.listeners.forEach(l => l()) };
}

test("pause and resume from the host: the Experiment's pauseChecks and resumeChecks; bad accounts refused", async () => {
  let r = await m.host.request("pause", { accounts: ["account1", "account2", "account9"] });
  assert.deepEqual(r.result, { paused: ["account1", "account2"] });
  assert.deepEqual([...m.paused.keys()], ["account1", "account2"]);
  r = await m.host.request("resume", { accounts: ["account1", "account2"] });
  assert.deepEqual(r.result, { resumed: ["account1", "account2"] });
  assert.equal(m.paused.size, 0);
  r = await m.host.request("pause", { accounts: "account1" });
  assert.equal(r.code, "invalid_request");
  assert.equal(m.paused.size, 0);
});

test("a waiting change over a port: waiting events, status, cancel sent to the host; no notification while watched", async () => {
  const held = heldChange();
  let cancelled;
  m.host.handlers.cancel = async req => {
    cancelled = req.accountId;
    return { cancelled: true };
  };
  const shown = m.shown.length;
  const port = openPort();
  port.send({ cmd: "change", accountId: "account1", current: "old-pw", new: "new-pw" });
  await settle(10);
  assert.deepEqual(port.events, [{ type: "waiting", ...WAIT }]);
  const flow = (await command({ cmd: "status" })).result.flows.find(f => f.accountId === "account1");
  assert.deepEqual(flow.waiting, WAIT);
  assert.equal(flow.done, false);
  // A popup opened later sees the wait at once.
  const late = openPort();
  late.send({ cmd: "watch", accountId: "account1" });
  assert.deepEqual(late.events, [{ type: "waiting", ...WAIT }]);
  const r = await command({ cmd: "cancel", accountId: "account1" });
  assert.deepEqual(r, { ok: true, result: { cancelled: true } });
  assert.equal(cancelled, "account1");
  const waited = { checks: 0, failedLogins: 2, budget: 4, end: "cancelled" };
  held.reject({ code: "verification_failed", message: "cancelled", changed: true, waited, accounts: MARIO });
  await settle(10);
  assert.equal(port.events.at(-1).type, "result");
  assert.deepEqual(port.events.at(-1).error.waited, waited);
  assert.equal(m.shown.length, shown, "no notification: the popup watched, and the user cancelled");
  assert.equal((await command({ cmd: "cancel" })).error.code, "invalid_request");
});

test("a wait that ends while the popup is closed: a notification says stored, or still refused", async () => {
  for (const [answer, title, text] of [
    [
      { ok: true, result: { changed: true, stored: true, accounts: MARIO, waited: { checks: 2, failedLogins: 3, budget: 4, end: "accepted" } } },
      "Mail password saved",
      /now accept the new password of “Mario”: it is saved/,
    ],
    [
      { ok: false, error: { code: "verification_failed", changed: true, accounts: MARIO, waited: { checks: 2, failedLogins: 4, budget: 4, end: "budget_spent" } } },
      "Mail password not saved",
      /still refuse the new password of “Mario”.*I already changed it elsewhere/,
    ],
    [
      { ok: false, error: { code: "outcome_unknown", changed: false, accounts: MARIO, waited: { checks: 2, failedLogins: 4, budget: 4, end: "schedule_over" } } },
      "Mail password not saved",
      /did not confirm the change.*nothing changed/,
    ],
    [
      { ok: false, error: { code: "store_failed", changed: true, accounts: MARIO, waited: { checks: 1, failedLogins: 2, budget: 4, end: "accepted" } } },
      "Mail password not saved",
      /could not save it \(store_failed\)/,
    ],
  ]) {
    const held = heldChange();
    const port = openPort();
    port.send({ cmd: "change", accountId: "account1", current: "old-pw", new: "new-pw" });
    await settle(10);
    port.close(); // the popup closed
    const shown = m.shown.length;
    answer.ok ? held.resolve(answer.result) : held.reject({ message: "m", ...answer.error });
    await settle(10);
    assert.equal(m.shown.length, shown + 1, title);
    const n = m.shown.at(-1);
    assert.equal(n.title, title);
    assert.match(n.message, text);
    assert.doesNotMatch(n.message, /new-pw|old-pw/);
  }
});

test("the host exits while a change waits: every paused account is resumed", async () => {
  heldChange();
  await m.host.request("pause", { accounts: ["account1"] });
  const done = command({ cmd: "change", accountId: "account1", current: "old-pw", new: "new-pw" });
  await settle(10);
  m.host.exit();
  const r = await done;
  assert.equal(r.error.code, "host_disconnected");
  assert.equal(m.paused.size, 0);
  assert.ok(m.checkCalls.includes("resumeAll"));
  await command({ cmd: "hello" }); // reconnects for whatever follows
});
