// Background page: listeners only; it decides nothing. The native port
// opens at startup and stays open (the host then listens on its local
// socket for `credsync sync`), reopened with backoff if the host exits.
//
// Commands from the popup and the options page, as runtime messages
// {cmd, ...} answered with {ok: true, result} or {ok: false, error: {code,
// message, ...}}:
//   hello                          the host's hello result (cached per connection)
//   accounts                       {accounts: [...], planError?} (lib/accounts.js)
//   check {backend?, current?, new}   the host's {violations: [...]}
//   setBackend {accountId, name, url}
//   setPage {accountId, url}       the provider's web page (guided mode)
//   openPage {accountId, url?, browser?, reason?}
//                                  guided mode: opens the provider's page in
//                                  a Thunderbird tab (or the web browser);
//                                  {url, where}
//   guided                         {guided: {accountId, reason, at} | null}
//   clearGuided {accountId?}
//   change {accountId, current, new}   final answer only
//   sync {accountId, password}         "I already changed it"; final answer only
//   status                         {flows: [...]}: running changes and syncs,
//                                  and finished ones not yet shown (then marked shown)
//   settings                       {autoPropagate, managed}
//   setSettings {autoPropagate}    the new settings
//   propagations                   {propagations: [...]} (lib/propagation.js)
// A port from runtime.connect({name: "credsync"}) accepts {cmd: "change", ...},
// {cmd: "sync", ...} or {cmd: "watch", accountId} and receives {type:
// "progress", step, state} events, then {type: "result", ok, result | error}.
//
// The host's requests are answered by lib/requests.js; a password
// Thunderbird saves (credsync.onLoginChanged, which wakes this page) goes to
// lib/propagation.js.

import { accounts, setBackend, setPage } from "./lib/accounts.js";
import { connectHost, errorJSON, hello, request, serve } from "./lib/connection.js";
import { changePassword, syncPassword } from "./lib/flows.js";
import { clearGuided, guided, openPage } from "./lib/guided.js";
import { onLoginChanged, propagations } from "./lib/propagation.js";
import { answerHost } from "./lib/requests.js";
import { setSettings, settings } from "./lib/settings.js";

const CHECK_TIMEOUT_MS = 10000;

const flows = new Map(); // accountId -> running or unshown change or sync

async function respond(work) {
  try {
    return { ok: true, result: await work() };
  } catch (e) {
    return { ok: false, error: errorJSON(e) };
  }
}

// The popup's rules check while the user types (the host checks again).
function check({ backend, current, new: next }) {
  const members = { new: typeof next === "string" ? next : "" };
  if (typeof backend === "string" && backend) {
    members.backend = backend;
  }
  if (typeof current === "string" && current) {
    members.current = current;
  }
  return request("check", members, { timeoutMs: CHECK_TIMEOUT_MS });
}

// Starts a change or a sync ("kind") unless one runs for the account.
function startFlow(kind, message) {
  const { accountId } = message;
  if (flows.get(accountId)?.done === false) {
    const response = {
      ok: false,
      error: { code: "busy", message: "a change for this account is already running" },
    };
    return { steps: {}, done: true, response, watchers: new Set(), promise: Promise.resolve(response) };
  }
  const flow = { accountId, kind, steps: {}, done: false, response: null, shown: false, watchers: new Set() };
  flows.set(accountId, flow);
  const emit = event => flow.watchers.forEach(watcher => watcher(event));
  const onProgress = ({ step, state }) => {
    flow.steps[step] = state;
    emit({ type: "progress", step, state });
  };
  const work =
    kind === "sync"
      ? () => syncPassword(accountId, message.password, onProgress)
      : () => changePassword(accountId, message.current, message.new, onProgress);
  flow.promise = respond(work).then(async response => {
    if (response.ok) {
      // The password changed on the provider's page is now saved: guided
      // mode is over for this account.
      await clearGuided(accountId).catch(() => {});
    }
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
    const { accountId, kind, steps, done, response } = flow;
    list.push({ accountId, kind, steps, done, response });
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

serve(answerHost);

// Registered at the top level: a persistent event that wakes this page.
messenger.credsync.onLoginChanged.addListener(change => onLoginChanged(change));

messenger.runtime.onMessage.addListener(message => {
  switch (message?.cmd) {
    case "hello":
      return respond(hello);
    case "accounts":
      return respond(accounts);
    case "check":
      return respond(() => check(message));
    case "setBackend":
      return respond(() => setBackend(message.accountId, message.name, message.url));
    case "setPage":
      return respond(() => setPage(message.accountId, message.url));
    case "openPage":
      return respond(() =>
        openPage(message.accountId, { url: message.url, browser: message.browser === true, reason: message.reason })
      );
    case "guided":
      return respond(async () => ({ guided: await guided() }));
    case "clearGuided":
      return respond(() => clearGuided(message.accountId));
    case "change":
    case "sync": {
      const flow = startFlow(message.cmd, message);
      return flow.promise.then(response => {
        flow.shown = true;
        return response;
      });
    }
    case "status":
      return respond(async () => status());
    case "settings":
      return respond(settings);
    case "setSettings":
      return respond(() => setSettings({ autoPropagate: message.autoPropagate }));
    case "propagations":
      return respond(async () => ({ propagations }));
  }
  return false;
});

messenger.runtime.onConnect.addListener(port => {
  if (port.name !== "credsync") {
    return;
  }
  port.onMessage.addListener(message => {
    if (message?.cmd === "change" || message?.cmd === "sync") {
      watch(port, startFlow(message.cmd, message));
    } else if (message?.cmd === "watch") {
      watch(port, flows.get(message.accountId));
    }
  });
});

// Starts this page with Thunderbird, so that the port opens at startup.
messenger.runtime.onStartup.addListener(() => {});

connectHost();
