import assert from "node:assert/strict";
import { test } from "node:test";

import { fakeMessenger } from "./fake.js";

globalThis.messenger = fakeMessenger();
const { DAY_MS, accountOfNotification, dueAccounts, expiryLine, formatDay, noticeFor, openForNotification, runExpiry } =
  await import("../../extension/lib/expiry.js");

const NOW = Date.parse("2027-01-07T08:00:00Z");
const EXPIRES = "2027-01-12T09:30:00Z";
const BACKENDS = new Map([
  ["ad", { name: "ad", expiry: true }],
  ["imap", { name: "imap" }],
]);
const ACCOUNT = {
  id: "account1",
  passwordBased: true,
  backend: { name: "ad", url: "ldaps://dc.example.org" },
  identity: { email: "m.rossi@aclibresciane.it" },
  incoming: { origin: "imap://mail.example.org", username: "m.rossi" },
};

function deps(clock, s = {}, failures = {}) {
  const requests = [];
  return {
    requests,
    accounts: async () => [ACCOUNT, { ...ACCOUNT, id: "account2", backend: { name: "imap" } }],
    hello: async () => ({}),
    backends: () => BACKENDS,
    request: async (type, members) => {
      requests.push({ type, ...members });
      return { state: "expires", expiresAt: EXPIRES, source: "msDS-UserPasswordExpiryTimeComputed" };
    },
    settings: async () => ({ expiryWarnings: true, expiryWarnDays: 14, ...s }),
    now: () => clock.now,
    failures: async () => failures,
    locale: "en",
  };
}

function install(locale = "en") {
  globalThis.messenger = fakeMessenger({ locale, logins: { "imap://mail.example.org\nm.rossi": "s3cret-Pass" } });
}

test("dueAccounts: only expiry back-ends, once a day, never a failed or refused one", () => {
  assert.deepEqual(dueAccounts([ACCOUNT], BACKENDS, {}, NOW).map(a => a.id), ["account1"]);
  assert.deepEqual(dueAccounts([{ ...ACCOUNT, backend: { name: "imap" } }], BACKENDS, {}, NOW), []);
  assert.deepEqual(dueAccounts([{ ...ACCOUNT, backend: null }], BACKENDS, {}, NOW), []);
  const state = { account1: { checkedAt: NOW - DAY_MS + 1 } };
  assert.deepEqual(dueAccounts([ACCOUNT], BACKENDS, state, NOW), []);
  assert.equal(dueAccounts([ACCOUNT], BACKENDS, state, NOW, { force: true }).length, 1);
  assert.equal(dueAccounts([ACCOUNT], BACKENDS, { account1: { checkedAt: NOW - DAY_MS } }, NOW).length, 1);
  const failures = { "imap://mail.example.org\nm.rossi": NOW - 60 * 1000 };
  assert.deepEqual(dueAccounts([ACCOUNT], BACKENDS, {}, NOW, { failures, force: true }), [], "its incoming login just failed");
  const smtp = { ...ACCOUNT, outgoing: { origin: "smtp://MAIL.example.org", username: "m.rossi" } };
  assert.deepEqual(dueAccounts([smtp], BACKENDS, {}, NOW, { failures: { "smtp://mail.example.org\nm.rossi": NOW } }), [], "its outgoing login");
  assert.equal(dueAccounts([ACCOUNT], BACKENDS, {}, NOW, { failures: { "imap://mail.example.org\nm.rossi": NOW - DAY_MS } }).length, 1, "a day later");
  assert.equal(dueAccounts([ACCOUNT], BACKENDS, {}, NOW, { failures: { "imap://mail.example.org\nM.Rossi": NOW } }).length, 1, "another user");
  assert.deepEqual(dueAccounts([ACCOUNT], BACKENDS, { account1: { refusedAt: 1 } }, NOW, { force: true }), []);
});

test("daily scheduling with a fake clock: one request a day, the notification once a day", async () => {
  install();
  const clock = { now: NOW };
  const d = deps(clock);
  const first = await runExpiry(d);
  assert.deepEqual(first, { checked: ["account1"], notified: ["account1"] });
  assert.equal(d.requests.length, 1);
  assert.equal(d.requests[0].type, "expiry");
  assert.equal(d.requests[0].password, "s3cret-Pass");
  assert.deepEqual(d.requests[0].backend, ACCOUNT.backend);
  // Nothing of the password in storage.
  assert.equal(JSON.stringify(messenger.storage.local.data).includes("s3cret"), false);
  assert.equal(messenger.shown.length, 1);
  assert.equal(messenger.shown[0].id, "credsync-expiry-account1");
  assert.equal(
    messenger.shown[0].message,
    "The password of m.rossi@aclibresciane.it expires on January 12 (in 6 days). Change it now with credsync."
  );
  clock.now += 12 * 60 * 60 * 1000;
  assert.deepEqual(await runExpiry(d), { checked: [], notified: [] });
  assert.equal(d.requests.length, 1);
  clock.now = NOW + DAY_MS;
  assert.deepEqual(await runExpiry(d), { checked: ["account1"], notified: ["account1"] });
  assert.equal(d.requests.length, 2);
  assert.equal(messenger.shown.length, 2);
});

