// Localised texts for error codes, verification outcomes and automatic
// updates, shared by the popup, the options page and the background page.

import { t } from "./i18n.js";

const KNOWN_OUTCOMES = new Set([
  "ok", "auth_failed", "tls_error", "network_error", "temporary",
  "protocol_error", "refused_plaintext", "not_password_account", "password_expired",
]);

function outcomeText(outcome) {
  return t(KNOWN_OUTCOMES.has(outcome) ? `outcome_${outcome}` : "outcome_unknown");
}

/**
 * The servers' answers (a result's or an error's `servers`: [{side,
 * protocol, host, outcome, …}]) as one sentence, incoming first:
 * "incoming mail: the server rejected the password; outgoing mail: works".
 * A side with several servers names each.
 */
export function describeSides(servers) {
  const list = (Array.isArray(servers) ? servers : []).filter(s => s?.outcome);
  const sideOf = s => (s.side === "outgoing" ? "outgoing" : "incoming");
  const count = side => list.filter(s => sideOf(s) === side).length;
  return ["incoming", "outgoing"]
    .flatMap(side => list.filter(s => sideOf(s) === side))
    .map(s => {
      const side = t(`side_${sideOf(s)}`);
      const label = count(sideOf(s)) > 1 ? t("sideServer", side, String(s.protocol ?? "").toUpperCase(), s.host ?? "") : side;
      return t("sideOutcome", label, outcomeText(s.outcome));
    })
    .join("; ");
}

/** “A”, “B” */
export function quoteNames(accounts) {
  return accounts.map(a => t("quoted", a.name ?? a.id)).join(", ");
}

// Rule names (PROTOCOL.md policy_violation) with a message of their own.
const KNOWN_RULES = new Set([
  "empty", "too_long", "invalid_utf8", "control_characters", "same_as_current", "current_required",
  "too_short", "needs_upper", "needs_lower", "needs_digit", "needs_special", "bad_character",
  "too_weak", "breached", "breach_check_unavailable", "mismatch",
]);

/**
 * One broken rule as a sentence naming it: {rule, ...params} from
 * rules.violations, or a bare rule name from a host error, completed with
 * the back-end's `rules` (hello) when they are known.
 */
export function describeRule(violation, rules = null) {
  const v = typeof violation === "string" ? { rule: violation } : (violation ?? {});
  const r = rules && typeof rules === "object" ? rules : {};
  const specials = v.specials ?? r.specials ?? "";
  switch (v.rule) {
    case "too_short": {
      const min = v.minLength ?? r.minLength;
      return min ? t("rule_too_short", min) : t("rule_too_short_any");
    }
    case "too_long": {
      const max = v.maxLength ?? (v.maxBytes ? null : r.maxLength);
      if (max) {
        return t("rule_too_long", max);
      }
      const bytes = v.maxBytes ?? r.maxBytes;
      return bytes ? t("rule_too_long_bytes", bytes) : t("rule_too_long_any");
    }
    case "needs_special":
      return specials ? t("rule_needs_special", specials) : t("rule_needs_special_any");
    case "bad_character": {
      const forbidden = v.forbidden ?? r.forbidden ?? "";
      if (specials) {
        return t("rule_bad_character", specials);
      }
      return forbidden ? t("rule_bad_character_forbidden", forbidden) : t("rule_bad_character_any");
    }
    case "breached":
      // How often the password was seen (the error's `breaches`).
      if (Number.isInteger(v.breaches) && v.breaches > 0) {
        return t("rule_breached_count", formatCount(v.breaches));
      }
      break;
  }
  return KNOWN_RULES.has(v.rule) ? t(`rule_${v.rule}`) : t("rule_unknown", String(v.rule ?? "?"));
}

/**
 * The back-end's rules in one sentence ("The provider's rules: 8–256
 * characters, an upper-case letter, …"), or "" when they impose nothing.
 */
