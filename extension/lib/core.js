// What the add-on does, without any listener: the background page wires
// these functions to runtime messages. Importing this module has no side
// effect; the native port opens on the first request.

import { CredsyncError, NativeHost } from "./host.js";

export { CredsyncError };

export const HOST_NAME = "credsync";
export const STEPS = ["policy", "changing", "checking_incoming", "checking_outgoing", "saving"];
const HELLO_TIMEOUT_MS = 15000;
const AUTH_NONE = 1;

const host = new NativeHost({ name: HOST_NAME, onRequest: answerHost });

/** The host's hello result: name, version, protocol, capabilities, backends. */
export function hello() {
  return host.request("hello", {}, { timeoutMs: HELLO_TIMEOUT_MS });
}

/**
 * The IMAP/POP3 accounts (Experiment listAccounts) with the back-end each
 * one uses: `backend` is {name, url} or null, `backendSource` "local"
 * (chosen in the options), "managed" (administrator default for the mail
 * domain) or null.
 */
export async function accounts() {
  const [list, local, managed] = await Promise.all([
    messenger.credsync.listAccounts(),
    localBackends(),
    managedBackends(),
  ]);
  return Promise.all(
    list.map(async account => ({
      ...account,
      ...(await backendOf(account, local, managed)),
    }))
  );
}

/** Saves the back-end of one account; an empty name removes the choice. */
export async function setBackend(accountId, name, url) {
  if (typeof accountId !== "string" || !accountId) {
    throw new CredsyncError("invalid_request", "accountId must be a non-empty string", { field: "accountId" });
  }
  if (name != null && typeof name !== "string") {
    throw new CredsyncError("invalid_request", "name must be a string", { field: "name" });
  }
  if (url != null && url !== "" && !isHttpUrl(url)) {
    throw new CredsyncError("invalid_request", "url must be an http or https URL", { field: "url" });
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
 * Changes the password of one account: the host changes it at the
 * provider, verifies it on both servers and asks us to store it (see
 * answerHost). The only code path for a change, used by the popup and by
 * tests.
 *
 * @param {string} accountId MailAccount.id
 * @param {string} current the current password
 * @param {string} newPassword the new password
 * @param {Function} [onProgress] called with {step, state}
 * @returns {Promise<object>} the host's change result
 * @throws {CredsyncError} with a PROTOCOL.md or extension error code
 */
export async function changePassword(accountId, current, newPassword, onProgress) {
  const list = await accounts();
  const account = list.find(a => a.id === accountId);
  if (!account) {
    throw new CredsyncError("unknown_account", `no IMAP or POP3 account "${accountId}"`);
  }
  if (!account.passwordBased) {
    throw new CredsyncError("not_password_account", "the account signs in without a password", {
      field: "account",
    });
  }
  if (!account.backend) {
    throw new CredsyncError("backend_not_configured", "no back-end is configured for this account");
  }
  // An SMTP server without authentication has nothing to verify or store.
  const outgoing =
    account.outgoing && account.outgoing.authMethod !== AUTH_NONE ? account.outgoing : null;
  return host.request(
    "change",
    {
      account: { id: account.id, incoming: account.incoming, outgoing },
      backend: account.backend,
      current,
      new: newPassword,
    },
    { onProgress }
  );
}

// Requests from the host.
async function answerHost(request) {
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

async function localBackends() {
  const { backends } = await messenger.storage.local.get("backends");
  return isObject(backends) ? backends : {};
}

// Administrator defaults: storage.managed "backends", keyed by mail domain.
async function managedBackends() {
  try {
    const { backends } = await messenger.storage.managed.get("backends");
    return isObject(backends) ? backends : {};
  } catch {
    return {}; // no managed storage for this add-on
  }
}

async function backendOf(account, local, managed) {
  const chosen = validBackend(local[account.id]);
  if (chosen) {
    return { backend: chosen, backendSource: "local" };
  }
  if (Object.keys(managed).length) {
    const domain = await mailDomain(account);
    const fallback = domain && validBackend(managed[domain]);
    if (fallback) {
      return { backend: fallback, backendSource: "managed" };
    }
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

function isHttpUrl(value) {
  try {
    return ["http:", "https:"].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}
