// Automatic propagation: Thunderbird saved a new password for a mail login
// (its prompt after "remember"); the host decides which other logins it
// belongs to, verifies and stores them. This module forwards one login at a
// time, lets the host read only that login's password while it works,
// records what happened and shows a notification.

import { listAccounts } from "./accounts.js";
import { errorJSON, request } from "./connection.js";
import { describePropagation } from "./describe.js";
import { settings } from "./settings.js";

const KEEP_PROPAGATIONS = 10;

/**
 * The last automatic propagations, newest last: {at, origin, username,
 * accountIds, enabled, side, updated?, results: [{id, name, sides, stored,
 * error?}], error?, notification}. No password.
 */
export const propagations = [];

let pending = null; // {origin, username} of the propagate request now running
let queue = Promise.resolve();

/** The login the running propagate request was sent for, or null. */
export function pendingLogin() {
  return pending;
}

/**
 * credsync.onLoginChanged: forwards a login Thunderbird saved (not one
 * credsync wrote) to the host, after the ones before it. Resolves when this
 * one is done (the event page stays awake meanwhile).
 */
export function onLoginChanged(change) {
  if (!change || change.byCredsync || typeof change.origin !== "string" || typeof change.username !== "string") {
    return queue;
  }
  queue = queue.then(() => propagate(change.origin, change.username)).catch(() => {});
  return queue;
}

// The accounts whose incoming or outgoing login this is.
async function accountsUsing(origin, username) {
  const { accounts } = await listAccounts();
  const uses = ep => ep?.origin?.toLowerCase() === origin.toLowerCase() && ep.username === username;
  return accounts.filter(a => uses(a.incoming) || uses(a.outgoing));
}

async function propagate(origin, username) {
  const side = /^smtp:/i.test(origin) ? "outgoing" : "incoming";
  const record = { at: Date.now(), origin, username, accountIds: [], enabled: false, side, results: [], notification: null };
  const users = await accountsUsing(origin, username).catch(() => []);
  record.accountIds = users.map(a => a.id);
  if ((await settings()).autoPropagate) {
    record.enabled = true;
    pending = { origin, username };
    try {
      const result = await request("propagate", { origin, username });
      record.updated = result.updated !== false;
      record.results = record.updated ? touched(result.accounts, result.stored !== false) : [];
      if (result.auditFailed === true) {
        record.auditFailed = true;
      }
    } catch (e) {
      const { accounts, logins, ...error } = errorJSON(e);
      record.error = { ...error, ...(Array.isArray(logins) ? { logins } : {}) };
      const named = Array.isArray(accounts) && accounts.length ? accounts : users.map(({ id, name }) => ({ id, name }));
      record.results = touched(named, false, record.error);
      console.warn(`credsync: automatic update failed (${error.code})`);
    } finally {
      pending = null;
    }
  }
  for (const r of record.results) {
    if (!record.accountIds.includes(r.id)) {
      record.accountIds.push(r.id);
    }
  }
  record.notification = describePropagation(record);
  if (record.notification) {
    await notify(record.notification);
  }
  propagations.push(record);
  propagations.splice(0, propagations.length - KEEP_PROPAGATIONS);
}

// The host's `accounts` (touched by the transaction) as results.
function touched(accounts, stored, error) {
  return (Array.isArray(accounts) ? accounts : [])
    .filter(a => typeof a?.id === "string")
    .map(a => ({
      id: a.id,
      name: typeof a.name === "string" ? a.name : a.id,
      sides: Array.isArray(a.sides) ? a.sides : [],
      stored,
      ...(error ? { error } : {}),
    }));
}

async function notify({ title, message }) {
  try {
    await messenger.notifications.create(`credsync-propagation-${Date.now()}`, {
      type: "basic",
      title,
      message,
      iconUrl: "icons/credsync.svg",
    });
  } catch {
    console.warn("credsync: could not show the notification");
  }
}
