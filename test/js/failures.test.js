// lib/failures.js: the saved logins Thunderbird recently failed with.

import assert from "node:assert/strict";
import { test } from "node:test";

import { fakeMessenger } from "./fake.js";

globalThis.messenger = fakeMessenger();
const { RECENT_MS, failedLogins, failedRecently, forgetFailures, loginKey, recordFailure } = await import("../../extension/lib/failures.js");

const NOW = Date.parse("2027-01-07T08:00:00Z");
const IMAP = { origin: "imap://mail.example.org", username: "m.rossi" };
const SMTP = { origin: "smtp://mail.example.org", username: "m.rossi" };

test("loginKey: the origin's case does not count, the user name's does", () => {
  assert.equal(loginKey({ origin: "IMAP://Mail.Example.org", username: "m.rossi" }), loginKey(IMAP));
  assert.notEqual(loginKey({ ...IMAP, username: "M.Rossi" }), loginKey(IMAP));
});

test("failedRecently: either login of the account, within a day, not in the future", () => {
  const account = { incoming: IMAP, outgoing: SMTP };
  assert.equal(failedRecently(account, {}, NOW), false);
  assert.equal(failedRecently(account, { [loginKey(SMTP)]: NOW - 1 }, NOW), true);
  assert.equal(failedRecently(account, { [loginKey(IMAP)]: NOW - RECENT_MS + 1 }, NOW), true);
  assert.equal(failedRecently(account, { [loginKey(IMAP)]: NOW - RECENT_MS }, NOW), false, "a day old");
  assert.equal(failedRecently(account, { [loginKey(IMAP)]: NOW + 60000 }, NOW), false, "a clock set back");
  assert.equal(failedRecently({ incoming: IMAP }, { [loginKey(SMTP)]: NOW }, NOW), false, "no outgoing server");
  assert.equal(failedRecently(account, { [loginKey(IMAP)]: "yesterday" }, NOW), false);
});

test("recordFailure keeps the time, drops failures a day old or ahead of the clock; forgetFailures removes those", async () => {
  globalThis.messenger = fakeMessenger({ local: { failedLogins: { [loginKey(SMTP)]: NOW - RECENT_MS, future: NOW + 5000, junk: "x" } } });
  await Promise.all([recordFailure(IMAP, NOW), recordFailure({ ...IMAP, username: "other" }, NOW + 1)]);
  assert.deepEqual(await failedLogins(), { [loginKey(IMAP)]: NOW, [loginKey({ ...IMAP, username: "other" })]: NOW + 1 }, "both kept: one update at a time");
  await forgetFailures([{ origin: "IMAP://mail.example.org", username: "m.rossi" }, SMTP]);
  assert.deepEqual(Object.keys(await failedLogins()), [loginKey({ ...IMAP, username: "other" })]);
});