test("off: nothing asked, nothing shown", async () => {
  install();
  const d = deps({ now: NOW }, { expiryWarnings: false });
  assert.deepEqual(await runExpiry(d), { checked: [], notified: [] });
  assert.equal(d.requests.length, 0);
  assert.equal(messenger.shown.length, 0);
});

test("a recently failed saved password: nothing asked", async () => {
  install();
  const d = deps({ now: NOW }, {}, { "imap://mail.example.org\nm.rossi": NOW - 1000 });
  await runExpiry(d);
  assert.equal(d.requests.length, 0);
});

test("a refused password is not tried again, even after a day", async () => {
  install();
  const clock = { now: NOW };
  const d = deps(clock);
  d.request = async (type, members) => {
    d.requests.push({ type, ...members });
    throw Object.assign(new Error("refused"), { code: "wrong_current_password" });
  };
  await runExpiry(d);
  clock.now += 3 * DAY_MS;
  await runExpiry(d);
  assert.equal(d.requests.length, 1);
  assert.equal(messenger.shown.length, 0);
});

test("outside the warning window: no notification", async () => {
  install();
  const d = deps({ now: NOW }, { expiryWarnDays: 3 });
  assert.deepEqual(await runExpiry(d), { checked: ["account1"], notified: [] });
});

test("the text and the date in Italian and English", () => {
  install("it");
  const entry = { state: "expires", expiresAt: EXPIRES };
  assert.equal(formatDay(EXPIRES, "it"), "12 gennaio");
  assert.equal(formatDay(EXPIRES, "en"), "January 12");
  const notice = noticeFor(entry, "m.rossi@aclibresciane.it", Date.parse("2027-01-07T10:00:00Z"), 14, "it");
  assert.equal(notice.message, "La password di m.rossi@aclibresciane.it scade il 12 gennaio (tra 5 giorni). Cambiala ora con credsync.");
  assert.equal(expiryLine(entry, Date.parse("2027-01-07T10:00:00Z"), "it"), "La password scade il 12 gennaio (tra 5 giorni).");
  assert.equal(expiryLine({ state: "expired" }, NOW, "it"), "Password scaduta: cambiala ora.");
  assert.equal(noticeFor({ state: "expired" }, "x@y.it", NOW, 14, "it").message, "La password di x@y.it è scaduta. Cambiala ora con credsync.");
  install("en");
  assert.equal(expiryLine(entry, NOW, "en"), "Password expires on January 12 (in 6 days).");
  assert.equal(expiryLine(entry, Date.parse(EXPIRES) + 1, "en"), "Password expired: change it now.");
  assert.equal(expiryLine({ state: "unknown" }, NOW, "en"), "");
  assert.equal(noticeFor({ ...entry, notifiedAt: NOW - 1000 }, "x", NOW, 14, "en"), null);
});

test("a click opens the popup on the account; without openPopup, a tab with ?account=", async () => {
  assert.equal(accountOfNotification("credsync-expiry-account1"), "account1");
  assert.equal(accountOfNotification("credsync-wait-account1-1"), null);
  install();
  let chosen = null;
  assert.equal(await openForNotification("credsync-expiry-account1", id => (chosen = id)), "popup");
  assert.equal(chosen, "account1");
  assert.deepEqual(messenger.opened, ["popup"]);
  assert.equal(await openForNotification("other", () => assert.fail()), null);
  globalThis.messenger = fakeMessenger({ openPopup: false });
  assert.equal(await openForNotification("credsync-expiry-account%2", () => {}), "tab");
  assert.deepEqual(messenger.opened, ["popup/popup.html?account=account%252"]);
});

test("runs at the same time ask once", async () => {
  install();
  const d = deps({ now: NOW });
  const [a, b] = await Promise.all([runExpiry(d), runExpiry(d)]);
  assert.deepEqual(a.checked, ["account1"]);
  assert.deepEqual(b.checked, []);
  assert.equal(d.requests.length, 1);
});