export function describeRules(rules) {
  if (!rules || typeof rules !== "object") {
    return "";
  }
  const parts = [];
  if (rules.minLength > 0 && rules.maxLength > 0) {
    parts.push(t("rules_length", rules.minLength, rules.maxLength));
  } else if (rules.minLength > 0) {
    parts.push(t("rules_min", rules.minLength));
  } else if (rules.maxLength > 0) {
    parts.push(t("rules_max", rules.maxLength));
  }
  if (rules.maxBytes > 0) {
    parts.push(t("rules_bytes", rules.maxBytes));
  }
  const classes = [
    ["needsUpper", "rules_upper"],
    ["needsLower", "rules_lower"],
    ["needsDigit", "rules_digit"],
  ];
  for (const [key, text] of classes) {
    if (rules[key]) {
      parts.push(t(text));
    }
  }
  if (rules.needsSpecial) {
    parts.push(rules.specials ? t("rules_special_of", rules.specials) : t("rules_special"));
  } else if (rules.specials) {
    parts.push(t("rules_specials_only", rules.specials));
  }
  if (rules.forbidden) {
    parts.push(t("rules_forbidden", rules.forbidden));
  }
  return parts.length ? t("rules_intro", parts.join(t("rules_separator"))) : "";
}

const STORE_CODES = new Set(["store_failed", "store_cancelled", "store_conflict", "store_unconfirmed"]);

/** A count in the user's language (1.234 in Italian, 1,234 in English). */
export function formatCount(n) {
  try {
    return new Intl.NumberFormat(messenger.i18n.getUILanguage()).format(n);
  } catch {
    return String(n);
  }
}

// The longest provider's words shown (the host sends at most 200 characters).
const MAX_PROVIDER_WORDS = 300;

/**
 * The provider's own words about a refusal (an error's `providerWords`),
 * quoted and labelled as the provider's, or "".
 */
export function describeProviderWords(error) {
  const words = typeof error?.providerWords === "string" ? error.providerWords.replace(/\s+/g, " ").trim() : "";
  if (!words) {
    return "";
  }
  const shown = words.length > MAX_PROVIDER_WORDS ? `${words.slice(0, MAX_PROVIDER_WORDS - 1)}…` : words;
  return t("providerWords", shown);
}

/**
 * The user-facing text of an error {code, message, ...extra}, followed by
 * the provider's own words when it carries them (`providerWords`).
 *
 * @param {object} error
 * @param {object} [context]
 * @param {boolean} [context.changing] the provider step had started
 * @param {boolean} [context.sync] the password was changed elsewhere ("I
 *   already changed it", automatic update): it is not a new one
 * @param {object} [context.rules] the back-end's rules (hello), to complete
 *   a rule named by the error
 */
export function describeError(error, context = {}) {
  return [describeCode(error, context), describeProviderWords(error)].filter(Boolean).join(" ");
}

// describeError without the provider's words. `sent` (what of a change
// reached the provider) picks the text wherever a text says what was sent:
// no text may say "sent nothing" when the current password or the change
// was sent.
function describeCode(error, { changing = false, sync = false, rules = null } = {}) {
  const code = error?.code ?? "internal_error";
  if (STORE_CODES.has(code)) {
    const key = error.changed === true && code !== "store_unconfirmed" ? `err_${code}_changed` : `err_${code}`;
    return [t(key), describeStoreState(error)].filter(Boolean).join(" ");
  }
  switch (code) {
    case "policy_violation":
      if (error.rule === "breach_check_unavailable" && !sync) {
        return t("err_breach_check_unavailable");
      }
      if (error.rule) {
        const rule = { rule: error.rule, breaches: error.breaches };
        return t(sync ? "err_policy_violation_rule_sync" : "err_policy_violation_rule", describeRule(rule, rules));
      }
      break;
    case "backend_rejected":
      if (error.rule) {
        return t("err_backend_rejected_rule", describeRule(error.rule, rules));
      }
      break;
    case "verification_failed":
      if (sync) {
        return t("err_verification_failed_sync", describeSides(error.servers));
      }
      return t(error.changed ? "err_verification_failed_changed" : "err_verification_failed", describeSides(error.servers));
    case "outcome_unknown": {
      // The provider's answer was lost and no server accepts the new
      // password yet: say so, and what to do.
      const sides = describeSides(error.servers);
      return sides ? t("err_outcome_unknown_servers", sides) : t("err_outcome_unknown");
    }
    case "page_not_recognised":
      return t(
        { nothing: "err_page_not_recognised", current: "err_page_not_recognised_current", change: "err_page_not_recognised_change" }[
          error.sent
        ] ?? "err_page_not_recognised_unsaid"
      );
    case "unknown_account":
      return t(error.changed ? "err_store_failed_changed" : "err_unknown_account");
    case "invalid_request":
      return t("err_invalid_request", error.field ?? "?");
    case "host_disconnected":
      return t(changing ? "err_host_disconnected_changing" : "err_host_disconnected");
  }
  if (error.changed === true) {
    // The provider has the new password but Thunderbird does not.
    return t("err_store_failed_changed");
  }
  const text = messenger.i18n.getMessage(`err_${code}`);
  return text || t("err_generic", code);
}

