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
//   change {accountId, current, new}   final answer only; the host's change
//                                  request adds the administrator's or the
//                                  user's breach check (lib/settings.js)
//   sync {accountId, password}         "I already changed it"; final answer only
//   cancel {accountId}             ends the wait of the account's change for
//                                  lagging servers: {cancelled}
//   status                         {flows: [...]}: running changes and syncs
//                                  (with waiting while a change waits), and
//                                  finished ones not yet shown (then marked shown)
//   settings                       {autoPropagate, managed, minStrength, breachCheck,
//                                  breachUrl, breachFailClosed, locked}
//   setSettings {autoPropagate?, minStrength?, breachCheck?, breachUrl?,
//                breachFailClosed?}  the new settings
//   propagations                   {propagations: [...]} (lib/propagation.js)
//   expiry                         {expiry: {accountId: {checkedAt, state,
//                                  expiresAt?, notifiedAt?}} (lib/expiry.js),
//                                  failedLogins: {"origin\nusername": ms}
//                                  (lib/failures.js)}
//   chosenAccount                  {accountId | null}: the account of the
//                                  expiry notification clicked in the last
//                                  two minutes, and opened: "popup" or "tab"
//   checkExpiry {force?}           runs the expiry check now: {checked, notified}
// A port from runtime.connect({name: "credsync"}) accepts {cmd: "change", ...},
// {cmd: "sync", ...}, {cmd: "watch", accountId} or {cmd: "cancel",
// accountId} (no answer: the change's result follows) and receives {type:
// "progress", step, state} events, {type: "waiting", nextCheck, checks,
// failedLogins, budget} while a change waits for servers that lag behind
// the provider (PROTOCOL.md), then {type: "result", ok, result | error}.
// A wait that ends while no page watches is reported by a notification.
//
// A change or sync is one request to the host, which owns the whole
// transaction; the host's own requests (accounts, login, store) are
// answered below; a password Thunderbird saves (credsync.onLoginChanged,
// which wakes this page) goes to lib/propagation.js.

import { accounts, accountWithBackend, listAccounts, planFor, setBackend, setPage } from "./lib/accounts.js";
import { connectHost, CredsyncError, errorJSON, hello, request, serve } from "./lib/connection.js";
import { clearRefused, expiryState, openForNotification, runExpiry } from "./lib/expiry.js";
import { failedLogins, forgetFailures, loginKey, recordFailure } from "./lib/failures.js";
import { clearGuided, guided, openPage } from "./lib/guided.js";
import { backendTable } from "./lib/providers.js";
import { onLoginChanged, pendingLogin, propagations } from "./lib/propagation.js";
import { breachCheckMember, CHECK_KEYS, isObject, setSettings, settings } from "./lib/settings.js";
import { answerChecks, notifyWaitEnd, resumeAllChecks, waitingOf } from "./lib/waiting.js";

const CHECK_TIMEOUT_MS = 10000;
const CANCEL_TIMEOUT_MS = 10000;

const flows = new Map(); // accountId -> running or unshown change or sync
const EXPIRY_ALARM = "credsync-expiry";
const EXPIRY_PERIOD_MIN = 60; // looks every hour; each account at most once a day
const CHOSEN_TTL_MS = 2 * 60 * 1000;
let chosenAccount = null; // {accountId, at}: the account of a clicked expiry notification, for the popups opened soon after

// lib/expiry.js's dependencies.
const expiryDeps = {
  accounts: async () => (await accounts()).accounts,
  hello: () => hello().catch(() => null),
  backends: backendTable,
  request: (type, members) => request(type, members),
  settings,
  now: () => Date.now(),
  failures: failedLogins,
  locale: messenger.i18n.getUILanguage(),
};

function checkExpiry(options) {
  return runExpiry(expiryDeps, options).catch(() => {
    console.warn("credsync: the expiry check failed");
  });
}

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

/**
 * Changes the password of the account (and of every account sharing its
 * login) at the provider through the account's back-end.
 *
 * @param {Function} [onProgress] called with {step, state}
 * @param {Function} [onWaiting] called with {nextCheck, checks,
 *   failedLogins, budget} before each check of lagging servers
 * @returns {Promise<object>} the host's result: {changed, stored, accounts,
 *   logins, servers, waited?}
 * @throws {CredsyncError} the host's error (with accounts, logins, servers,
 *   changed where known) or backend_not_configured
 */
async function changePassword(accountId, current, newPassword, onProgress, onWaiting) {
  const [account, checks] = await Promise.all([accountWithBackend(accountId), settings()]);
  if (!account.backend) {
    throw new CredsyncError("backend_not_configured", "no back-end is configured for this account");
  }
  const members = { accountId, backend: account.backend, current, new: newPassword };
  // The breach check, when on, runs in the host before anything is sent
  // to the provider (PROTOCOL.md, change's breachCheck).
  const breachCheck = breachCheckMember(checks);
  if (breachCheck) {
    members.breachCheck = breachCheck;
  }
  return request("change", members, { onProgress, onWaiting });
}

