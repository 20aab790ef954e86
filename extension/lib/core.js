// What the add-on does, without any listener: the background page wires
// these functions to runtime messages and events. Importing this module has
// no side effect; the native port opens with connectHost() (the background
// page calls it at startup) or on the first request.

import { CredsyncError, NativeHost } from "./host.js";
import { detectBackend, isArubaPec, isBackendUrl, isHttpUrl, pageOf, pageSuggestions } from "./providers.js";

export { CredsyncError };

export const HOST_NAME = "credsync";
export const STEPS = ["policy", "changing", "checking_incoming", "checking_outgoing", "saving"];
export const SIDES = ["incoming", "outgoing"];
const HELLO_TIMEOUT_MS = 15000;
const AUTH_NONE = 1;

const host = new NativeHost({ name: HOST_NAME, onRequest: answerHost });

/** The host's hello result: name, version, protocol, capabilities, backends. */
export function hello() {
  return host.request("hello", {}, { timeoutMs: HELLO_TIMEOUT_MS });
}

/**
 * Opens the native port now and keeps it open (reconnecting with backoff
 * when the host exits), so that the host listens on its local socket for
 * `credsync sync` (PROTOCOL.md). A hello on each connection notices a host
 * that cannot start.
 */
export function connectHost() {
  host.keepOpen({
    onOpen: () =>
      hello().catch(e => console.warn(`credsync: the native host did not answer hello (${e.code ?? "error"})`)),
  });
}

/**
 * The IMAP/POP3 accounts (Experiment listAccounts) with the back-end each
 * one uses: `backend` is {name, url} or null, `backendSource` "local"
 * (chosen in the options), "managed" (administrator default for the mail
 * domain), "detected" (implied by the server's host name, see
 * providers.detectBackend) or null; `siblings`, the ids of the other
 * password accounts sharing its login (see sharesLogin), which a change or
 * sync updates too; `page`, the provider's web page for guided mode
 * ({url, source}, see providers.pageOf) or null; `pageSuggestions`,
 * addresses to offer when the user must type it; and `arubaPec`.
 */
export async function accounts() {
  const [list, local, managed, pages, managedPages] = await Promise.all([
    messenger.credsync.listAccounts(),
    localBackends(),
    managedBackends(),
    localPages(),
    managedObject("pages"),
  ]);
  return Promise.all(
    list.map(async account => {
      const domain = await mailDomain(account);
      const chosen = backendOf(account, domain, local, managed);
      return {
        ...account,
        ...chosen,
        siblings: list.filter(other => sharesLogin(account, other)).map(other => other.id),
        page: pageOf(account, chosen.backend, {
          local: pages[account.id],
          managed: domain ? managedPages[domain] : undefined,
        }),
        pageSuggestions: pageSuggestions(account, domain),
        arubaPec: isArubaPec(account, chosen.backend),
      };
    })
  );
}

/** The account's outgoing endpoint if it signs in with a password, else null. */
function passwordOutgoing(account) {
  return account.outgoing && account.outgoing.authMethod !== AUTH_NONE ? account.outgoing : null;
}

/**
 * Whether two password accounts share one login: the same user name on the
 * same incoming host and, when both send with a password, the same user
 * name on the same outgoing host.
 */
export function sharesLogin(a, b) {
  if (a.id === b.id || !a.passwordBased || !b.passwordBased) {
    return false;
  }
  const same = (x, y) => x.username === y.username && x.host.toLowerCase() === y.host.toLowerCase();
  if (!same(a.incoming, b.incoming)) {
    return false;
  }
  const [ao, bo] = [passwordOutgoing(a), passwordOutgoing(b)];
  return !ao || !bo || same(ao, bo);
}

// PROTOCOL.md's Account.
function hostAccount(account) {
  return { id: account.id, incoming: account.incoming, outgoing: passwordOutgoing(account) };
}

function passwordAccount(list, accountId) {
  const account = list.find(a => a.id === accountId);
  if (!account) {
    throw new CredsyncError("unknown_account", `no IMAP or POP3 account "${accountId}"`);
  }
  if (!account.passwordBased) {
    throw new CredsyncError("not_password_account", "the account signs in without a password", {
      field: "account",
    });
  }
  return account;
}

/** A thrown value as {code, message, ...}, never carrying a password. */
export function errorJSON(e) {
  return e instanceof CredsyncError
    ? e.toJSON()
    : { code: "internal_error", message: "the extension failed unexpectedly" };
}

