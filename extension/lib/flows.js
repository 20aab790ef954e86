// A change or a sync ("I already changed it"), as the popup asks for it:
// one request to the host, which owns the whole transaction (which logins
// the password belongs to, the provider, the servers, one store).

import { accountWithBackend } from "./accounts.js";
import { CredsyncError, request } from "./connection.js";

/**
 * Changes the password of the account (and of every account sharing its
 * login) at the provider through the account's back-end.
 *
 * @param {Function} [onProgress] called with {step, state}
 * @returns {Promise<object>} the host's result: {changed, stored, accounts,
 *   logins, servers}
 * @throws {CredsyncError} the host's error (with accounts, logins, servers,
 *   changed where known) or backend_not_configured
 */
export async function changePassword(accountId, current, newPassword, onProgress) {
  const account = await accountWithBackend(accountId);
  if (!account.backend) {
    throw new CredsyncError("backend_not_configured", "no back-end is configured for this account");
  }
  return request("change", { accountId, backend: account.backend, current, new: newPassword }, { onProgress });
}

/** "I already changed it": verifies and saves the password now in force, as changePassword. */
export async function syncPassword(accountId, password, onProgress) {
  if (typeof password !== "string" || !password) {
    throw new CredsyncError("invalid_request", "password must be a non-empty string", { field: "password" });
  }
  return request("sync", { accountId, password }, { onProgress });
}
