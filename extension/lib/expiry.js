// When the saved password of an account expires (PROTOCOL.md, `expiry`):
// when to ask the host, and the notification N days ahead.
//
// The host is asked at most once a day per account whose back-end reads
// expiries (hello's `expiry: true`), and after every successful change;
// never when the feature is off (settings expiryWarnings), never for an
// account whose saved password was refused, by the host's check or by the
// mail server when Thunderbird last logged in (lib/failures.js): a wrong
// password is a failed bind the lockout policy counts. The password is the
// one Thunderbird saved, read through the Experiment, passed in the
// request and kept nowhere. storage.local "expiry" keeps, by account id, {checkedAt,
// state, expiresAt?, notifiedAt?, refusedAt?}: no password.

import { failedRecently } from "./failures.js";
import { t } from "./i18n.js";
import { isObject } from "./settings.js";

export const DAY_MS = 24 * 60 * 60 * 1000;
export const STORAGE_KEY = "expiry";
export const NOTIFICATION_PREFIX = "credsync-expiry-";

/** The stored state by account id ({} when none). */
export async function expiryState() {
  const value = (await messenger.storage.local.get(STORAGE_KEY))[STORAGE_KEY];
  return isObject(value) ? value : {};
}

async function saveState(state) {
  await messenger.storage.local.set({ [STORAGE_KEY]: state });
}

/**
 * The accounts to ask about now: with a back-end whose hello entry says
 * `expiry: true`, password-based, not refused by the host's check nor
 * failed recently in Thunderbird (failures: lib/failures.js
 * failedLogins()), not checked in the last day.
 *
 * @param {object[]} accounts lib/accounts.js accounts()
 * @param {Map} backends backendTable(hello)
 */
export function dueAccounts(accounts, backends, state, now, { failures = {}, force = false } = {}) {
  return accounts.filter(account => {
    const name = account?.backend?.name;
    if (!name || backends.get(name)?.expiry !== true || account.passwordBased === false) {
      return false;
    }
    const entry = state[account.id];
    if (entry?.refusedAt || failedRecently(account, failures, now)) {
      return false;
    }
    return force || !(typeof entry?.checkedAt === "number" && now - entry.checkedAt < DAY_MS && entry.checkedAt <= now);
  });
}

/** The stored entry for the host's answer. */
export function entryOf(result, now, previous = {}) {
  const entry = { checkedAt: now, state: typeof result?.state === "string" ? result.state : "unknown" };
  if (typeof result?.expiresAt === "string" && !Number.isNaN(Date.parse(result.expiresAt))) {
    entry.expiresAt = result.expiresAt;
  }
  if (typeof previous.notifiedAt === "number" && previous.expiresAt === entry.expiresAt) {
    entry.notifiedAt = previous.notifiedAt;
  }
  return entry;
}

/** Whole days from now to when (rounded up; 0 when past). */
export function daysLeft(when, now) {
  return Math.max(0, Math.ceil((Date.parse(when) - now) / DAY_MS));
}

/** "12 gennaio" / "January 12" in the user's language (the expiry's own day, in local time). */
export function formatDay(when, locale) {
  try {
    return new Intl.DateTimeFormat(locale, { day: "numeric", month: "long" }).format(new Date(when));
  } catch {
    return new Intl.DateTimeFormat("en", { day: "numeric", month: "long" }).format(new Date(when));
  }
}

/**
 * The notification to show for one account now, or null: within warnDays
 * of the expiry (or expired), and not shown in the last day.
 *
 * @param {object} entry the stored entry
 * @param {string} label the account's address or name
 */
export function noticeFor(entry, label, now, warnDays, locale) {
  if (!entry) {
    return null;
  }
  if (typeof entry.notifiedAt === "number" && now - entry.notifiedAt < DAY_MS && entry.notifiedAt <= now) {
    return null;
  }
  if (entry.state === "expired" || entry.state === "must_change") {
    return { title: t("expiryTitle"), message: t("expiryNoticeExpired", label) };
  }
  if (entry.state !== "expires" || !entry.expiresAt) {
    return null;
  }
  const days = daysLeft(entry.expiresAt, now);
  if (days > warnDays) {
    return null;
  }
  const day = formatDay(entry.expiresAt, locale);
  const message = days <= 0 ? t("expiryNoticeExpired", label) : days === 1 ? t("expiryNoticeOne", label, day) : t("expiryNotice", label, day, days);
  return { title: t("expiryTitle"), message };
}

