// The change form. Works as the toolbar popup and in a normal tab. Two
// modes: "change" (current, new and repeated password: the provider
// changes it) and "sync" ("I already changed it elsewhere": one password,
// checked on the servers and saved). Three views: "change", "sync", and
// "guided", shown in change mode when no back-end can change the password
// (none configured or detected, or the host could not get through the
// provider's web site): the popup opens the provider's page in a
// Thunderbird tab and then switches to sync, asking for the new password
// once. While the user types a new password, the back-end's rules (hello)
// are checked at once; the host checks them again.

import { describeAudit, describeError, describeReason, describeRule, describeRules } from "../lib/describe.js";
import { localizeDocument, t } from "../lib/i18n.js";
import { isHttpUrl, isWebBackend } from "../lib/providers.js";
import { violations } from "../lib/rules.js";

const STEPS = ["policy", "changing", "checking_incoming", "checking_outgoing", "saving"];
const PASSWORD_FIELDS = ["current", "new", "repeat", "password"];
const AUTH_OAUTH2 = 10;
const AUTH_NONE = 1;

const $ = id => document.getElementById(id);
let accounts = [];
let running = false;
let touched = new Set(); // fields the user has typed in
let backends = null; // hello's back-ends by name; null until the host answered
let guidedState = null; // {accountId, reason}: the user was sent to the provider's page
const forcedGuided = new Set(); // accounts whose back-end could not get through

function mode() {
  return $("mode-sync").checked ? "sync" : "change";
}

function setMode(value) {
  $(value === "sync" ? "mode-sync" : "mode-change").checked = true;
  showMode();
}

// Whether the account's back-end can be used: one is set (or detected) and
// the host knows it (while hello has not answered, it is assumed to).
function usableBackend(account) {
  return !!account?.backend && (!backends || backends.has(account.backend.name));
}

function rulesOf(account) {
  return (account && backends?.get(account.backend?.name)?.rules) || null;
}

// "change", "sync" or "guided".
function view() {
  if (mode() === "sync") {
    return "sync";
  }
  const account = selectedAccount();
  return account?.passwordBased && (!usableBackend(account) || forcedGuided.has(account.id)) ? "guided" : "change";
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
}

