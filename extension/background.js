// Background page: only listeners. The logic lives in lib/core.js. The
// native port opens at startup and stays open (the host then listens on its
// local socket for `credsync sync`), reopened with backoff if the host exits.
//
// Commands from the popup and the options page, as runtime messages
// {cmd, ...} answered with {ok: true, result} or {ok: false, error: {code,
// message, ...}}:
//   hello                          the host's hello result
//   accounts                       {accounts: [...]} (see core.accounts)
//   setBackend {accountId, name, url}
//   setPage {accountId, url}         the provider's web page (guided mode)
//   openPage {accountId, url?, browser?, reason?}
//                                  guided mode: opens the provider's page in
//                                  a Thunderbird tab (or the web browser);
//                                  {url, where}
//   guided                         {guided: {accountId, reason, at} | null}:
//                                  the account last sent to its provider's
//                                  page, until its password is saved here
//   clearGuided {accountId?}
//   change {accountId, current, new}   final answer only
//   sync {accountId, password}         "I already changed it"; final answer only
//   status                         {flows: [...]}: running changes and syncs,
//                                  and finished ones not yet shown (then marked shown)
//   settings                       {autoPropagate, managed}
//   setSettings {autoPropagate}    the new settings
//   propagations                   {propagations: [...]}: the last automatic
//                                  propagations (no password), newest last
// A port from runtime.connect({name: "credsync"}) accepts {cmd: "change", ...},
// {cmd: "sync", ...} or {cmd: "watch", accountId} and receives {type:
// "progress", step, state} events ({type: "progress", step: "sibling",
// accountId, state} for an account sharing the login), then {type:
// "result", ok, result | error}.
//
// When Thunderbird saves a new password for one side of an account (its
// password prompt after "remember"), credsync.onLoginSaved wakes this page;
// the password is verified and stored for the other side and for the
// accounts sharing the login (core.propagateSaved), and a notification says
// what was updated.

import { describePropagation } from "./lib/describe.js";
import {
  accounts,
  changePassword,
  clearGuided,
  connectHost,
  CredsyncError,
  errorJSON,
  guided,
  hello,
  openPage,
  propagateSaved,
  setBackend,
  setPage,
  setSettings,
  settings,
  syncPassword,
} from "./lib/core.js";

export { changePassword, syncPassword };

const KEEP_PROPAGATIONS = 10;

const flows = new Map(); // accountId -> running or unshown change or sync
const propagations = []; // the last reports of propagateSaved
let propagating = Promise.resolve(); // one propagation at a time

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
  return code ? { code, message } : errorJSON(e);
}

// Starts a change or a sync ("kind") unless one runs for the account.
function startFlow(kind, message) {
  const { accountId } = message;
  if (flows.get(accountId)?.done === false) {
    const response = {
      ok: false,
      error: { code: "busy", message: "a change for this account is already running" },
    };
    return { steps: {}, siblings: {}, done: true, response, watchers: new Set(), promise: Promise.resolve(response) };
  }
  const flow = { accountId, kind, steps: {}, siblings: {}, done: false, response: null, shown: false, watchers: new Set() };
  flows.set(accountId, flow);
  const emit = event => flow.watchers.forEach(watcher => watcher(event));
  const onProgress = ({ step, state, accountId: sibling }) => {
    if (step === "sibling") {
      flow.siblings[sibling] = state;
      emit({ type: "progress", step, accountId: sibling, state });
    } else {
      flow.steps[step] = state;
      emit({ type: "progress", step, state });
    }
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
    list.push({
      accountId: flow.accountId,
      kind: flow.kind,
      steps: flow.steps,
      siblings: flow.siblings,
      done: flow.done,
      response: flow.response,
    });
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
  for (const [accountId, state] of Object.entries(flow.siblings)) {
    watcher({ type: "progress", step: "sibling", accountId, state });
  }
  if (flow.done) {
    watcher({ type: "result", ...flow.response });
    return;
  }
  flow.watchers.add(watcher);
  port.onDisconnect.addListener(() => flow.watchers.delete(watcher));
}

// ---- automatic propagation ------------------------------------------------

async function propagate(change) {
  let report;
  try {
    report = await propagateSaved(change);
  } catch (e) {
    report = { enabled: true, side: change.side, results: [], error: asError(e) };
    console.warn(`credsync: automatic update failed (${report.error.code})`);
  }
  const notification = describePropagation(report);
  if (notification) {
    try {
      await messenger.notifications.create(`credsync-propagation-${Date.now()}`, {
        type: "basic",
        title: notification.title,
        message: notification.message,
        iconUrl: "icons/credsync.svg",
      });
    } catch {
      console.warn("credsync: could not show the notification");
    }
  }
  propagations.push({ at: Date.now(), accountIds: change.accountIds, ...report, notification });
  propagations.splice(0, propagations.length - KEEP_PROPAGATIONS);
}

messenger.credsync.onLoginSaved.addListener(change => {
  propagating = propagating.then(() => propagate(change));
  return propagating;
});

// ---- commands ------------------------------------------------------------

messenger.runtime.onMessage.addListener(message => {
  switch (message?.cmd) {
    case "hello":
      return respond(hello);
    case "accounts":
      return respond(async () => ({ accounts: await accounts() }));
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
