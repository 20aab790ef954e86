// The popup's logic without its DOM (popup.js draws it): which view shows,
// what the form's fields lack, what to ask the host to check, which steps
// to list, and what to say at the end. Pure functions, plus a checker that
// sends the host's rules check while the user types, debounced, keeping
// only the latest answer.

import { describeAudit, describeBreachCheck, describeError, describeRule, describeSuccess, quoteNames } from "./describe.js";
import { t } from "./i18n.js";
import { isWebBackend } from "./providers.js";

export const STEPS = ["policy", "changing", "checking_incoming", "checking_outgoing", "saving"];
export const PASSWORD_FIELDS = ["current", "new", "repeat", "password"];
const AUTH_OAUTH2 = 10;
const AUTH_NONE = 1;

/**
 * Whether the account's back-end can be used: one is set (or detected) and
 * the host knows it (while hello has not answered, backends is null and it
 * is assumed to).
 */
export function usableBackend(account, backends) {
  return !!account?.backend && (!backends || backends.has(account.backend.name));
}

/** The back-end's rules (hello), or null. */
export function rulesOf(account, backends) {
  return (account && backends?.get(account.backend?.name)?.rules) || null;
}

/**
 * "change", "sync" or "guided" (change mode when no usable back-end, or
 * the back-end could not get through the provider's site: forcedGuided).
 */
export function viewOf({ mode, account, backends, forcedGuided = new Set() }) {
  if (mode === "sync") {
    return "sync";
  }
  return account?.passwordBased && (!usableBackend(account, backends) || forcedGuided.has(account.id)) ? "guided" : "change";
}

/** The account list's label: its name, or why it cannot be chosen. */
export function accountLabel(account) {
  if (account.passwordBased) {
    return account.name;
  }
  const oauth = [account.incoming, account.outgoing].some(ep => ep?.authMethod === AUTH_OAUTH2);
  return t(oauth ? "accountOAuth" : "accountUnsupported", account.name);
}

/** The accounts a change of account writes too (the host's plan). */
export function siblingsOf(account, accounts) {
  return (account?.siblings ?? []).map(id => accounts.find(a => a.id === id)).filter(Boolean);
}

/** The hint naming them, or "". */
export function siblingsHint(account, accounts) {
  const siblings = siblingsOf(account, accounts);
  return siblings.length ? t("siblingsHint", quoteNames(siblings)) : "";
}

/**
 * What the form lacks, without the host: [[field, text, rule?], ...].
 * onlyTouched: while typing (only fields the user typed in, no "empty").
 */
export function localProblems({ view, values, touched = new Set(), onlyTouched, account }) {
  const found = [];
  const considered = id => !onlyTouched || touched.has(id);
  if (!onlyTouched && !account?.passwordBased) {
    return [["account", t("errNoAccount")]];
  }
  if (view === "sync") {
    if (!onlyTouched && !values.password) {
      found.push(["password", t("errPasswordEmpty"), "empty"]);
    }
    return found;
  }
  if (view === "guided") {
    return found;
  }
  if (!onlyTouched && !values.current) {
    found.push(["current", t("errCurrentEmpty"), "current_required"]);
  }
  if (!onlyTouched && !values.new) {
    found.push(["new", t("errNewEmpty"), "empty"]);
  }
  if (considered("repeat") && (values.repeat || !onlyTouched) && values.repeat !== values.new) {
    found.push(["repeat", describeRule("mismatch"), "mismatch"]);
  }
  return found;
}

/**
 * The host check for the typed password ({backend?, current?, new}), or
 * null when there is nothing to check. In sync mode the password is
 * already in force: only the rules every password obeys (no back-end).
 */
export function checkRequest({ view, values, account, touched = null }) {
  if (view === "sync") {
    return values.password && (!touched || touched.has("password")) ? { new: values.password } : null;
  }
  if (view !== "change" || !values.new || (touched && !touched.has("new"))) {
    return null;
  }
  const request = { new: values.new };
  if (account?.backend?.name) {
    request.backend = account.backend.name;
  }
  if (values.current) {
    request.current = values.current;
  }
  return request;
}

/** The host's violations as problems of the password field. */
export function violationProblems(violations, { view, rules = null }) {
  const field = view === "sync" ? "password" : "new";
  return (Array.isArray(violations) ? violations : []).map(v => [field, describeRule(v, rules), v?.rule]);
}

/**
 * The progress list: [[step, text], ...]. No "changing" step for a sync,
 * no outgoing check without an outgoing password; the accounts a change
 * writes too are saved in the same step as the account ("sibling:<id>").
 */
