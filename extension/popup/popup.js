// The change form. Works as the toolbar popup and in a normal tab. Two
// modes: "change" (current, new and repeated password: the provider
// changes it) and "sync" ("I already changed it elsewhere": one password,
// checked on the servers and saved). Three views: "change", "sync", and
// "guided", shown in change mode when no back-end can change the password
// (none configured or detected, or the host could not get through the
// provider's web site): the popup opens the provider's page in a
// Thunderbird tab and then switches to sync, asking for the new password
// once. While the user types a new password, the host checks the rules
// (debounced); it checks them again on submit. In change mode the meter
// under the new password shows its estimated strength (lib/strength.js:
// an estimator in a worker of this page, started at the first keystroke;
// the estimate never leaves the popup), and a change below the
// administrator's minimum strength is refused here. The logic without the
// DOM is lib/popupstate.js and lib/strength.js.

import { describeError, describeRules } from "../lib/describe.js";
import { expiryLine } from "../lib/expiry.js";
import { failedRecently } from "../lib/failures.js";
import { localizeDocument, t } from "../lib/i18n.js";
import {
  accountLabel,
  checkRequest,
  createChecker,
  localProblems,
  outcome,
  PASSWORD_FIELDS,
  rulesOf,
  siblingsHint,
  siblingsOf,
  stepsFor,
  stepUpdates,
  usableBackend,
  viewOf,
  violationProblems,
  waitingLine,
} from "../lib/popupstate.js";
import { backendTable, isHttpUrl } from "../lib/providers.js";
import { accountWords, createEstimator, estimatorLanguage, meterView, strengthProblem } from "../lib/strength.js";

const $ = id => document.getElementById(id);
let accounts = [];
let running = false;
let submitting = false; // waiting for the host's check before a submit
let touched = new Set(); // fields the user has typed in
let hostProblems = []; // the host's answer to the last check
let backends = null; // hello's back-ends by name; null until the host answered
let expiries = {}; // accountId -> lib/expiry.js entry
let failures = {}; // lib/failures.js failedLogins()
let guidedState = null; // {accountId, reason}: the user was sent to the provider's page
const forcedGuided = new Set(); // accounts whose back-end could not get through
let checks = null; // the password checks in force (settings), once read
let strength = null; // the new password's estimate (null: empty field)
let estimating = false; // an estimate of the field's latest value is pending

const estimator = createEstimator({
  startWorker: () => new Worker("strength-worker.js"),
  language: estimatorLanguage(messenger.i18n.getUILanguage()),
  onResult: (estimate, at) => {
    strength = estimate;
    estimating = false;
    showMeter();
    if (typeof at === "number") {
      // From the keystroke to the meter showing its estimate (make bench).
      performance.measure("credsync-meter", { start: at, end: performance.now() });
    }
  },
});

const checker = createChecker({
  send: request => command({ cmd: "check", ...request }),
  onBusy: busy => {
    if (busy) {
      document.documentElement.dataset.checking = "true";
    } else {
      delete document.documentElement.dataset.checking;
    }
  },
  onResult: violations => {
    hostProblems = violations ? violationProblems(violations, { view: view(), rules: rulesOf(selectedAccount(), backends) }) : [];
    if (!running) {
      showProblems(problems({ onlyTouched: true }));
    }
  },
});

function mode() {
  return $("mode-sync").checked ? "sync" : "change";
}

function setMode(value) {
  $(value === "sync" ? "mode-sync" : "mode-change").checked = true;
  showMode();
}

function view() {
  return viewOf({ mode: mode(), account: selectedAccount(), backends, forcedGuided });
}

// Shows the parts of the current view, for the selected account. Keeps what
// the user typed and the status line.
function render() {
  const current = view();
  for (const el of document.querySelectorAll("[data-mode]")) {
    el.hidden = !el.dataset.mode.split(" ").includes(current);
  }
  $("change").textContent = t(current === "sync" ? "syncButton" : "changeButton");
  document.documentElement.dataset.view = current;
  showBackend();
  showSiblings();
  showAruba();
  showGuided();
  showRules();
  showMeter();
  showFailed();
}

// After the mode or the account changed: a fresh form.
function showMode() {
  if (view() === "change") {
    estimateNew(); // the account's words may differ
  } else {
    estimator.clear();
  }
  render();
  checker.cancel();
  touched = new Set();
  hostProblems = [];
  showProblems([]);
  showStatus("");
  $("guided-offer").hidden = true;
}

