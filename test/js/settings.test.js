// lib/settings.js: what the user chose, over the administrator's preset,
// over the default.

import assert from "node:assert/strict";
import { test } from "node:test";
import { fakeMessenger } from "./fake.js";

const { settings, setSettings, managedObject, localObject } = await import("../../extension/lib/settings.js");

test("default: on, nothing managed (no managed storage at all)", async () => {
  globalThis.messenger = fakeMessenger();
  assert.deepEqual(await settings(), { autoPropagate: true, managed: null });
});

test("the administrator's value when the user chose nothing", async () => {
  globalThis.messenger = fakeMessenger({ managed: { autoPropagate: false } });
  assert.deepEqual(await settings(), { autoPropagate: false, managed: false });
});

test("the user's choice over the administrator's", async () => {
  globalThis.messenger = fakeMessenger({ managed: { autoPropagate: false }, local: { autoPropagate: true } });
  assert.deepEqual(await settings(), { autoPropagate: true, managed: false });
  assert.deepEqual(await setSettings({ autoPropagate: false }), { autoPropagate: false, managed: false });
});

test("values of the wrong type are ignored", async () => {
  globalThis.messenger = fakeMessenger({ managed: { autoPropagate: "no", backends: [] }, local: { autoPropagate: 1, pages: "x" } });
  assert.deepEqual(await settings(), { autoPropagate: true, managed: null });
  assert.deepEqual(await managedObject("backends"), {});
  assert.deepEqual(await localObject("pages"), {});
  await assert.rejects(setSettings({ autoPropagate: "yes" }), { code: "invalid_request" });
});
