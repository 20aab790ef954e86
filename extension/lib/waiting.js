// A change waiting for mail servers that lag behind the provider
// (PROTOCOL.md, "Waiting for the servers"): the host's pause and resume of
// Thunderbird's own checks, answered through the Experiment, and the
// notification that reports the end of a wait when the popup is closed.

import { CredsyncError } from "./host.js";
import { t } from "./i18n.js";

/** The host's `pause` or `resume` request: {accounts: [id, …]}. */
export async function answerChecks({ type, accounts }) {
  if (!Array.isArray(accounts) || accounts.some(id => typeof id !== "string" || !id)) {
    throw new CredsyncError("invalid_request", "accounts must be an array of account ids", { field: "accounts" });
  }
  if (type === "pause") {
    return { paused: await messenger.credsync.pauseChecks(accounts) };
  }
  return { resumed: await messenger.credsync.resumeChecks(accounts) };
}

/**
 * Resumes every account the host paused: after the host went away (its
 * waits ended with it) or at a new connection (a new host has no wait).
 */
export async function resumeAllChecks() {
  try {
    await messenger.credsync.resumeAllChecks();
  } catch {
    console.warn("credsync: could not resume Thunderbird's checks");
  }
}

/** The "waiting" state the popup shows: {nextCheck, checks, failedLogins, budget}, or null. */
export function waitingOf(event) {
  const { nextCheck, checks, failedLogins, budget } = event ?? {};
  if (typeof nextCheck !== "string") {
    return null;
  }
  return { nextCheck, checks, failedLogins, budget };
}

// The account's name as the host's reply gives it.
function nameOf(response, accountId) {
  const accounts = response?.result?.accounts ?? response?.error?.accounts;
  const found = Array.isArray(accounts) ? accounts.find(a => a?.id === accountId) : null;
  return typeof found?.name === "string" && found.name ? found.name : accountId;
}

/**
 * What the notification says about the end of a wait, or null when there
 * is nothing to report (no wait, or the user cancelled it).
 *
 * @param {object} response {ok, result | error} of the change
 */
export function waitEndNotice(response, accountId) {
  const waited = response?.ok ? response.result?.waited : response?.error?.waited;
  if (!waited || waited.end === "cancelled") {
    return null;
  }
  const name = nameOf(response, accountId);
  if (response.ok && response.result.stored) {
    return { title: t("waitEndTitleStored"), message: t("waitEndStored", name) };
  }
  const code = response.error?.code ?? "internal_error";
  if (waited.end === "accepted") {
    return { title: t("waitEndTitleRefused"), message: t("waitEndFailed", name, code) };
  }
  const key = code === "outcome_unknown" ? "waitEndUnknown" : "waitEndRefused";
  return { title: t("waitEndTitleRefused"), message: t(key, name) };
}

/** Shows the notice of waitEndNotice, if any. */
export async function notifyWaitEnd(response, accountId) {
  const notice = waitEndNotice(response, accountId);
  if (!notice) {
    return;
  }
  try {
    await messenger.notifications.create(`credsync-wait-${accountId}-${Date.now()}`, {
      type: "basic",
      title: notice.title,
      message: notice.message,
      iconUrl: "icons/credsync.svg",
    });
  } catch {
    console.warn("credsync: could not show the notification");
  }
}