async function command(message) {
  const response = await messenger.runtime.sendMessage(message);
  if (!response?.ok) {
    throw response?.error ?? { code: "internal_error" };
  }
  return response.result;
}

// ---- accounts ------------------------------------------------------------

function selectedAccount() {
  return accounts.find(a => a.id === $("account").value) ?? null;
}

async function loadAccounts() {
  const select = $("account");
  select.replaceChildren();
  try {
    const listed = await command({ cmd: "accounts" });
    accounts = listed.accounts;
    if (listed.planError) {
      showStatus(describeError(listed.planError), "error");
    }
  } catch (error) {
    accounts = [];
    showStatus(describeError(error), "error");
  }
  let preferred = null;
  try {
    preferred = (await messenger.accounts.getDefault())?.id ?? null;
  } catch {
    // no default account
  }
  for (const account of accounts) {
    const option = new Option(accountLabel(account), account.id);
    option.disabled = !account.passwordBased;
    select.append(option);
  }
  if (!accounts.length) {
    const option = new Option(t("accountNone"), "");
    option.disabled = true;
    select.append(option);
  }
  const usable = accounts.filter(a => a.passwordBased);
  // The account of a clicked expiry notification (?account=ID in a tab, or
  // the background's), else the default one.
  const chosen = await chosenAccount();
  const initial = usable.find(a => a.id === chosen) ?? usable.find(a => a.id === preferred) ?? usable[0];
  select.value = initial?.id ?? "";
  $("account-hint").hidden = usable.length === accounts.length;
  render();
  performance.mark("credsync-accounts"); // the account list is shown (make bench)
}

async function chosenAccount() {
  const fromUrl = new URLSearchParams(location.search).get("account");
  if (fromUrl) {
    return fromUrl;
  }
  try {
    return (await command({ cmd: "chosenAccount" })).accountId ?? null;
  } catch {
    return null;
  }
}

// The expiry the background read last, under the chosen account, and
// whether Thunderbird's own login with its saved password just failed.
async function loadExpiry() {
  try {
    const known = await command({ cmd: "expiry" });
    expiries = known.expiry ?? {};
    failures = known.failedLogins ?? {};
  } catch {
    expiries = {};
    failures = {};
  }
  showExpiry();
  showFailed();
}

// Thunderbird was just refused the saved password: perhaps it was changed
// elsewhere (at Ctrl+Alt+Del, on the provider's page), which "I already
// changed it" saves. The button shows outside that view (data-mode).
function showFailed() {
  $("failed-line").hidden = !failedRecently(selectedAccount(), failures, Date.now());
}

function showExpiry() {
  const text = expiryLine(expiries[selectedAccount()?.id], Date.now(), messenger.i18n.getUILanguage());
  $("expiry-line").textContent = text;
  $("expiry-line").hidden = !text;
}

// hello's back-ends and their rules; the view is redrawn when they arrive.
async function loadBackends() {
  try {
    backends = backendTable(await command({ cmd: "hello" }));
  } catch {
    backends = null; // the change itself will say what is wrong with the host
  }
  render();
  if (!running && touched.size) {
    showProblems(problems({ onlyTouched: true }));
  }
  document.documentElement.dataset.backends = backends ? "ready" : "unknown";
  performance.mark("credsync-backends"); // the back-end line is final (make bench)
}

// The accounts a change of the selected account writes too.
function showSiblings() {
  const text = siblingsHint(selectedAccount(), accounts);
  $("siblings-hint").hidden = !text;
  $("siblings-hint").textContent = text;
}

function showBackend() {
  const account = selectedAccount();
  const text = $("backend-text");
  text.textContent = "";
  if (!account) {
    return;
  }
  if (usableBackend(account, backends)) {
    text.textContent = t(account.backendSource === "detected" ? "backendDetected" : "backendIs", account.backend.name);
  } else if (account.backend) {
    text.textContent = t("backendUnknown", account.backend.name);
  } else {
    text.textContent = t("backendMissing");
  }
}

// Aruba PEC: with two-step verification, mail programs use a generated
// "password per programmi di posta".
function showAruba() {
  $("aruba").hidden = !selectedAccount()?.arubaPec;
}

// ---- guided mode -----------------------------------------------------------

