// The saved logins Thunderbird recently failed with (credsync.onLoginFailed:
// its own "Login to server … failed" question). An account with such a
// login is not asked about its expiry: the check would be one more refused
// login for the directory's lockout count. A failure is forgotten after a
// day, or at once when the login's saved password changes; a change of an
// account's incoming password (the one the check uses) forgets the
// failures of the account's logins.
//
// storage.local "failedLogins" keeps {"origin\nusername": ms}: no password.

import { isObject } from "./settings.js";

export const STORAGE_KEY = "failedLogins";
export const RECENT_MS = 24 * 60 * 60 * 1000;

/** The key of a login: the origin's case does not matter, the user name's does. */
export function loginKey(login) {
  return `${String(login?.origin ?? "").toLowerCase()}\n${String(login?.username ?? "")}`;
}

/** The stored failures ({} when none). */
export async function failedLogins() {
  const value = (await messenger.storage.local.get(STORAGE_KEY))[STORAGE_KEY];
  return isObject(value) ? value : {};
}

/** Whether one of the account's logins failed within RECENT_MS before now. */
export function failedRecently(account, failures, now) {
  return [account?.incoming, account?.outgoing].some(login => {
    if (!login?.origin) {
      return false;
    }
    const at = failures[loginKey(login)];
    return typeof at === "number" && at <= now && now - at < RECENT_MS;
  });
}

// One update at a time: two events read-modify-writing at once would lose one.
let queue = Promise.resolve();

function update(change) {
  const run = queue.then(async () => {
    const failures = await failedLogins();
    if (change(failures)) {
      await messenger.storage.local.set({ [STORAGE_KEY]: failures });
    }
  });
  queue = run.catch(() => {});
  return run;
}

/** Records a failure of the login at now; drops the ones not recent (or from a clock set back). */
export function recordFailure(login, now) {
  return update(failures => {
    for (const [key, at] of Object.entries(failures)) {
      if (typeof at !== "number" || at > now || now - at >= RECENT_MS) {
        delete failures[key];
      }
    }
    failures[loginKey(login)] = now;
    return true;
  });
}

/** Forgets the failures of these logins. */
export function forgetFailures(logins) {
  const keys = logins.map(loginKey);
  return update(failures => keys.filter(key => key in failures && delete failures[key]).length > 0);
}