/** "I already changed it": verifies and saves the password now in force, as changePassword. */
async function syncPassword(accountId, password, onProgress) {
  if (typeof password !== "string" || !password) {
    throw new CredsyncError("invalid_request", "password must be a non-empty string", { field: "password" });
  }
  return request("sync", { accountId, password }, { onProgress });
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
  const flow = { accountId, kind, steps: {}, waiting: null, done: false, response: null, shown: false, watchers: new Set() };
  flows.set(accountId, flow);
  const emit = event => flow.watchers.forEach(watcher => watcher(event));
  const onProgress = ({ step, state }) => {
    flow.steps[step] = state;
    emit({ type: "progress", step, state });
  };
  const onWaiting = event => {
    flow.waiting = waitingOf(event);
    if (flow.waiting) {
      emit({ type: "waiting", ...flow.waiting });
    }
  };
  const work =
    kind === "sync"
      ? () => syncPassword(accountId, message.password, onProgress)
      : () => changePassword(accountId, message.current, message.new, onProgress, onWaiting);
  flow.promise = respond(work).then(async response => {
    if (response.ok) {
      // The new password's expiry, at once (its own refusal, if any, is forgotten).
      clearRefused([accountId])
        .then(() => checkExpiry({ only: accountId, force: true }))
        .catch(() => {});
      // The password changed on the provider's page is now saved: guided
      // mode is over for this account.
      await clearGuided(accountId).catch(() => {});
    }
    if (response.error?.code === "host_disconnected") {
      await resumeAllChecks(); // the host's wait, if any, ended with it
    }
    const waited = flow.waiting !== null;
    flow.done = true;
    flow.waiting = null;
    flow.response = response;
    if (waited && flow.watchers.size === 0) {
      await notifyWaitEnd(response, accountId); // the popup is closed
    }
    emit({ type: "result", ...response });
    return response;
  });
  return flow;
}

// Ends the wait of the account's change for lagging servers; the change's
// own answer follows.
function cancelWait(accountId) {
  if (typeof accountId !== "string" || !accountId) {
    throw new CredsyncError("invalid_request", "accountId must be a non-empty string", { field: "accountId" });
  }
  return request("cancel", { accountId }, { timeoutMs: CANCEL_TIMEOUT_MS });
}

