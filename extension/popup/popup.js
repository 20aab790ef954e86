// The change form. Works as the toolbar popup and in a normal tab. Two
// modes: "change" (current, new and repeated password: the provider
// changes it) and "sync" ("I already changed it elsewhere": one password,
// checked on the servers and saved).

import { describeError, describeReason } from "../lib/describe.js";
import { localizeDocument, t } from "../lib/i18n.js";

const STEPS = ["policy", "changing", "checking_incoming", "checking_outgoing", "saving"];
const PASSWORD_FIELDS = ["current", "new", "repeat", "password"];
const AUTH_OAUTH2 = 10;
const AUTH_NONE = 1;

const $ = id => document.getElementById(id);
let accounts = [];
let running = false;
let touched = new Set(); // fields the user has typed in

function mode() {
  return $("mode-sync").checked ? "sync" : "change";
}

function setMode(value) {
  $(value === "sync" ? "mode-sync" : "mode-change").checked = true;
  showMode();
}

function showMode() {
  const current = mode();
  for (const el of document.querySelectorAll("[data-mode]")) {
    el.hidden = el.dataset.mode !== current;
  }
  $("change").textContent = t(current === "sync" ? "syncButton" : "changeButton");
  touched = new Set();
  showProblems([]);
  showStatus("");
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
  showBackend();
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

function showAccount() {
  showBackend();
  showSiblings();
}

function showBackend() {
  const account = selectedAccount();
  const text = $("backend-text");
  text.textContent = "";
  text.classList.remove("warning");
  if (!account) {
    return;
  }
  if (account.backend) {
    text.textContent = t("backendIs", account.backend.name);
  } else {
    text.textContent = t("backendMissing");
    text.classList.add("warning");
  }
}

// ---- validation ----------------------------------------------------------

// Returns [[field, messageKey], ...] for the current values.
function problems({ onlyTouched }) {
  const found = [];
  const value = id => $(id).value;
  const considered = id => !onlyTouched || touched.has(id);
  const account = selectedAccount();
  if (!onlyTouched && !account?.passwordBased) {
    found.push(["account", "errNoAccount"]);
  } else if (mode() === "sync") {
    if (!onlyTouched && !value("password")) {
      found.push(["password", "errPasswordEmpty"]);
    }
    return found;
  } else if (!onlyTouched && !account.backend) {
    found.push(["open-options", "err_backend_not_configured"]);
  }
  if (!onlyTouched && !value("current")) {
    found.push(["current", "errCurrentEmpty"]);
  }
  if (!onlyTouched && !value("new")) {
    found.push(["new", "errNewEmpty"]);
  } else if (value("new") && value("current") && value("new") === value("current") && considered("new")) {
    found.push(["new", "errSameAsCurrent"]);
  }
  if (considered("repeat") && (value("repeat") || !onlyTouched) && value("repeat") !== value("new")) {
    found.push(["repeat", "errRepeatMismatch"]);
  }
  return found;
}

function showProblems(found) {
  for (const id of PASSWORD_FIELDS) {
    const problem = found.find(([field]) => field === id);
    $(`${id}-error`).textContent = problem ? t(problem[1]) : "";
    $(id).toggleAttribute("aria-invalid", !!problem);
  }
  const accountProblem = found.find(([field]) => ["account", "open-options"].includes(field));
  if (accountProblem) {
    showStatus(t(accountProblem[1]), "error");
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

function finish(response, kind = mode()) {
  const changing = ["running", "ok", "failed"].includes(stepState("changing"));
  setRunning(false);
  clearPasswords();
  if (response.ok) {
    const both = !!response.result?.outgoing;
    const sync = kind === "sync";
    const main = t(sync ? (both ? "syncSuccess" : "syncSuccessIncomingOnly") : both ? "success" : "successIncomingOnly");
    const siblings = response.result?.siblings ?? [];
    const allStored = siblings.every(s => s.stored);
    showStatus([main, ...describeSiblings(siblings)].join(" "), allStored ? "success" : "error");
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
  showStatus(describeError(error, { changing, sync: kind === "sync" }), "error");
  const focusField = {
    wrong_current_password: "current",
    policy_violation: kind === "sync" ? "password" : "new",
    verification_failed: kind === "sync" ? "password" : null,
  }[error.code];
  (focusField ? $(focusField) : $("status")).focus();
}

// Follows a change or sync through a port: progress events, then the result.
function follow(message, kind) {
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
      finish(event, kind);
    }
  });
  port.onDisconnect.addListener(() => {
    if (!done) {
      finish({ ok: false, error: { code: "internal_error" } }, kind);
    }
  });
  port.postMessage(message);
}

function submit(event) {
  event.preventDefault();
  if (running) {
    return;
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
  showAccount();
  resetSteps(selectedAccount(), kind);
  $("progress").hidden = true;
  for (const [step, state] of Object.entries(flow.steps)) {
    setStep(step, state);
  }
  for (const [accountId, state] of Object.entries(flow.siblings ?? {})) {
    setSibling(accountId, state);
  }
  if (flow.done) {
    finish(flow.response, kind);
  } else {
    follow({ cmd: "watch", accountId: flow.accountId }, kind);
  }
}

async function init() {
  localizeDocument();
  $("change-form").addEventListener("submit", submit);
  for (const radio of document.querySelectorAll('input[name="mode"]')) {
    radio.addEventListener("change", showMode);
  }
  $("account").addEventListener("change", () => {
    showAccount();
    showStatus("");
  });
  $("open-options").addEventListener("click", () => messenger.runtime.openOptionsPage());
  for (const id of PASSWORD_FIELDS) {
    $(id).addEventListener("input", () => {
      touched.add(id);
      showProblems(problems({ onlyTouched: true }));
    });
  }
  showMode();
  await loadAccounts();
  showSiblings();
  await resumeFlows();
  if (!running) {
    const usable = accounts.filter(a => a.passwordBased).length;
    (usable > 1 ? $("account") : $(mode() === "sync" ? "password" : "current")).focus();
  }
}

init();
