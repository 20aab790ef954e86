// lib/host.js: the native-messaging transport.

import assert from "node:assert/strict";
import { test } from "node:test";
import { CredsyncError, NativeHost } from "../../extension/lib/host.js";
import { FakeHost, settle } from "./fake.js";

globalThis.messenger = {}; // NativeHost only uses it without `connect`

function setup({ onRequest = async () => ({}), reconnectMs = [5, 20] } = {}) {
  const fake = new FakeHost();
  let fail = null; // an error connect throws
  const host = new NativeHost({
    name: "credsync",
    onRequest,
    reconnectMs,
    connect: () => {
      if (fail) {
        throw fail;
      }
      return fake.connect();
    },
  });
  return { fake, host, failWith: e => (fail = e) };
}

test("a request resolves with its reply's result; ids are unique", async () => {
  const { fake, host } = setup();
  fake.handlers.hello = async () => ({ name: "credsync", protocol: 2 });
  fake.handlers.echo = async req => ({ got: req.x });
  const [a, b] = await Promise.all([host.request("hello"), host.request("echo", { x: 1 })]);
  assert.deepEqual(a, { name: "credsync", protocol: 2 });
  assert.deepEqual(b, { got: 1 });
  const ids = fake.sent.map(m => m.id);
  assert.equal(new Set(ids).size, ids.length);
  assert.equal(fake.ports, 1, "one port for both");
});

test("an error reply rejects with its code, message and extra members", async () => {
  const { fake, host } = setup();
  fake.handlers.change = async () => {
    throw { code: "store_failed", message: "could not", changed: true, logins: [{ origin: "imap://h", username: "u", state: "restored" }] };
  };
  await assert.rejects(host.request("change"), e => {
    assert.ok(e instanceof CredsyncError);
    assert.equal(e.code, "store_failed");
    assert.equal(e.message, "could not");
    assert.deepEqual(e.toJSON(), {
      code: "store_failed",
      message: "could not",
      changed: true,
      logins: [{ origin: "imap://h", username: "u", state: "restored" }],
    });
    return true;
  });
});

test("progress events reach the request they name", async () => {
  const { fake, host } = setup();
  fake.handlers.sync = async (req, h) => {
    h.post({ type: "progress", request: req.id, step: "policy", state: "ok" });
    h.post({ type: "progress", request: "other", step: "saving", state: "ok" });
    h.post({ type: "progress", request: req.id, step: "saving", state: "running" });
    return { stored: true };
  };
  const seen = [];
  const result = await host.request("sync", {}, { onProgress: p => seen.push(p) });
  assert.deepEqual(result, { stored: true });
  assert.deepEqual(seen, [
    { step: "policy", state: "ok" },
    { step: "saving", state: "running" },
  ]);
});

test("a request without an answer rejects with host_timeout; a late reply is ignored", async () => {
  const { fake, host } = setup();
  let late;
  fake.handlers.hello = async req => {
    late = req.id;
    return fake.HOLD;
  };
  await assert.rejects(host.request("hello", {}, { timeoutMs: 20 }), { code: "host_timeout" });
  fake.post({ id: late, status: "ok", result: {} }); // no pending request: ignored
  fake.handlers.hello = async () => ({ ok: 1 });
  assert.deepEqual(await host.request("hello"), { ok: 1 });
});

test("the host exiting rejects pending requests: host_not_installed before any answer, host_disconnected after", async () => {
  const { fake, host } = setup();
  fake.handlers.change = async () => fake.HOLD;
  const first = host.request("change");
  await settle();
  fake.exit();
  await assert.rejects(first, { code: "host_not_installed" });

  fake.handlers.hello = async () => ({});
  await host.request("hello");
  const second = host.request("change");
  await settle();
  fake.exit("killed");
  await assert.rejects(second, e => e.code === "host_disconnected" && /killed/.test(e.message));
});

test("connectNative failing is host_not_installed", async () => {
  const { host, failWith } = setup();
  failWith(new Error("No such native application credsync"));
  await assert.rejects(host.request("hello"), e => e.code === "host_not_installed" && /not installed/.test(e.message));
});

test("keepOpen reconnects with backoff after the host exits and calls onOpen each time", async () => {
  const { fake, host } = setup({ reconnectMs: [5, 10] });
  fake.handlers.hello = async () => ({});
  let opens = 0;
  host.keepOpen({ onOpen: () => opens++ });
  assert.equal(opens, 1);
  assert.ok(fake.connected);
  const generation = host.generation;
  fake.exit();
  assert.notEqual(host.generation, generation, "a closed port is a new generation");
  await settle(30);
  assert.equal(opens, 2);
  assert.ok(fake.connected);
  assert.equal(fake.ports, 2);
});

test("requests from the host are answered, errors as error replies without other details", async () => {
  const { fake, host } = setup({
    onRequest: async req => {
      if (req.type === "accounts") {
        return { accounts: [] };
      }
      if (req.type === "store") {
        throw new CredsyncError("store_conflict", "changed meanwhile", { logins: [] });
      }
      throw new Error("secret detail");
    },
  });
  fake.handlers.hello = async () => ({});
  await host.request("hello");
  assert.deepEqual(await fake.request("accounts"), { id: "h1", status: "ok", result: { accounts: [] } });
  assert.deepEqual(await fake.request("store"), {
    id: "h2",
    status: "error",
    code: "store_conflict",
    message: "changed meanwhile",
    logins: [],
  });
  const reply = await fake.request("boom");
  assert.equal(reply.code, "internal_error");
  assert.doesNotMatch(JSON.stringify(reply), /secret/);
});