function status() {
  const list = [];
  for (const flow of flows.values()) {
    if (flow.done && flow.shown) {
      continue;
    }
    const { accountId, kind, steps, waiting, done, response } = flow;
    list.push({ accountId, kind, steps, done, response, ...(waiting ? { waiting } : {}) });
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
  if (flow.waiting) {
    watcher({ type: "waiting", ...flow.waiting });
  }
  if (flow.done) {
    watcher({ type: "result", ...flow.response });
    return;
  }
  flow.watchers.add(watcher);
  port.onDisconnect.addListener(() => flow.watchers.delete(watcher));
}

// ---- the host's requests (PROTOCOL.md "Requests from the host"):
// `accounts` (facts), `login` (the password of the login being propagated,
// and no other), `store` (all or none). Each answers with a result or
// throws a CredsyncError; no password in any error.

const FINGERPRINT = /^[0-9a-f]{64}$/;

async function answerHost(req) {
  switch (req?.type) {
    case "accounts":
      return accountsFacts(req);
    case "login":
      return login(req);
    case "store":
      return store(req);
    case "pause":
    case "resume":
      return answerChecks(req);
  }
  throw new CredsyncError("unknown_type", `unknown request type "${String(req?.type).slice(0, 64)}"`);
}

function invalid(field, message) {
  return new CredsyncError("invalid_request", message, { field });
}

async function accountsFacts({ salt }) {
  if (salt !== undefined && (typeof salt !== "string" || !salt)) {
    throw invalid("salt", "salt must be a non-empty string");
  }
  const { accounts: list, locked } = await listAccounts(salt);
  return { accounts: list, locked: locked === true };
}

async function login({ origin, username }) {
  if (typeof origin !== "string" || typeof username !== "string") {
    throw invalid(typeof origin !== "string" ? "origin" : "username", "origin and username must be strings");
  }
  const allowed = pendingLogin();
  if (!allowed || allowed.origin.toLowerCase() !== origin.toLowerCase() || allowed.username !== username) {
    throw new CredsyncError("not_allowed", "only the login being propagated can be read");
  }
  let password = null;
  try {
    password = await messenger.credsync.readLogin(allowed.origin, allowed.username);
  } catch {
    // as no login
  }
  if (typeof password !== "string" || !password) {
    throw new CredsyncError("no_login", "no such saved login, or the login store is locked");
  }
  return { password };
}

// The host's `expect` as the Experiment's: absent "any", null "none", or the fingerprint.
function expectOf(login) {
  if (!("expect" in login)) {
    return "any";
  }
  if (login.expect === null) {
    return "none";
  }
  if (typeof login.expect !== "string" || !FINGERPRINT.test(login.expect)) {
    throw invalid("expect", "expect must be a fingerprint (64 lowercase hex digits) or null");
  }
  return login.expect;
}

async function store({ salt, logins }) {
  if (typeof salt !== "string" || !salt) {
    throw invalid("salt", "salt must be a non-empty string");
  }
  if (!Array.isArray(logins) || !logins.length) {
    throw invalid("logins", "logins must be a non-empty array");
  }
  const writes = logins.map(l => {
    if (!isObject(l) || typeof l.origin !== "string" || !l.origin || typeof l.username !== "string") {
      throw invalid("logins", "each login needs a string origin and username");
    }
    if (typeof l.password !== "string" || !l.password) {
      throw invalid("password", "password must be a non-empty string");
    }
    return { origin: l.origin, username: l.username, password: l.password, expect: expectOf(l) };
  });
  let result;
  try {
    result = await messenger.credsync.writeLogins(salt, writes);
  } catch {
    // writeLogins answers every failure of a write itself; it throws only
    // before writing (arguments, the login store not ready).
    const states = writes.map(({ origin, username }) => ({ origin, username, state: "unchanged" }));
    throw new CredsyncError("store_failed", "Thunderbird could not save the logins; nothing was written", {
      logins: states,
    });
  }
  if (result?.code) {
    throw new CredsyncError(result.code, result.message ?? result.code, { logins: result.logins ?? [] });
  }
  return { logins: result?.logins ?? [] };
}

serve(answerHost);

// Registered at the top level: a persistent event that wakes this page.
messenger.credsync.onLoginChanged.addListener(change => {
  forgetRefusal(change).catch(() => {});
  return onLoginChanged(change);
});

// Thunderbird's login with a saved password was refused: no expiry check
// with that password for a while (lib/failures.js).
messenger.credsync.onLoginFailed.addListener(login => {
  recordFailure(login, Date.now()).catch(() => {});
});

// A saved password that changed may be used again: its failure is
// forgotten; for an account whose incoming password it is (the one the
// expiry check uses), the refusal and the failures of its logins too.
async function forgetRefusal(change) {
  const { accounts: list } = await listAccounts();
  const key = loginKey(change);
  const accounts = list.filter(a => a.incoming && loginKey(a.incoming) === key);
  await forgetFailures([change, ...accounts.map(a => a.outgoing).filter(Boolean)]);
  await clearRefused(accounts.map(a => a.id));
}

// The expiry: looked at every hour (each account at most once a day) and
// at startup; a click on its notification opens the popup on the account.
messenger.notifications.onClicked.addListener(id => {
  const chosen = { accountId: null, at: Date.now(), opened: null };
  openForNotification(id, accountId => {
    chosen.accountId = accountId;
    chosenAccount = chosen;
  })
    .then(how => {
      chosen.opened = how;
    })
    .catch(() => {});
});
if (messenger.alarms) {
  messenger.alarms.onAlarm.addListener(alarm => {
    if (alarm.name === EXPIRY_ALARM) {
      checkExpiry();
    }
  });
  messenger.alarms.create(EXPIRY_ALARM, { delayInMinutes: 1, periodInMinutes: EXPIRY_PERIOD_MIN });
}

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
    case "cancel":
      return respond(() => cancelWait(message.accountId));
    case "status":
      return respond(async () => status());
    case "settings":
      return respond(settings);
    case "setSettings":
      return respond(() =>
        setSettings(Object.fromEntries(["autoPropagate", ...CHECK_KEYS].filter(k => k in message).map(k => [k, message[k]])))
      );
    case "propagations":
      return respond(async () => ({ propagations }));
    case "expiry":
      return respond(async () => ({ expiry: await expiryState(), failedLogins: await failedLogins() }));
    case "chosenAccount":
      return respond(async () => {
        const fresh = chosenAccount && Date.now() - chosenAccount.at < CHOSEN_TTL_MS;
        return fresh ? { accountId: chosenAccount.accountId, opened: chosenAccount.opened } : { accountId: null };
      });
    case "checkExpiry":
      return respond(() => runExpiry(expiryDeps, { force: message.force === true }));
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
    } else if (message?.cmd === "cancel") {
      cancelWait(message.accountId).catch(() => {});
    }
  });
});

// Starts this page with Thunderbird, so that the port opens at startup.
messenger.runtime.onStartup.addListener(() => {});

// The host's plan for the popup, asked at once: the first opening need not
// wait for it. A new host waits for no server: nothing stays paused.
connectHost(() => {
  resumeAllChecks();
  checkExpiry();
  return listAccounts()
    .then(({ accounts: list }) => planFor(list))
    .catch(() => {});
});