function showGuided() {
  const account = selectedAccount();
  const page = account?.page?.url ?? "";
  const editing = $("guided-url-field").dataset.editing === account?.id;
  $("guided-intro").textContent = t(
    forcedGuided.has(account?.id) ? "guidedIntroFailed" : account?.arubaPec ? "guidedIntroAruba" : "guidedIntro"
  );
  $("guided-retry-line").hidden = !forcedGuided.has(account?.id) || !usableBackend(account, backends);
  $("guided-page").hidden = !page || editing;
  $("guided-page-text").textContent = page ? t("guidedPageIs", page) : "";
  $("guided-url-field").hidden = !!page && !editing;
  const suggestions = $("guided-suggestions");
  suggestions.replaceChildren(...(account?.pageSuggestions ?? []).map(url => new Option(url)));
  $("guided-url-error").textContent = "";
  $("guided-url").removeAttribute("aria-invalid");
  const note = $("guided-note");
  const here = view() === "sync" && guidedState && guidedState.accountId === account?.id;
  note.hidden = !here;
  note.textContent = here ? t(guidedState.reason === "aruba" ? "guidedNoteAruba" : "guidedNote") : "";
}

function editPage() {
  const account = selectedAccount();
  const field = $("guided-url-field");
  field.dataset.editing = account?.id ?? "";
  $("guided-url").value = account?.page?.url ?? "";
  showGuided();
  $("guided-url").focus();
}

// Opens the provider's page (typed in the guided view, else the known one)
// and switches to "I already changed it" for the account.
async function openGuided({ browser = false, reason = "change", typed = true } = {}) {
  const account = selectedAccount();
  if (!account?.passwordBased || running) {
    return;
  }
  let url;
  if (typed && !$("guided-url-field").hidden) {
    url = $("guided-url").value.trim();
    if (!isHttpUrl(url)) {
      $("guided-url-error").textContent = t("guidedUrlInvalid");
      $("guided-url").setAttribute("aria-invalid", "true");
      $("guided-url").focus();
      return;
    }
  }
  showStatus("");
  let opened;
  try {
    opened = await command({ cmd: "openPage", accountId: account.id, url, browser, reason });
  } catch (error) {
    showStatus(describeError(error), "error");
    return;
  }
  if (url) {
    account.page = { url, source: "local" };
  }
  delete $("guided-url-field").dataset.editing;
  guidedState = { accountId: account.id, reason };
  $("guided-offer").hidden = true;
  setMode("sync");
  showStatus(t(opened.where === "browser" ? "guidedOpenedBrowser" : "guidedOpened"));
  $("password").focus();
}

function switchToGuided() {
  const account = selectedAccount();
  if (!account) {
    return;
  }
  forcedGuided.add(account.id);
  $("guided-offer").hidden = true;
  setMode("change");
  clearPasswords();
  ($("guided-url-field").hidden ? $("guided-open") : $("guided-url")).focus();
}

// The back-end's rules under the new password, when known.
function showRules() {
  const summary = view() === "change" ? describeRules(rulesOf(selectedAccount(), backends)) : "";
  $("new-hint").textContent = summary;
  $("new-hint").hidden = !summary;
}

// ---- strength ------------------------------------------------------------

// The password checks in force (the administrator's, else the user's
// settings), read once; a failed read is tried again at the next use.
let checksRead = null;
function readChecks() {
  checksRead ??= command({ cmd: "settings" }).then(
    s => {
      checks = s;
      showMeter();
      return s;
    },
    error => {
      checksRead = null;
      throw error;
    }
  );
  return checksRead;
}

// Estimates the typed new password; at: the keystroke's time.
function estimateNew(at = null) {
  const value = $("new").value;
  estimating = !!value;
  estimator.estimate(value, accountWords(selectedAccount()), at);
  showMeter();
}