/** Saves the back-end of one account; an empty name removes the choice. */
export async function setBackend(accountId, name, url) {
  if (typeof accountId !== "string" || !accountId) {
    throw new CredsyncError("invalid_request", "accountId must be a non-empty string", { field: "accountId" });
  }
  if (name != null && typeof name !== "string") {
    throw new CredsyncError("invalid_request", "name must be a string", { field: "name" });
  }
  if (url != null && url !== "" && (typeof url !== "string" || !isBackendUrl(url))) {
    throw new CredsyncError("invalid_request", "url must be scheme://host… (https, ldap, ldaps, kpasswd, …)", {
      field: "url",
    });
  }
  const backends = await localBackends();
  if (name) {
    backends[accountId] = url ? { name, url } : { name };
  } else {
    delete backends[accountId];
  }
  await messenger.storage.local.set({ backends });
  return {};
}

/**
 * Saves the provider's web page of one account, for guided mode (the user
 * typed it once); an empty url removes it.
 */
export async function setPage(accountId, url) {
  if (typeof accountId !== "string" || !accountId) {
    throw new CredsyncError("invalid_request", "accountId must be a non-empty string", { field: "accountId" });
  }
  if (url != null && url !== "" && (typeof url !== "string" || !isHttpUrl(url))) {
    throw new CredsyncError("invalid_request", "url must be an http or https URL", { field: "url" });
  }
  const pages = await localPages();
  if (url) {
    pages[accountId] = url;
  } else {
    delete pages[accountId];
  }
  await messenger.storage.local.set({ pages });
  return {};
}

// ---- guided mode ------------------------------------------------------------

// How long the popup keeps offering "type the new password here" after it
// sent the user to the provider's page (the toolbar popup closes when the
// tab opens).
const GUIDED_KEEP_MS = 60 * 60 * 1000;

/**
 * Guided mode: opens the provider's page for the account (`url`, when given,
 * is saved as the account's page first) in a Thunderbird tab, or with
 * `browser` in the system's web browser, and remembers for the popup that
 * the user went there (`reason`: "change" or "aruba", which says what the
 * user is to bring back). No password is involved.
 *
 * @returns {Promise<object>} {url, where: "tab" | "browser"}
 */
export async function openPage(accountId, { url, browser = false, reason = "change" } = {}) {
  if (url) {
    await setPage(accountId, url);
  }
  const account = (await accounts()).find(a => a.id === accountId);
  if (!account) {
    throw new CredsyncError("unknown_account", `no IMAP or POP3 account "${accountId}"`);
  }
  const page = account.page?.url;
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
  if (!isObject(value) || typeof value.accountId !== "string" || !(Date.now() - value.at < GUIDED_KEEP_MS)) {
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
    return key === "guided" ? guidedFallback : undefined;
  }
}

/**
 * Changes the password of one account: the host changes it at the
 * provider, verifies it on both servers and asks us to store it (see
 * answerHost); then each account sharing the login (`siblings`) is synced
 * with the new password, each stored only once its own servers accept it.
 * The only code path for a change, used by the popup and by tests.
 *
 * @param {string} accountId MailAccount.id
 * @param {string} current the current password
 * @param {string} newPassword the new password
 * @param {Function} [onProgress] called with {step, state}, and with
 *   {step: "sibling", accountId, state} for each sibling
 * @returns {Promise<object>} the host's change result plus `siblings`:
 *   [{id, name, stored: true} | {id, name, stored: false, error}]
 * @throws {CredsyncError} with a PROTOCOL.md or extension error code (the
 *   siblings are then untouched)
 */
export async function changePassword(accountId, current, newPassword, onProgress) {
  const list = await accounts();
  const account = passwordAccount(list, accountId);
  if (!account.backend) {
    throw new CredsyncError("backend_not_configured", "no back-end is configured for this account");
  }
  // An SMTP server without authentication has nothing to verify or store.
  const result = await host.request(
    "change",
    { account: hostAccount(account), backend: account.backend, current, new: newPassword },
    { onProgress }
  );
  return { ...result, siblings: await syncSiblings(list, account, newPassword, onProgress) };
}

