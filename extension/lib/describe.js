// Localised texts for error codes and verification outcomes, shared by the
// popup and the options page.

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
 */
export function describeError(error, { changing = false } = {}) {
  const code = error?.code ?? "internal_error";
  switch (code) {
    case "verification_failed":
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