// The meter under the new password (change view only) and the
// administrator's minimum.
function showMeter() {
  const box = $("meter");
  const inChange = view() === "change";
  const shown = meterView(strength, { minStrength: checks?.minStrength ?? 0, byAdministrator: !!checks?.locked?.minStrength });
  const minimum = $("meter-minimum");
  minimum.hidden = !inChange || !shown.minimum;
  minimum.textContent = shown.minimum;
  minimum.classList.toggle("below", shown.belowMinimum && !estimating);
  box.hidden = !inChange || (shown.state === "empty" && !estimating);
  box.dataset.state = estimating ? "pending" : shown.state;
  box.dataset.level = shown.level;
  box.dataset.score = shown.score ?? "";
  box.toggleAttribute("data-below-minimum", shown.belowMinimum);
  $("meter-bar").value = shown.score === null ? 0 : shown.score + 1;
  $("meter-word").textContent =
    shown.state === "ready" ? t("strengthLabel", shown.word) : estimating ? t("strengthPending") : shown.word;
  $("meter-warning").textContent = shown.warning;
  $("meter-warning").hidden = !shown.warning;
  $("meter-suggestions").replaceChildren(
    ...shown.suggestions.map(text => {
      const item = document.createElement("li");
      item.textContent = text;
      return item;
    })
  );
  $("meter-suggestions").hidden = !shown.suggestions.length;
}

// The refusal below the administrator's minimum for the new password, as
// problems of the field: [] or [["new", text, "too_weak"]]; undefined when
// typing overtook the estimate.
async function strengthProblems() {
  const { minStrength, locked } = await readChecks();
  if (!minStrength) {
    return [];
  }
  estimateNew();
  const estimate = await estimator.settled();
  if (estimate === undefined) {
    return undefined;
  }
  const problem = strengthProblem(estimate, { minStrength, byAdministrator: !!locked?.minStrength });
  return problem ? [problem] : [];
}

// ---- validation ----------------------------------------------------------

function values() {
  return Object.fromEntries(PASSWORD_FIELDS.map(id => [id, $(id).value]));
}

// [[field, text, rule?], ...]: what the form lacks, then the host's last
// check of the fields concerned.
function problems({ onlyTouched }) {
  const current = view();
  const found = localProblems({ view: current, values: values(), touched, onlyTouched, account: selectedAccount() });
  const checked = onlyTouched ? hostProblems.filter(([field]) => touched.has(field)) : hostProblems;
  return [...found, ...checked.filter(([field]) => (current === "sync") === (field === "password"))];
}

// While typing: local problems at once, the host's after its check, the
// strength after its estimate.
function onInput(id, event) {
  touched.add(id);
  if (id === "new") {
    estimateNew(event?.timeStamp);
  }
  showProblems(problems({ onlyTouched: true }));
  if (["current", "new", "password"].includes(id)) {
    const request = checkRequest({ view: view(), values: values(), account: selectedAccount(), touched });
    if (request) {
      checker.schedule(request);
    } else {
      checker.cancel();
      hostProblems = [];
      showProblems(problems({ onlyTouched: true }));
    }
  }
}

function showProblems(found) {
  for (const id of PASSWORD_FIELDS) {
    const mine = found.filter(([field]) => field === id);
    const error = $(`${id}-error`);
    error.textContent = mine.map(([, text]) => text).join(" ");
    const rules = mine.map(([, , rule]) => rule).filter(Boolean);
    if (rules.length) {
      error.dataset.rules = rules.join(" ");
    } else {
      delete error.dataset.rules;
    }
    $(id).toggleAttribute("aria-invalid", mine.length > 0);
  }
  const accountProblem = found.find(([field]) => field === "account");
  if (accountProblem) {
    showStatus(accountProblem[1], "error");
  }
}

// ---- progress ------------------------------------------------------------

let stepSiblings = []; // the accounts saved in the "saving" step too

function resetSteps(account, kind) {
  const list = $("steps");
  list.replaceChildren();
  stepSiblings = siblingsOf(account, accounts);
  for (const [step, text] of stepsFor(account, kind, stepSiblings)) {
    addStep(step, text);
  }
}

function addStep(step, text) {
  const item = document.createElement("li");
  item.dataset.step = step;
  const label = document.createElement("span");
  label.className = "label";
  label.textContent = text;
  const state = document.createElement("span");
  state.className = "state";
  item.append(label, " ", state);
  $("steps").append(item);
  setStep(step, "pending");
}

function progress(step, state) {
  for (const [s, st] of stepUpdates(step, state, stepSiblings)) {
    setStep(s, st);
  }
}

function setStep(step, state) {
  const item = $("steps").querySelector(`li[data-step="${CSS.escape(step)}"]`);
  if (!item || !["pending", "running", "ok", "failed"].includes(state)) {
    return;
  }
  item.className = state;
  item.querySelector(".state").textContent = t(`state_${state}`);
  if (state !== "pending") {
    $("progress").hidden = false;
  }
}