/**
 * "I already changed it": the password was changed elsewhere. The host
 * logs in once to each server of the account with it and, when all accept
 * it, asks us to store it; then each account sharing the login is synced
 * the same way. The only code path for a sync, used by the popup, by the
 * automatic propagation and by tests.
 *
 * @param {string} accountId MailAccount.id
 * @param {string} password the password now in force
 * @param {Function} [onProgress] as for changePassword
 * @param {object} [options]
 * @param {string[]} [options.sides] only these sides ("incoming",
 *   "outgoing") are verified and stored; default both
 * @param {boolean} [options.siblings] also sync the accounts sharing the
 *   login (default true)
 * @returns {Promise<object>} the host's sync result plus `siblings` (as for
 *   changePassword; empty when options.siblings is false)
 * @throws {CredsyncError}
 */
export async function syncPassword(accountId, password, onProgress, { sides = SIDES, siblings = true } = {}) {
  if (typeof password !== "string" || !password) {
    throw new CredsyncError("invalid_request", "password must be a non-empty string", { field: "password" });
  }
  const list = await accounts();
  const account = passwordAccount(list, accountId);
  const target = hostAccount(account);
  for (const side of SIDES) {
    if (!sides.includes(side)) {
      target[side] = null;
    }
  }
  if (!target.incoming && !target.outgoing) {
    throw new CredsyncError("invalid_request", "no server of the account to update", { field: "sides" });
  }
  const result = await host.request("sync", { account: target, password }, { onProgress });
  return { ...result, siblings: siblings ? await syncSiblings(list, account, password, onProgress) : [] };
}

// Syncs each account sharing the login of `account`, one after the other.
async function syncSiblings(list, account, password, onProgress) {
  const results = [];
  for (const id of account.siblings ?? []) {
    const sibling = list.find(a => a.id === id);
    if (!sibling) {
      continue;
    }
    onProgress?.({ step: "sibling", accountId: id, state: "running" });
    try {
      await host.request("sync", { account: hostAccount(sibling), password });
      results.push({ id, name: sibling.name, stored: true });
      onProgress?.({ step: "sibling", accountId: id, state: "ok" });
    } catch (e) {
      results.push({ id, name: sibling.name, stored: false, error: errorJSON(e) });
      onProgress?.({ step: "sibling", accountId: id, state: "failed" });
    }
  }
  return results;
}

// ---- automatic propagation --------------------------------------------------

/**
 * The settings: `autoPropagate` (storage.local, else the administrator's
 * storage.managed value, else true) and `managed`, the administrator's
 * value or null.
 */
export async function settings() {
  const [{ autoPropagate: local }, managed] = await Promise.all([
    messenger.storage.local.get("autoPropagate"),
    managedValue("autoPropagate"),
  ]);
  const preset = typeof managed === "boolean" ? managed : null;
  return {
    autoPropagate: typeof local === "boolean" ? local : (preset ?? true),
    managed: preset,
  };
}

/** Saves the settings the options page changes. */
export async function setSettings({ autoPropagate } = {}) {
  if (typeof autoPropagate !== "boolean") {
    throw new CredsyncError("invalid_request", "autoPropagate must be a boolean", { field: "autoPropagate" });
  }
  await messenger.storage.local.set({ autoPropagate });
  return settings();
}

/**
 * After Thunderbird saved a new password for one side of some accounts
 * (Experiment onLoginSaved): for each of them and each account sharing
 * their login, verifies the password on every server whose saved login
 * does not hold it yet (Experiment propagate) and stores it there (host
 * sync), each account only after its own servers accept it. Does nothing
 * when the setting autoPropagate is off. The kept password is then dropped.
 *
 * @param {object} change {accountIds, side} from onLoginSaved
 * @returns {Promise<object>} {enabled, side, results: [{id, name, sides,
 *   stored, error?}]}, one result per account that needed an update
 */
export async function propagateSaved({ accountIds, side }) {
  const results = [];
  try {
    if (!(await settings()).autoPropagate) {
      return { enabled: false, side, results };
    }
    const list = await accounts();
    const order = new Set();
    for (const id of accountIds) {
      order.add(id);
      for (const sibling of list.find(a => a.id === id)?.siblings ?? []) {
        order.add(sibling);
      }
    }
    for (const id of order) {
      const account = list.find(a => a.id === id);
      if (!account?.passwordBased) {
        continue;
      }
      let request;
      try {
        request = await messenger.credsync.propagate(id, side);
      } catch (e) {
        results.push({ id, name: account.name, sides: [], stored: false, error: experimentError(e) });
        continue;
      }
      if (!request) {
        continue; // every login of this account already holds it
      }
      const sides = SIDES.filter(s => request.account[s]);
      try {
        const synced = await syncPassword(id, request.password, undefined, { sides, siblings: false });
        const audit = synced.auditFailed ? { auditFailed: true } : {};
        results.push({ id, name: account.name, sides, stored: true, ...audit });
      } catch (e) {
        results.push({ id, name: account.name, sides, stored: false, error: errorJSON(e) });
      }
    }
    return { enabled: true, side, results };
  } finally {
    await Promise.allSettled(accountIds.map(id => messenger.credsync.forgetSaved(id, side)));
  }
}