/**
 * After a failed store: which mailboxes kept the old password (every login
 * unchanged or restored), or that some may hold the new one (a login's
 * state unknown). "" when the error says nothing about it.
 */
export function describeStoreState(error) {
  const logins = Array.isArray(error?.logins) ? error.logins : [];
  if (logins.some(l => l?.state === "unknown" || l?.state === "stored")) {
    return t("storeMaybe");
  }
  const accounts = Array.isArray(error?.accounts) ? error.accounts.filter(a => a?.name || a?.id) : [];
  return accounts.length ? t("storeNone", quoteNames(accounts)) : "";
}

/**
 * Why a password changed elsewhere was not saved, as one or more
 * sentences: the servers' answers, else the error's text.
 */
export function describeReason(error) {
  if (error?.code === "verification_failed") {
    return t("reasonSides", describeSides(error.servers));
  }
  return describeError(error, { sync: true });
}

/** "incoming mail", "outgoing mail" or "incoming and outgoing mail". */
export function describeSideList(sides) {
  const both = sides.includes("incoming") && sides.includes("outgoing");
  return both ? t("sides_both") : t(`side_${sides[0] ?? "incoming"}`);
}

/**
 * The popup's line after a change or sync of accountId succeeded (the
 * host's result {accounts, servers, …}): what works, and the other
 * accounts saved with it ("Also saved for “B”.").
 */
export function describeSuccess(result, { sync = false, accountId } = {}) {
  const touched = Array.isArray(result?.accounts) ? result.accounts : [];
  const self = touched.find(a => a?.id === accountId);
  const both = self
    ? Array.isArray(self.sides) && self.sides.includes("outgoing")
    : (result?.servers ?? []).some(s => s?.side === "outgoing");
  const main = t(sync ? (both ? "syncSuccess" : "syncSuccessIncomingOnly") : both ? "success" : "successIncomingOnly");
  const others = touched.filter(a => a?.id && a.id !== accountId);
  return others.length ? `${main} ${t("siblingsStored", quoteNames(others))}` : main;
}

/**
 * The notification after an automatic update (a propagation record of
 * propagation.js): {title, message}, or null when nothing was updated or
 * tried.
 */
export function describePropagation(record) {
  const results = record?.results ?? [];
  if (!results.length) {
    return null;
  }
  const lines = [t("propagateIntro", t(`side_${record.side === "outgoing" ? "outgoing" : "incoming"}`))];
  for (const r of results.filter(r => r.stored)) {
    lines.push(t("propagateStored", r.name, describeSideList(r.sides)));
  }
  const failed = results.filter(r => !r.stored);
  if (failed.length) {
    lines.push(t("propagateFailed", quoteNames(failed), describeReason(failed[0].error ?? record.error)));
  }
  if (record.auditFailed || record.error?.auditFailed) {
    lines.push(t("auditNote"));
  }
  return { title: t(failed.length ? "propagateTitleFailed" : "propagateTitle"), message: lines.join("\n") };
}

/**
 * The breach check's outcome after a change that asked for it (the
 * result's `breachCheck`): "not_listed", or "unavailable" (the range API
 * could not be reached and the administrator lets the change go on: the
 * user must know the check was not made). "" otherwise.
 */
export function describeBreachCheck(result) {
  switch (result?.breachCheck) {
    case "not_listed":
      return t("breachNotListed");
    case "unavailable":
      return t("breachUnavailable");
  }
  return "";
}

/**
 * A gentle note when the host could not write the flow's audit record
 * (`auditFailed: true` in a result or an error): the outcome is unchanged.
 * "" otherwise.
 */
export function describeAudit(resultOrError) {
  return resultOrError?.auditFailed === true ? t("auditNote") : "";
}