function stepState(step) {
  return $("steps").querySelector(`li[data-step="${CSS.escape(step)}"]`)?.className;
}

// ---- status --------------------------------------------------------------

function showStatus(text, kind = "") {
  const status = $("status");
  status.textContent = text;
  status.className = kind;
  if (!text) {
    showNote("");
  }
}

// A remark under the status line that is not an error (auditFailed).
function showNote(text) {
  $("note").textContent = text;
}

function setRunning(value) {
  running = value;
  for (const el of $("change-form").elements) {
    el.disabled = value;
  }
  if (!value) {
    // Disabled accounts stay disabled.
    for (const option of $("account").options) {
      option.disabled = !accounts.find(a => a.id === option.value)?.passwordBased;
    }
  }
  $("change-form").setAttribute("aria-busy", String(value));
}

function clearPasswords() {
  for (const id of PASSWORD_FIELDS) {
    $(id).value = "";
  }
  estimator.clear();
  checker.cancel();
  touched = new Set();
  hostProblems = [];
  showProblems([]);
}

// The host waits for the mail servers to accept the new password: when it
// checks next, and a way to stop (the result follows).
function showWaiting(waiting, cancel) {
  if (!$("steps").querySelector('li[data-step="waiting"]')) {
    addStep("waiting", t("step_waiting"));
  }
  setStep("waiting", "running");
  $("waiting-text").textContent = waitingLine(waiting);
  $("waiting-cancel").disabled = false;
  $("waiting-cancel").onclick = () => {
    $("waiting-cancel").disabled = true;
    cancel();
  };
  $("waiting").hidden = false;
  document.documentElement.dataset.waiting = waiting?.nextCheck ?? "";
}

function finish(response, kind = mode(), accountId = selectedAccount()?.id) {
  $("waiting").hidden = true;
  delete document.documentElement.dataset.waiting;
  const changing = ["running", "ok", "failed"].includes(stepState("changing"));
  const account = accounts.find(a => a.id === accountId) ?? null;
  setRunning(false);
  clearPasswords();
  const said = outcome(response, { kind, accountId, account, backends, changing });
  if (response.ok) {
    if (guidedState?.accountId === accountId) {
      guidedState = null; // the background forgot it too
      showGuided();
    }
  } else {
    for (const item of $("steps").querySelectorAll("li.running")) {
      setStep(item.dataset.step, "failed");
    }
    if (!$("steps").querySelector("li:not(.pending)")) {
      $("progress").hidden = true;
    }
  }
  showStatus(said.text, said.kind);
  showNote(said.note);
  $("guided-offer").hidden = !said.offerGuided;
  const field = said.focus !== "status" ? $(said.focus) : null;
  (field && !field.closest("[hidden]") ? field : $("status")).focus();
}

// Follows a change or sync through a port: progress events, then the result.
function follow(message, kind) {
  const { accountId } = message;
  setRunning(true);
  showStatus(t(kind === "sync" ? "runningSync" : "running"));
  const port = messenger.runtime.connect({ name: "credsync" });
  let done = false;
  port.onMessage.addListener(event => {
    if (event.type === "progress") {
      progress(event.step, event.state);
    } else if (event.type === "waiting") {
      showWaiting(event, () => port.postMessage({ cmd: "cancel", accountId }));
    } else if (event.type === "result") {
      done = true;
      port.disconnect();
      finish(event, kind, accountId);
    }
  });
  port.onDisconnect.addListener(() => {
    if (!done) {
      finish({ ok: false, error: { code: "internal_error" } }, kind, accountId);
    }
  });
  port.postMessage(message);
}

