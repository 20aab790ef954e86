// lib/settings.js: autoPropagate (what the user chose over the
// administrator's preset, over the default) and the password checks (the
// administrator's value, locked, over the user's, over the default).

import assert from "node:assert/strict";
import { test } from "node:test";
import { fakeMessenger } from "./fake.js";

const { settings, setSettings, managedObject, localObject, breachCheckMember, isBreachUrl, DEFAULT_BREACH_URL } = await import(
  "../../extension/lib/settings.js"
);

const DEFAULT_CHECKS = {
  minStrength: 0,
  breachCheck: false,
  breachUrl: "https://api.pwnedpasswords.com",
  breachFailClosed: false,
  expiryWarnings: true,
  expiryWarnDays: 14,
  locked: { minStrength: false, breachCheck: false, breachUrl: false, breachFailClosed: false, expiryWarnings: false, expiryWarnDays: false },
};

test("default: on, nothing managed (no managed storage at all)", async () => {
  globalThis.messenger = fakeMessenger();
  assert.deepEqual(await settings(), { autoPropagate: true, managed: null, ...DEFAULT_CHECKS });
});

test("the administrator's value when the user chose nothing", async () => {
  globalThis.messenger = fakeMessenger({ managed: { autoPropagate: false } });
  assert.deepEqual(await settings(), { autoPropagate: false, managed: false, ...DEFAULT_CHECKS });
});

test("the user's choice over the administrator's", async () => {
  globalThis.messenger = fakeMessenger({ managed: { autoPropagate: false }, local: { autoPropagate: true } });
  assert.deepEqual(await settings(), { autoPropagate: true, managed: false, ...DEFAULT_CHECKS });
  assert.deepEqual(await setSettings({ autoPropagate: false }), { autoPropagate: false, managed: false, ...DEFAULT_CHECKS });
});

test("values of the wrong type are ignored", async () => {
  globalThis.messenger = fakeMessenger({ managed: { autoPropagate: "no", backends: [] }, local: { autoPropagate: 1, pages: "x" } });
  assert.deepEqual(await settings(), { autoPropagate: true, managed: null, ...DEFAULT_CHECKS });
  assert.deepEqual(await managedObject("backends"), {});
  assert.deepEqual(await localObject("pages"), {});
  await assert.rejects(setSettings({ autoPropagate: "yes" }), { code: "invalid_request", extra: { field: "autoPropagate" } });
  await assert.rejects(setSettings({}), { code: "invalid_request" });
});

// One value of each check for the user, another for the administrator.
const LOCAL = { minStrength: 2, breachCheck: true, breachUrl: "https://user-mirror.example.org/pwned", breachFailClosed: true };
const MANAGED = { minStrength: 3, breachCheck: false, breachUrl: "https://mirror.example.org", breachFailClosed: false };

for (const key of Object.keys(LOCAL)) {
  test(`${key}: managed → local → default`, async () => {
    globalThis.messenger = fakeMessenger();
    assert.equal((await settings())[key], DEFAULT_CHECKS[key], "the default");

    globalThis.messenger = fakeMessenger({ local: { [key]: LOCAL[key] } });
    let s = await settings();
    assert.equal(s[key], LOCAL[key], "the user's");
    assert.equal(s.locked[key], false);

    globalThis.messenger = fakeMessenger({ local: { [key]: LOCAL[key] }, managed: { [key]: MANAGED[key] } });
    s = await settings();
    assert.equal(s[key], MANAGED[key], "the administrator's, over the user's");
    assert.equal(s.locked[key], true);
    for (const other of Object.keys(LOCAL).filter(k => k !== key)) {
      assert.equal(s.locked[other], false, `${other} is not locked by ${key}`);
    }
    await assert.rejects(setSettings({ [key]: LOCAL[key] }), { code: "invalid_request", extra: { field: key } }, "locked");
    assert.equal((await settings())[key], MANAGED[key]);
  });
}

test("the checks: invalid values are ignored wherever they come from, and refused when saved", async () => {
  const invalid = {
    minStrength: [5, -1, 2.5, "3", null, true],
    breachCheck: ["true", 1, null],
    breachUrl: ["http://mirror.example.org", "ftp://x", "https://", "https://u:p@x.example", "https://x.example/?q", "https://x.example/#f", "", 7, "not a url"],
    breachFailClosed: ["false", 0, null],
  };
  for (const [key, values] of Object.entries(invalid)) {
    for (const value of values) {
      globalThis.messenger = fakeMessenger({ local: { [key]: value }, managed: { [key]: value } });
      const s = await settings();
      assert.equal(s[key], DEFAULT_CHECKS[key], `${key} = ${JSON.stringify(value)}`);
      assert.equal(s.locked[key], false, `${key} = ${JSON.stringify(value)} locks nothing`);
      await assert.rejects(setSettings({ [key]: value }), { code: "invalid_request", extra: { field: key } });
    }
  }
});

test("the user saves the checks the administrator did not lock; the result is the settings in force", async () => {
  globalThis.messenger = fakeMessenger({ managed: { minStrength: 3 } });
  const s = await setSettings({ breachCheck: true, breachUrl: "https://mirror.example.org", breachFailClosed: true });
  assert.deepEqual(s, {
    autoPropagate: true,
    managed: null,
    minStrength: 3,
    breachCheck: true,
    breachUrl: "https://mirror.example.org",
    breachFailClosed: true,
    expiryWarnings: true,
    expiryWarnDays: 14,
    locked: { minStrength: true, breachCheck: false, breachUrl: false, breachFailClosed: false, expiryWarnings: false, expiryWarnDays: false },
  });
  assert.deepEqual(messenger.storage.local.data, { breachCheck: true, breachUrl: "https://mirror.example.org", breachFailClosed: true });
  // One invalid key: nothing of the request is saved.
  await assert.rejects(setSettings({ breachCheck: false, minStrength: 7 }), { extra: { field: "minStrength" } });
  assert.equal(messenger.storage.local.data.breachCheck, true);
});

test("the change's breachCheck member: {url, failClosed} when the check is on, else none", async () => {
  assert.equal(breachCheckMember(DEFAULT_CHECKS), null);
  assert.equal(breachCheckMember(null), null);
  assert.deepEqual(breachCheckMember({ ...DEFAULT_CHECKS, breachCheck: true }), { url: DEFAULT_BREACH_URL, failClosed: false });
  globalThis.messenger = fakeMessenger({ managed: { breachCheck: true, breachFailClosed: true }, local: { breachUrl: "https://mirror.example.org" } });
  assert.deepEqual(breachCheckMember(await settings()), { url: "https://mirror.example.org", failClosed: true });
});

test("isBreachUrl: https with a host, no user, query or fragment", () => {
  for (const url of ["https://api.pwnedpasswords.com", "https://mirror.example.org/pwned/", "https://127.0.0.1:8443"]) {
    assert.equal(isBreachUrl(url), true, url);
  }
  assert.equal(isBreachUrl(`https://x.example/${"a".repeat(2048)}`), false, "too long");
});