// After the mode or the account changed: a fresh form.
function showMode() {
  render();
  touched = new Set();
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

function accountLabel(account) {
  if (account.passwordBased) {
    return account.name;
  }
  const oauth = [account.incoming, account.outgoing].some(ep => ep?.authMethod === AUTH_OAUTH2);
  return t(oauth ? "accountOAuth" : "accountUnsupported", account.name);
}

async function loadAccounts() {
  const select = $("account");
  select.replaceChildren();
  try {
    accounts = (await command({ cmd: "accounts" })).accounts;
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
  const initial = usable.find(a => a.id === preferred) ?? usable[0];
  select.value = initial?.id ?? "";
  $("account-hint").hidden = usable.length === accounts.length;
  render();
  performance.mark("credsync-accounts"); // the account list is shown (make bench)
}

// hello's back-ends and their rules; the view is redrawn when they arrive.
async function loadBackends() {
  try {
    const hello = await command({ cmd: "hello" });
    backends = new Map(
      (hello?.backends ?? [])
        .map(b => (typeof b === "string" ? { name: b } : b))
        .filter(b => typeof b?.name === "string")
        .map(b => [b.name, b])
    );
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

function siblingsOf(account) {
  return (account?.siblings ?? []).map(id => accounts.find(a => a.id === id)).filter(Boolean);
}

function quoteNames(list) {
  return list.map(a => t("quoted", a.name)).join(", ");
}

// The accounts sharing the selected account's login, updated with it.
function showSiblings() {
  const siblings = siblingsOf(selectedAccount());
  const hint = $("siblings-hint");
  hint.hidden = !siblings.length;
  hint.textContent = siblings.length ? t("siblingsHint", quoteNames(siblings)) : "";
}


function showBackend() {
  const account = selectedAccount();
  const text = $("backend-text");
  text.textContent = "";
  if (!account) {
    return;
  }
  if (usableBackend(account)) {
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
  $("guided-retry-line").hidden = !forcedGuided.has(account?.id) || !usableBackend(account);
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

// After the host could not get through the provider's site.
function offerGuided(account, error, kind) {
  const offer =
    kind === "change" &&
    !!account?.passwordBased &&
    (error.code === "page_not_recognised" ||
      (error.code === "backend_unreachable" && isWebBackend(account.backend?.name)));
  $("guided-offer").hidden = !offer;
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
  const summary = view() === "change" ? describeRules(rulesOf(selectedAccount())) : "";
  $("new-hint").textContent = summary;
  $("new-hint").hidden = !summary;
}

// ---- validation ----------------------------------------------------------

// Returns [[field, text, rule], ...] for the current values; rule is the
// broken rule's name (PROTOCOL.md), when there is one.
function problems({ onlyTouched }) {
  const found = [];
  const value = id => $(id).value;
  const considered = id => !onlyTouched || touched.has(id);
  const account = selectedAccount();
  const current = view();
  if (!onlyTouched && !account?.passwordBased) {
    found.push(["account", t("errNoAccount")]);
    return found;
  }
  if (current === "sync") {
    if (!onlyTouched && !value("password")) {
      found.push(["password", t("errPasswordEmpty"), "empty"]);
    } else if (value("password") && considered("password")) {
      // Only the rules every password obeys: this one is already in force.
      for (const v of violations(value("password"))) {
        found.push(["password", describeRule(v), v.rule]);
      }
    }
    return found;
  }
  if (current === "guided") {
    return found;
  }
  if (!onlyTouched && !value("current")) {
    found.push(["current", t("errCurrentEmpty"), "current_required"]);
  }
  if (!onlyTouched && !value("new")) {
    found.push(["new", t("errNewEmpty"), "empty"]);
  } else if (value("new") && considered("new")) {
    const rules = rulesOf(account);
    for (const v of violations(value("new"), { current: value("current"), rules })) {
      found.push(["new", describeRule(v, rules), v.rule]);
    }
  }
  if (considered("repeat") && (value("repeat") || !onlyTouched) && value("repeat") !== value("new")) {
    found.push(["repeat", describeRule("mismatch"), "mismatch"]);
  }
  return found;
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

function resetSteps(account, kind) {
  const list = $("steps");
  list.replaceChildren();
  const hasOutgoing = account?.outgoing && account.outgoing.authMethod !== AUTH_NONE;
  const addStep = (step, text) => {
    const item = document.createElement("li");
    item.dataset.step = step;
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = text;
    const state = document.createElement("span");
    state.className = "state";
    item.append(label, " ", state);
    list.append(item);
    setStep(step, "pending");
  };
  for (const step of STEPS) {
    if ((step === "checking_outgoing" && account && !hasOutgoing) || (step === "changing" && kind === "sync")) {
      continue;
    }
    addStep(step, t(`step_${step}`));
  }
  for (const sibling of siblingsOf(account)) {
    addStep(`sibling:${sibling.id}`, t("step_sibling", sibling.name));
  }
}

function setSibling(accountId, state) {
  setStep(`sibling:${accountId}`, state);
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
  touched = new Set();
  showProblems([]);
}

// "Also saved for “B”." / "Not saved for “C”: …" after the main result.
function describeSiblings(siblings = []) {
  const texts = [];
  const stored = siblings.filter(s => s.stored);
  if (stored.length) {
    texts.push(t("siblingsStored", quoteNames(stored)));
  }
  for (const s of siblings.filter(s => !s.stored)) {
    texts.push(t("siblingFailed", s.name, describeReason(s.error)));
  }
  return texts;
}

function finish(response, kind = mode(), accountId = selectedAccount()?.id) {
  const changing = ["running", "ok", "failed"].includes(stepState("changing"));
  const account = accounts.find(a => a.id === accountId) ?? null;
  setRunning(false);
  clearPasswords();
  if (response.ok) {
    const both = !!response.result?.outgoing;
    const sync = kind === "sync";
    const main = t(sync ? (both ? "syncSuccess" : "syncSuccessIncomingOnly") : both ? "success" : "successIncomingOnly");
    const siblings = response.result?.siblings ?? [];
    const allStored = siblings.every(s => s.stored);
    if (guidedState?.accountId === accountId) {
      guidedState = null; // the background forgot it too
      showGuided();
    }
    showStatus([main, ...describeSiblings(siblings)].join(" "), allStored ? "success" : "error");
    showNote(describeAudit(response.result));
    $("status").focus();
    return;
  }
  const error = response.error ?? { code: "internal_error" };
  for (const item of $("steps").querySelectorAll("li.running")) {
    setStep(item.dataset.step, "failed");
  }
  if (!$("steps").querySelector("li:not(.pending)")) {
    $("progress").hidden = true;
  }
  showStatus(describeError(error, { changing, sync: kind === "sync", rules: rulesOf(account) }), "error");
  showNote(describeAudit(error));
  offerGuided(account, error, kind);
  const focusField = {
    wrong_current_password: "current",
    policy_violation: kind === "sync" ? "password" : "new",
    verification_failed: kind === "sync" ? "password" : null,
  }[error.code];
  (focusField && !$(focusField).closest("[hidden]") ? $(focusField) : $("status")).focus();
}

// Follows a change or sync through a port: progress events, then the result.
function follow(message, kind) {
  const { accountId } = message;
  setRunning(true);
  showStatus(t(kind === "sync" ? "runningSync" : "running"));
  const port = messenger.runtime.connect({ name: "credsync" });
  let done = false;
  port.onMessage.addListener(event => {
    if (event.type === "progress" && event.step === "sibling") {
      setSibling(event.accountId, event.state);
    } else if (event.type === "progress") {
      setStep(event.step, event.state);
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

function submit(event) {
  event.preventDefault();
  if (running || view() === "guided") {
    return; // in the guided view, its own button opens the page
  }
  const found = problems({ onlyTouched: false });
  showProblems(found);
  if (found.length) {
    $(found[0][0]).focus();
    return;
  }
  const account = selectedAccount();
  const kind = mode();
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
async function resumeFlows() {
  let flows;
  try {
    flows = (await command({ cmd: "status" })).flows;
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
    setStep(step, state);
  }
  for (const [accountId, state] of Object.entries(flow.siblings ?? {})) {
    setSibling(accountId, state);
  }
  if (flow.done) {
    finish(flow.response, kind, flow.accountId);
  } else {
    follow({ cmd: "watch", accountId: flow.accountId }, kind);
  }
}

// The account the user was sent to the provider's page for (the toolbar
// popup closed when the tab opened): back in "I already changed it".
async function resumeGuided() {
  try {
    guidedState = (await command({ cmd: "guided" })).guided;
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
  $("guided-offer").addEventListener("click", switchToGuided);
  $("guided-retry").addEventListener("click", () => {
    forcedGuided.delete(selectedAccount()?.id);
    showMode();
    $("current").focus();
  });
  for (const id of PASSWORD_FIELDS) {
    $(id).addEventListener("input", () => {
      touched.add(id);
      showProblems(problems({ onlyTouched: true }));
    });
  }
  showMode();
  const helloDone = loadBackends();
  await loadAccounts();
  await resumeGuided();
  await resumeFlows();
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
