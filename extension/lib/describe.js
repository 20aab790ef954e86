// Localised texts for error codes, verification outcomes and automatic
// updates, shared by the popup, the options page and the background page.

import { t } from "./i18n.js";

const KNOWN_OUTCOMES = new Set([
  "ok", "auth_failed", "tls_error", "network_error", "temporary",
  "protocol_error", "refused_plaintext", "not_password_account",
]);

/** "incoming mail: the server rejected the password; outgoing mail: works" */
export function describeSides(sides) {
  return ["incoming", "outgoing"]
    .filter(side => sides?.[side]?.outcome)
    .map(side => {
      const outcome = sides[side].outcome;
      return t("sideOutcome", t(`side_${side}`), t(KNOWN_OUTCOMES.has(outcome) ? `outcome_${outcome}` : "outcome_unknown"));
    })
    .join("; ");
}

/**
 * The user-facing text of an error {code, message, ...extra}.
 *
 * @param {object} error
 * @param {object} [context]
 * @param {boolean} [context.changing] the provider step had started
 * @param {boolean} [context.sync] the password was changed elsewhere ("I
 *   already changed it", automatic update): it is not a new one
 */
export function describeError(error, { changing = false, sync = false } = {}) {
  const code = error?.code ?? "internal_error";
  switch (code) {
    case "verification_failed":
      if (sync) {
        return t("err_verification_failed_sync", describeSides(error));
      }
      return t(error.changed ? "err_verification_failed_changed" : "err_verification_failed", describeSides(error));
    case "store_failed":
    case "store_cancelled":
      return t(error.changed ? `err_${code}_changed` : `err_${code}`);
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
 * Why a password changed elsewhere was not saved for an account, as one or
 * more sentences: the servers' answers, else the error's text.
 */
export function describeReason(error) {
  if (error?.code === "verification_failed") {
    return t("reasonSides", describeSides(error));
  }
  return describeError(error, { sync: true });
}

/** "incoming mail", "outgoing mail" or "incoming and outgoing mail". */
export function describeSideList(sides) {
  const both = sides.includes("incoming") && sides.includes("outgoing");
  return both ? t("sides_both") : t(`side_${sides[0] ?? "incoming"}`);
}

/**
 * The notification after an automatic update (core.propagateSaved's
 * report): {title, message}, or null when nothing was updated or tried.
 */
export function describePropagation(report) {
  const results = report?.results ?? [];
  if (!results.length) {
    return null;
  }
  const lines = [t("propagateIntro", t(`side_${report.side}`))];
  for (const r of results) {
    if (r.stored) {
      lines.push(t("propagateStored", r.name, describeSideList(r.sides)));
    } else {
      lines.push(t("propagateFailed", r.name, describeSideList(r.sides), describeReason(r.error)));
    }
  }
  const ok = results.every(r => r.stored);
  return { title: t(ok ? "propagateTitle" : "propagateTitleFailed"), message: lines.join("\n") };
}
