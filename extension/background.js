// Background page: only listeners. The logic lives in lib/core.js; the
// native port opens on the first request and then stays open.
//
// Commands from the popup and the options page, as runtime messages
// {cmd, ...} answered with {ok: true, result} or {ok: false, error: {code,
// message, ...}}:
//   hello                          the host's hello result
//   accounts                       {accounts: [...]} (see core.accounts)
//   setBackend {accountId, name, url}
//   change {accountId, current, new}   final answer only
//   status                         {flows: [...]}: running changes, and
//                                  finished ones not yet shown (then marked shown)
// A port from runtime.connect({name: "credsync"}) accepts {cmd: "change", ...}
// or {cmd: "watch", accountId} and receives {type: "progress", step, state}
// events, then {type: "result", ok, result | error}.

import { accounts, changePassword, CredsyncError, hello, setBackend } from "./lib/core.js";

export { changePassword };

const flows = new Map(); // accountId -> running or unshown change

async function respond(work) {
  try {
    return { ok: true, result: await work() };
  } catch (e) {
    return { ok: false, error: asError(e) };
  }
}

function asError(e) {
  if (e instanceof CredsyncError) {
    return e.toJSON();
  }
  // Experiment errors carry "code: message".
  const [, code, message] = /^([a-z_]+): (.*)$/s.exec(e?.message ?? "") ?? [];
  return code
    ? { code, message }
    : { code: "internal_error", message: "the extension failed unexpectedly" };
}

function startChange({ accountId, current, new: newPassword }) {
  if (flows.get(accountId)?.done === false) {
    const response = {
      ok: false,
      error: { code: "busy", message: "a change for this account is already running" },
    };
    return { steps: {}, done: true, response, watchers: new Set(), promise: Promise.resolve(response) };
  }
  const flow = { accountId, steps: {}, done: false, response: null, shown: false, watchers: new Set() };
  flows.set(accountId, flow);
  const emit = event => flow.watchers.forEach(watcher => watcher(event));
  flow.promise = respond(() =>
    changePassword(accountId, current, newPassword, ({ step, state }) => {
      flow.steps[step] = state;
      emit({ type: "progress", step, state });
    })
  ).then(response => {
    flow.done = true;
    flow.response = response;
    emit({ type: "result", ...response });
    return response;
  });
  return flow;
}

function status() {
  const list = [];
  for (const flow of flows.values()) {
    if (flow.done && flow.shown) {
      continue;
    }
    list.push({ accountId: flow.accountId, steps: flow.steps, done: flow.done, response: flow.response });
    flow.shown ||= flow.done;
  }
  return { flows: list };
}

function watch(port, flow) {
  if (!flow) {
    port.postMessage({ type: "result", ok: false, error: { code: "no_flow", message: "no change is running" } });
    return;
  }
  const watcher = event => {
    try {
      port.postMessage(event);
    } catch {
      return; // the page closed
    }
    if (event.type === "result") {
      flow.shown = true;
    }
  };
  for (const [step, state] of Object.entries(flow.steps)) {
    watcher({ type: "progress", step, state });
  }
  if (flow.done) {
    watcher({ type: "result", ...flow.response });
    return;
  }
  flow.watchers.add(watcher);
  port.onDisconnect.addListener(() => flow.watchers.delete(watcher));
}

messenger.runtime.onMessage.addListener(message => {
  switch (message?.cmd) {
    case "hello":
      return respond(hello);
    case "accounts":
      return respond(async () => ({ accounts: await accounts() }));
    case "setBackend":
      return respond(() => setBackend(message.accountId, message.name, message.url));
    case "change": {
      const flow = startChange(message);
      return flow.promise.then(response => {
        flow.shown = true;
        return response;
      });
    }
    case "status":
      return respond(async () => status());
  }
  return false;
});

messenger.runtime.onConnect.addListener(port => {
  if (port.name !== "credsync") {
    return;
  }
  port.onMessage.addListener(message => {
    if (message?.cmd === "change") {
      watch(port, startChange(message));
    } else if (message?.cmd === "watch") {
      watch(port, flows.get(message.accountId));
    }
  });
});
