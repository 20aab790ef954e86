// Guided mode: credsync cannot change the password itself (no back-end, or
// the host could not get through the provider's site), so the popup opens
// the provider's page and remembers, for when it is opened again, that the
// user went there. No password is involved.

import { accountWithBackend, setPage } from "./accounts.js";
import { CredsyncError } from "./connection.js";

// How long the popup keeps offering "type the new password here" after it
// sent the user to the provider's page (the toolbar popup closes when the
// tab opens).
const GUIDED_KEEP_MS = 60 * 60 * 1000;

/**
 * Opens the provider's page for the account (`url`, when given, is saved as
 * the account's page first) in a Thunderbird tab, or with `browser` in the
 * system's web browser, and remembers that the user went there (`reason`:
 * "change" or "aruba", what the user is to bring back).
 *
 * @returns {Promise<object>} {url, where: "tab" | "browser"}
 */
export async function openPage(accountId, { url, browser = false, reason = "change" } = {}) {
  if (url) {
    await setPage(accountId, url);
  }
  const page = (await accountWithBackend(accountId)).page?.url;
  if (!page) {
    throw new CredsyncError("invalid_request", "no page is known for this account", { field: "url" });
  }
  let where = "tab";
  try {
    if (browser) {
      await messenger.windows.openDefaultBrowser(page);
      where = "browser";
    } else {
      await messenger.tabs.create({ url: page, active: true });
    }
  } catch {
    throw new CredsyncError("open_failed", "Thunderbird could not open the page");
  }
  await setGuided({ accountId, reason: reason === "aruba" ? "aruba" : "change", at: Date.now() });
  return { url: page, where };
}

/** The account the user was last sent to the provider's page for, or null. */
export async function guided() {
  const value = await sessionGet("guided");
  if (!value || typeof value.accountId !== "string" || !(Date.now() - value.at < GUIDED_KEEP_MS)) {
    return null;
  }
  return value;
}

/** Forgets guided mode (for accountId only, when given). */
export async function clearGuided(accountId) {
  const current = await guided();
  if (current && (!accountId || current.accountId === accountId)) {
    await setGuided(null);
  }
  return {};
}

let guidedFallback = null; // without storage.session

async function setGuided(value) {
  try {
    await messenger.storage.session.set({ guided: value });
  } catch {
    guidedFallback = value;
  }
}

async function sessionGet(key) {
  try {
    return (await messenger.storage.session.get(key))[key];
  } catch {
    return guidedFallback;
  }
}
