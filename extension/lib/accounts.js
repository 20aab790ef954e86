// The account list the popup and the options page show: the Experiment's
// facts, the host's plan (which accounts sign in with a password, which
// share a login) and the back-end and provider page of each.

import { CredsyncError, errorJSON, hello, request } from "./connection.js";
import { backendTable, chooseBackend, isArubaPec, isBackendUrl, isHttpUrl, pageOf, pageSuggestions } from "./providers.js";
import { isObject, localObject, managedObject } from "./settings.js";

const PLAN_TIMEOUT_MS = 30000;

/** The Experiment's account list {accounts, locked} (no fingerprints). */
export async function listAccounts(salt) {
  try {
    return await (salt === undefined ? messenger.credsync.listAccounts() : messenger.credsync.listAccounts(salt));
  } catch {
    throw new CredsyncError("list_failed", "Thunderbird could not list the mail accounts");
  }
}

// What backendOf needs besides the account, read once per listing.
async function choices() {
  const [helloResult, local, managed, pages, managedPages] = await Promise.all([
    hello().catch(() => null),
    localObject("backends"),
    managedObject("backends"),
    localObject("pages"),
    managedObject("pages"),
  ]);
  return { backends: backendTable(helloResult), local, managed, pages, managedPages };
}

// The back-end, guided-mode page and Aruba flag of one account.
async function describe(account, c) {
  const domain = await mailDomain(account);
  const chosen = chooseBackend(account, domain, c);
  return {
    ...chosen,
    page: pageOf(chosen.backend, c.backends, { local: c.pages[account.id], managed: domain ? c.managedPages[domain] : undefined }),
    pageSuggestions: pageSuggestions(account, domain),
    arubaPec: isArubaPec(account, chosen.backend, c.backends),
  };
}

/**
 * The IMAP/POP3 accounts for the popup and the options page: the
 * Experiment's `id, name, incoming, outgoing`; from the host's plan,
 * `passwordBased` and `siblings` (the other accounts a change of this one
 * writes too); `backend` ({name, url?} or null) and `backendSource`
 * ("local", "managed", "detected" or null); `page` ({url, source} or null)
 * and `pageSuggestions` for guided mode; `arubaPec`.
 * When the host cannot plan, every account counts as password-based (the
 * change then says what is wrong) and `planError` says why.
 *
 * @returns {Promise<object>} {accounts, planError?}
 */
export async function accounts() {
  const [{ accounts: list }, plan, c] = await Promise.all([
    listAccounts(),
    request("plan", {}, { timeoutMs: PLAN_TIMEOUT_MS }).catch(e => ({ error: errorJSON(e) })),
    choices(),
  ]);
  const planned = new Map((Array.isArray(plan.accounts) ? plan.accounts : []).filter(isObject).map(p => [p.id, p]));
  const result = await Promise.all(
    list.map(async account => {
      const p = planned.get(account.id);
      const touches = Array.isArray(p?.touches) ? p.touches : [];
      return {
        ...account,
        passwordBased: plan.error ? true : p?.passwordBased === true,
        siblings: touches.map(t => t?.id).filter(id => typeof id === "string" && id !== account.id),
        ...(await describe(account, c)),
      };
    })
  );
  return plan.error ? { accounts: result, planError: plan.error } : { accounts: result };
}

/** One account with its back-end and page (no plan): for a change and guided mode. */
export async function accountWithBackend(accountId) {
  const [{ accounts: list }, c] = await Promise.all([listAccounts(), choices()]);
  const account = list.find(a => a.id === accountId);
  if (!account) {
    throw new CredsyncError("unknown_account", `no IMAP or POP3 account "${String(accountId).slice(0, 64)}"`);
  }
  return { ...account, ...(await describe(account, c)) };
}

/** Saves the back-end of one account; an empty name removes the choice. */
export async function setBackend(accountId, name, url) {
  checkAccountId(accountId);
  if (name != null && typeof name !== "string") {
    throw new CredsyncError("invalid_request", "name must be a string", { field: "name" });
  }
  if (url != null && url !== "" && (typeof url !== "string" || !isBackendUrl(url))) {
    throw new CredsyncError("invalid_request", "url must be scheme://host… (https, ldap, ldaps, kpasswd, …)", {
      field: "url",
    });
  }
  const backends = await localObject("backends");
  if (name) {
    backends[accountId] = url ? { name, url } : { name };
  } else {
    delete backends[accountId];
  }
  await messenger.storage.local.set({ backends });
  return {};
}

/** Saves the provider's web page of one account (guided mode); an empty url removes it. */
export async function setPage(accountId, url) {
  checkAccountId(accountId);
  if (url != null && url !== "" && (typeof url !== "string" || !isHttpUrl(url))) {
    throw new CredsyncError("invalid_request", "url must be an http or https URL", { field: "url" });
  }
  const pages = await localObject("pages");
  if (url) {
    pages[accountId] = url;
  } else {
    delete pages[accountId];
  }
  await messenger.storage.local.set({ pages });
  return {};
}

function checkAccountId(accountId) {
  if (typeof accountId !== "string" || !accountId) {
    throw new CredsyncError("invalid_request", "accountId must be a non-empty string", { field: "accountId" });
  }
}

// The domain of the account's default identity, else of its user name.
async function mailDomain(account) {
  let address = account.incoming.username;
  try {
    address = (await messenger.accounts.get(account.id))?.identities?.[0]?.email || address;
  } catch {
    // keep the user name
  }
  const at = address.lastIndexOf("@");
  return at >= 0 ? address.slice(at + 1).toLowerCase() : null;
}