/** What the popup shows under the chosen account, or "". */
export function expiryLine(entry, now, locale) {
  if (!entry) {
    return "";
  }
  if (entry.state === "expired" || entry.state === "must_change" || (entry.state === "expires" && entry.expiresAt && Date.parse(entry.expiresAt) <= now)) {
    return t("expiryLineExpired");
  }
  if (entry.state === "expires" && entry.expiresAt) {
    return t("expiryLine", formatDay(entry.expiresAt, locale), daysLeft(entry.expiresAt, now));
  }
  return "";
}

/** The account id of one of our notifications, or null. */
export function accountOfNotification(id) {
  return typeof id === "string" && id.startsWith(NOTIFICATION_PREFIX) ? id.slice(NOTIFICATION_PREFIX.length) || null : null;
}

function labelOf(account) {
  return account.identity?.email || account.incoming?.username || account.name || account.id;
}

/**
 * Asks the host about the due accounts and shows the notifications due.
 *
 * @param {object} deps {accounts: () => [...], hello: () => hello result,
 *   backends: hello => Map, request, settings, now: () => ms, failures: () =>
 *   lib/failures.js failedLogins(), locale}
 * @param {object} [options] {only: accountId, force}: after a change
 */
export function runExpiry(deps, options = {}) {
  // One run at a time: two runs reading the same state would ask twice.
  const run = queue.then(() => runOnce(deps, options));
  queue = run.catch(() => {});
  return run;
}

let queue = Promise.resolve();

async function runOnce(deps, { only = null, force = false }) {
  const s = await deps.settings();
  if (s.expiryWarnings !== true) {
    return { checked: [], notified: [] };
  }
  const [list, helloResult, failures] = await Promise.all([deps.accounts(), deps.hello(), deps.failures()]);
  const backends = deps.backends(helloResult);
  const state = await expiryState();
  const now = deps.now();
  const candidates = only ? list.filter(a => a.id === only) : list;
  const due = dueAccounts(candidates, backends, state, now, { failures, force });
  const checked = [];
  for (const account of due) {
    let password = null;
    try {
      password = await messenger.credsync.readLogin(account.incoming.origin, account.incoming.username);
    } catch {
      // as no saved password
    }
    if (typeof password !== "string" || !password) {
      continue; // nothing saved (or the login store is locked): nothing to ask with
    }
    const members = { backend: account.backend, incoming: account.incoming, password };
    try {
      const result = await deps.request("expiry", members);
      state[account.id] = entryOf(result, deps.now(), state[account.id]);
      checked.push(account.id);
    } catch (e) {
      if (e?.code === "wrong_current_password") {
        // Never again with this saved password: cleared when it changes.
        state[account.id] = { ...(state[account.id] ?? {}), checkedAt: deps.now(), refusedAt: deps.now() };
      } else {
        state[account.id] = { ...(state[account.id] ?? {}), checkedAt: deps.now() };
      }
    } finally {
      delete members.password;
    }
  }
  const notified = [];
  for (const account of list) {
    const entry = state[account.id];
    if (!dueForNotice(account, backends)) {
      continue;
    }
    const notice = noticeFor(entry, labelOf(account), deps.now(), s.expiryWarnDays, deps.locale);
    if (!notice) {
      continue;
    }
    try {
      await messenger.notifications.create(NOTIFICATION_PREFIX + account.id, {
        type: "basic",
        title: notice.title,
        message: notice.message,
        iconUrl: "icons/credsync.svg",
      });
      entry.notifiedAt = deps.now();
      notified.push(account.id);
    } catch {
      console.warn("credsync: could not show the expiry notification");
    }
  }
  await saveState(state);
  return { checked, notified };
}

function dueForNotice(account, backends) {
  return backends.get(account?.backend?.name)?.expiry === true;
}

/** Forgets the refusal of an account whose saved password changed. */
export async function clearRefused(accountIds) {
  const state = await expiryState();
  let changed = false;
  for (const id of accountIds) {
    if (state[id]?.refusedAt) {
      delete state[id].refusedAt;
      delete state[id].checkedAt;
      changed = true;
    }
  }
  if (changed) {
    await saveState(state);
  }
}

/**
 * A click on an expiry notification: remembers the account for the popup
 * and opens the popup (action.openPopup where Thunderbird has it, else the
 * popup's page in a tab with ?account=ID). Resolves with how: "popup",
 * "tab" or null (not ours).
 */
export async function openForNotification(id, remember) {
  const accountId = accountOfNotification(id);
  if (!accountId) {
    return null;
  }
  remember(accountId);
  try {
    await messenger.notifications.clear(id);
  } catch {
    // already gone
  }
  if (typeof messenger.action?.openPopup === "function") {
    try {
      await messenger.action.openPopup();
      return "popup";
    } catch {
      // no window to open it in: a tab instead
    }
  }
  await messenger.tabs.create({ url: `popup/popup.html?account=${encodeURIComponent(accountId)}` });
  return "tab";
}