function experimentError(e) {
  const [, code, message] = /^([a-z_]+): (.*)$/s.exec(e?.message ?? "") ?? [];
  return code ? { code, message } : { code: "internal_error", message: "the extension failed unexpectedly" };
}

// Requests from the host.
async function answerHost(request) {
  if (request.type === "accounts") {
    return { accounts: await hostAccounts() };
  }
  if (request.type !== "store") {
    throw new CredsyncError("unknown_type", `unknown request type "${String(request.type).slice(0, 64)}"`);
  }
  const { accountId, sides, password } = request;
  if (typeof accountId !== "string" || !accountId) {
    throw new CredsyncError("invalid_request", "accountId must be a non-empty string", { field: "accountId" });
  }
  if (
    !Array.isArray(sides) ||
    !sides.length ||
    !sides.every(s => s === "incoming" || s === "outgoing")
  ) {
    throw new CredsyncError("invalid_request", 'sides must list "incoming" and/or "outgoing"', { field: "sides" });
  }
  if (typeof password !== "string" || !password) {
    throw new CredsyncError("invalid_request", "password must be a non-empty string", { field: "password" });
  }
  try {
    return await messenger.credsync.storeLogins(accountId, sides, password);
  } catch (e) {
    const [, code, message] = /^(store_failed|store_cancelled|unknown_account): (.*)$/s.exec(e?.message ?? "") ?? [];
    throw code
      ? new CredsyncError(code, message)
      : new CredsyncError("store_failed", "Thunderbird could not save the logins");
  }
}

// The host's accounts request (a `credsync sync` from a script): PROTOCOL.md's
// Listed account, i.e. Account plus name and passwordBased.
async function hostAccounts() {
  let list;
  try {
    list = await messenger.credsync.listAccounts();
  } catch {
    throw new CredsyncError("list_failed", "Thunderbird could not list the mail accounts");
  }
  return list.map(account => ({
    ...hostAccount(account),
    name: account.name,
    passwordBased: account.passwordBased,
  }));
}

async function localBackends() {
  const { backends } = await messenger.storage.local.get("backends");
  return isObject(backends) ? backends : {};
}

// The provider pages the user typed for guided mode, by account id.
async function localPages() {
  const { pages } = await messenger.storage.local.get("pages");
  return isObject(pages) ? pages : {};
}

// Administrator defaults: storage.managed "backends", keyed by mail domain.
function managedBackends() {
  return managedObject("backends");
}

// An object of storage.managed keyed by mail domain ("backends": {name,
// url}; "pages": the provider's page for guided mode), or {}.
async function managedObject(key) {
  const value = await managedValue(key);
  return isObject(value) ? value : {};
}

async function managedValue(key) {
  try {
    return (await messenger.storage.managed.get(key))[key];
  } catch {
    return undefined; // no managed storage for this add-on
  }
}

// The account's back-end: chosen in the options, else the administrator's
// for the mail domain, else the one its servers' host names imply.
function backendOf(account, domain, local, managed) {
  const chosen = validBackend(local[account.id]);
  if (chosen) {
    return { backend: chosen, backendSource: "local" };
  }
  const fallback = domain && validBackend(managed[domain]);
  if (fallback) {
    return { backend: fallback, backendSource: "managed" };
  }
  const detected = detectBackend(account.incoming?.host) ?? detectBackend(account.outgoing?.host);
  if (detected) {
    return { backend: { name: detected }, backendSource: "detected" };
  }
  return { backend: null, backendSource: null };
}

function validBackend(value) {
  if (!isObject(value) || typeof value.name !== "string" || !value.name) {
    return null;
  }
  return typeof value.url === "string" && value.url
    ? { name: value.name, url: value.url }
    : { name: value.name };
}

// The domain of the account's default identity, else of its user name.
async function mailDomain(account) {
  let address = account.incoming.username;
  try {
    const mailAccount = await messenger.accounts.get(account.id);
    address = mailAccount?.identities?.[0]?.email || address;
  } catch {
    // keep the user name
  }
  const at = address.lastIndexOf("@");
  return at >= 0 ? address.slice(at + 1).toLowerCase() : null;
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
