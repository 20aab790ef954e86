// The account list the popup and the options page show: the Experiment's
// facts, the host's plan (which accounts sign in with a password, which
// share a login) and the back-end and provider page of each.

import { CredsyncError, errorJSON, generation, hello, request } from "./connection.js";
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

// What describe needs besides the account, read once per listing.
async function choices() {
  const [helloResult, local, managed, pages, managedPages, identities] = await Promise.all([
    hello().catch(() => null),
    localObject("backends"),
    managedObject("backends"),
    localObject("pages"),
    managedObject("pages"),
    defaultIdentities(),
  ]);
  return { backends: backendTable(helloResult), local, managed, pages, managedPages, identities };
}

// The back-end, guided-mode page, Aruba flag and default identity of one
// account.
function describe(account, c) {
  const identity = c.identities.get(account.id) ?? { email: "", name: "" };
  const domain = mailDomain(account, identity.email);
  const chosen = chooseBackend(account, domain, c);
  return {
    identity,
    ...chosen,
    page: pageOf(chosen.backend, c.backends, { local: c.pages[account.id], managed: domain ? c.managedPages[domain] : undefined }),
    pageSuggestions: pageSuggestions(account, domain),
    arubaPec: isArubaPec(account, chosen.backend, c.backends),
  };
}

let planCache = null; // {facts, generation, promise}

/**
 * The host's plan for these accounts. The plan depends only on the facts
 * listed (the host lists them again for it), so it is asked again only when
 * they or the connection changed: a popup reopened costs no round trip to
 * the host. The host decides again in every transaction.
 */
export function planFor(list) {
  const facts = JSON.stringify(list);
  if (planCache && planCache.facts === facts && planCache.generation === generation()) {
    return planCache.promise;
  }
  const promise = request("plan", {}, { timeoutMs: PLAN_TIMEOUT_MS });
  const entry = { facts, generation: generation(), promise };
  planCache = entry;
  promise.catch(() => {
    if (planCache === entry) {
      planCache = null;
    }
  });
  return promise;
}

/**
 * The IMAP/POP3 accounts for the popup and the options page: the
 * Experiment's `id, name, incoming, outgoing`; from the host's plan,
 * `passwordBased` and `siblings` (the other accounts a change of this one
 * writes too); `backend` ({name, url?} or null) and `backendSource`
 * ("local", "managed", "detected" or null); `page` ({url, source} or null)
 * and `pageSuggestions` for guided mode; `arubaPec`; `identity`, the
 * default identity's {email, name} (the strength meter counts them as
 * guessable).
 * When the host cannot plan, every account counts as password-based (the
 * change then says what is wrong) and `planError` says why.
 *
 * @returns {Promise<object>} {accounts, planError?}
 */
export async function accounts() {
  const listing = listAccounts();
  const [{ accounts: list }, plan, c] = await Promise.all([
    listing,
    listing.then(({ accounts: l }) => planFor(l)).catch(e => ({ error: errorJSON(e) })),
    choices(),
  ]);
  const planned = new Map((Array.isArray(plan.accounts) ? plan.accounts : []).filter(isObject).map(p => [p.id, p]));
  const result = list.map(account => {
    const p = planned.get(account.id);
    const touches = Array.isArray(p?.touches) ? p.touches : [];
    return {
      ...account,
      passwordBased: plan.error ? true : p?.passwordBased === true,
      siblings: touches.map(t => t?.id).filter(id => typeof id === "string" && id !== account.id),
      ...describe(account, c),
    };
  });
  return plan.error ? { accounts: result, planError: plan.error } : { accounts: result };
}

/** One account with its back-end and page (no plan): for a change and guided mode. */
export async function accountWithBackend(accountId) {
  const [{ accounts: list }, c] = await Promise.all([listAccounts(), choices()]);
  const account = list.find(a => a.id === accountId);
  if (!account) {
    throw new CredsyncError("unknown_account", `no IMAP or POP3 account "${String(accountId).slice(0, 64)}"`);
  }
  return { ...account, ...describe(account, c) };
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

// The e-mail address and name of each account's default identity, by
// account id: one call for every account.
async function defaultIdentities() {
  const text = v => (typeof v === "string" ? v : "");
  try {
    const list = await messenger.accounts.list(false);
    return new Map(list.map(a => [a.id, { email: text(a.identities?.[0]?.email), name: text(a.identities?.[0]?.name) }]));
  } catch {
    return new Map();
  }
}

// The domain of the account's default identity, else of its user name.
function mailDomain(account, email) {
  const address = email || account.incoming.username;
  const at = address.lastIndexOf("@");
  return at >= 0 ? address.slice(at + 1).toLowerCase() : null;
}