export function stepsFor(account, kind, siblings = []) {
  const hasOutgoing = account?.outgoing && account.outgoing.authMethod !== AUTH_NONE;
  const steps = STEPS.filter(
    step => !(step === "checking_outgoing" && account && !hasOutgoing) && !(step === "changing" && kind === "sync")
  ).map(step => [step, t(`step_${step}`)]);
  return [...steps, ...siblings.map(s => [`sibling:${s.id}`, t("step_sibling", s.name)])];
}

/** A step's state as shown: sibling steps follow "saving". */
export function stepUpdates(step, state, siblings = []) {
  return step === "saving" ? [[step, state], ...siblings.map(s => [`sibling:${s.id}`, state])] : [[step, state]];
}

/**
 * What the popup says when a change or sync ends: {kind: "success" |
 * "error", text, note, offerGuided, focus (a field id, or "status")}.
 *
 * @param {object} response {ok, result} or {ok: false, error}
 * @param {object} context {kind, accountId, account, backends, changing}
 */
export function outcome(response, { kind, accountId, account = null, backends = null, changing = false }) {
  const sync = kind === "sync";
  if (response?.ok) {
    const result = response.result ?? {};
    const note = [describeWaited(result.waited), describeBreachCheck(result), describeAudit(result)].filter(Boolean).join(" ");
    return { kind: "success", text: describeSuccess(result, { sync, accountId }), note, offerGuided: false, focus: "status" };
  }
  const error = response?.error ?? { code: "internal_error" };
  if (error.waited) {
    return {
      kind: "error",
      text: [describeWaited(error.waited), describeError(error, { changing, sync, rules: rulesOf(account, backends) })].filter(Boolean).join(" "),
      note: describeAudit(error),
      offerGuided: false,
      focus: "status",
    };
  }
  const offerGuided =
    kind === "change" &&
    !!account?.passwordBased &&
    (error.code === "page_not_recognised" ||
      (error.code === "backend_unreachable" && !!backends && isWebBackend(account.backend?.name, backends)));
  const focus =
    { wrong_current_password: "current", policy_violation: sync ? "password" : "new", verification_failed: sync ? "password" : null }[
      error.code
    ] ?? "status";
  return {
    kind: "error",
    text: describeError(error, { changing, sync, rules: rulesOf(account, backends) }),
    note: describeAudit(error),
    offerGuided,
    focus,
  };
}

/**
 * The line shown while the host waits for the mail servers to accept a new
 * password the provider has (PROTOCOL.md, "Waiting for the servers"): the
 * next check's local time and the failed logins spent of the budget.
 *
 * @param {object} waiting the host's waiting event {nextCheck, checks, failedLogins, budget}
 * @param {Function} [timeOf] a Date → "HH:MM" (the page's locale)
 */
export function waitingLine(waiting, timeOf = d => d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })) {
  const next = new Date(waiting?.nextCheck);
  const when = Number.isNaN(next.getTime()) ? "?" : timeOf(next);
  return t("waitingLine", when, waiting?.failedLogins ?? 0, waiting?.budget ?? 0);
}

/** What a finished wait adds to the result: why it ended, or "". */
export function describeWaited(waited) {
  if (!waited?.end) {
    return "";
  }
  const known = ["accepted", "schedule_over", "budget_spent", "cancelled", "server_failed", "closed"];
  return t(known.includes(waited.end) ? `waited_${waited.end}` : "waited_schedule_over");
}

/**
 * Sends the host's rules check while the user types: schedule() waits
 * delayMs of quiet, now() sends at once; an answer that a later request
 * overtook is dropped. onBusy(true/false) follows whether a check is
 * pending (the page marks it for tests); a failed check reports null.
 */
export function createChecker({ send, onResult, onBusy = () => {}, delayMs = 250, timers = globalThis }) {
  let latest = 0;
  let timer = null;
  const run = async (request, id) => {
    let violations;
    try {
      violations = request ? ((await send(request))?.violations ?? []) : [];
    } catch {
      violations = null; // the host checks again on submit
    }
    if (id === latest) {
      onBusy(false);
      onResult(violations, request);
    }
    return id === latest ? violations : undefined;
  };
  return {
    schedule(request) {
      timers.clearTimeout(timer);
      const id = ++latest;
      onBusy(true);
      timer = timers.setTimeout(() => run(request, id), delayMs);
    },
    now(request) {
      timers.clearTimeout(timer);
      const id = ++latest;
      onBusy(true);
      return run(request, id);
    },
    cancel() {
      timers.clearTimeout(timer);
      latest++;
      onBusy(false);
    },
  };
}