async function submit(event) {
  event.preventDefault();
  if (running || submitting || view() === "guided") {
    return; // in the guided view, its own button opens the page
  }
  const account = selectedAccount();
  const kind = mode();
  const local = localProblems({ view: view(), values: values(), onlyTouched: false, account });
  // The host's check now (a failed check lets the host check on its own)
  // and, for a change, the administrator's minimum strength.
  submitting = true;
  let violations, weak;
  try {
    [violations, weak] = await Promise.all([
      checker.now(checkRequest({ view: view(), values: values(), account })),
      kind === "change" && local.length === 0 ? strengthProblems() : [],
    ]);
  } catch (error) {
    showStatus(describeError(error), "error"); // the settings could not be read
    return;
  } finally {
    submitting = false;
  }
  if (violations === undefined || weak === undefined) {
    return; // overtaken by typing
  }
  hostProblems = violationProblems(violations ?? [], { view: view(), rules: rulesOf(account, backends) });
  const order = ["account", ...PASSWORD_FIELDS];
  const found = [...local, ...hostProblems, ...weak].sort(([a], [b]) => order.indexOf(a) - order.indexOf(b));
  showProblems(found);
  if (found.length) {
    $(found[0][0]).focus();
    return;
  }
  resetSteps(account, kind);
  $("progress").hidden = true;
  $("guided-offer").hidden = true;
  showStatus("");
  if (kind === "sync") {
    follow({ cmd: "sync", accountId: account.id, password: $("password").value }, kind);
  } else {
    follow({ cmd: "change", accountId: account.id, current: $("current").value, new: $("new").value }, kind);
  }
}

// A change started earlier (the popup may have closed meanwhile).
async function resumeFlows(status) {
  let flows;
  try {
    flows = (await status).flows;
  } catch {
    return;
  }
  const flow = flows.find(f => !f.done) ?? flows.at(-1);
  if (!flow) {
    return;
  }
  const kind = flow.kind === "sync" ? "sync" : "change";
  setMode(kind);
  $("account").value = flow.accountId;
  showMode();
  resetSteps(selectedAccount(), kind);
  $("progress").hidden = true;
  for (const [step, state] of Object.entries(flow.steps)) {
    progress(step, state);
  }
  if (flow.done) {
    finish(flow.response, kind, flow.accountId);
  } else {
    follow({ cmd: "watch", accountId: flow.accountId }, kind);
  }
}

// The account the user was sent to the provider's page for (the toolbar
// popup closed when the tab opened): back in "I already changed it".
async function resumeGuided(guided) {
  try {
    guidedState = (await guided).guided;
  } catch {
    guidedState = null;
  }
  const account = accounts.find(a => a.id === guidedState?.accountId && a.passwordBased);
  if (!account) {
    guidedState = null;
    return;
  }
  $("account").value = account.id;
  setMode("sync");
}

async function init() {
  localizeDocument();
  $("change-form").addEventListener("submit", submit);
  for (const radio of document.querySelectorAll('input[name="mode"]')) {
    radio.addEventListener("change", showMode);
  }
  $("account").addEventListener("change", showMode);
  $("account").addEventListener("change", showExpiry);
  $("open-options").addEventListener("click", () => messenger.runtime.openOptionsPage());
  $("guided-open").addEventListener("click", () => openGuided());
  $("guided-browser").addEventListener("click", () => openGuided({ browser: true }));
  $("guided-edit").addEventListener("click", editPage);
  $("guided-url").addEventListener("keydown", event => {
    if (event.key === "Enter") {
      event.preventDefault(); // not the form's submit
      openGuided();
    }
  });
  $("aruba-open").addEventListener("click", () => openGuided({ reason: "aruba", typed: false }));
  $("failed-sync").addEventListener("click", () => {
    setMode("sync");
    $("password").focus();
  });
  $("guided-offer").addEventListener("click", switchToGuided);
  $("guided-retry").addEventListener("click", () => {
    forcedGuided.delete(selectedAccount()?.id);
    showMode();
    $("current").focus();
  });
  for (const id of PASSWORD_FIELDS) {
    $(id).addEventListener("input", event => onInput(id, event));
  }
  showMode();
  // Asked together: each is a round trip to the background page.
  readChecks().catch(() => {}); // read again on submit if it failed
  const helloDone = loadBackends();
  const guided = command({ cmd: "guided" });
  const status = command({ cmd: "status" });
  guided.catch(() => {});
  status.catch(() => {});
  await loadAccounts();
  await loadExpiry();
  await resumeGuided(guided);
  await resumeFlows(status);
  if (!running) {
    const usable = accounts.filter(a => a.passwordBased).length;
    const guidedFirst = $("guided-url-field").hidden ? "guided-open" : "guided-url";
    const first = { sync: "password", change: "current", guided: guidedFirst }[view()];
    (usable > 1 && !guidedState ? $("account") : $(first)).focus();
  }
  await helloDone;
  // Everything the popup shows on opening is there: accounts, back-ends, a
  // resumed change. make bench times the opening up to this mark.
  performance.mark("credsync-ready");
  document.documentElement.dataset.ready = "true";
}

init();
