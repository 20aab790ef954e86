// The requests the host sends (PROTOCOL.md "Requests from the host"):
// `accounts` (facts), `login` (the password of the login being propagated,
// and no other), `store` (all or none). Each answers with a result or
// throws a CredsyncError; no password in any error.

import { listAccounts } from "./accounts.js";
import { CredsyncError } from "./connection.js";
import { pendingLogin } from "./propagation.js";
import { isObject } from "./settings.js";

const FINGERPRINT = /^[0-9a-f]{64}$/;

export async function answerHost(request) {
  switch (request?.type) {
    case "accounts":
      return accounts(request);
    case "login":
      return login(request);
    case "store":
      return store(request);
  }
  throw new CredsyncError("unknown_type", `unknown request type "${String(request?.type).slice(0, 64)}"`);
}

function invalid(field, message) {
  return new CredsyncError("invalid_request", message, { field });
}

async function accounts({ salt }) {
  if (salt !== undefined && (typeof salt !== "string" || !salt)) {
    throw invalid("salt", "salt must be a non-empty string");
  }
  const { accounts: list, locked } = await listAccounts(salt);
  return { accounts: list, locked: locked === true };
}

async function login({ origin, username }) {
  if (typeof origin !== "string" || typeof username !== "string") {
    throw invalid(typeof origin !== "string" ? "origin" : "username", "origin and username must be strings");
  }
  const allowed = pendingLogin();
  if (!allowed || allowed.origin.toLowerCase() !== origin.toLowerCase() || allowed.username !== username) {
    throw new CredsyncError("not_allowed", "only the login being propagated can be read");
  }
  let password = null;
  try {
    password = await messenger.credsync.readLogin(allowed.origin, allowed.username);
  } catch {
    // as no login
  }
  if (typeof password !== "string" || !password) {
    throw new CredsyncError("no_login", "no such saved login, or the login store is locked");
  }
  return { password };
}

// The host's `expect` as the Experiment's: absent "any", null "none", or the fingerprint.
function expectOf(login) {
  if (!("expect" in login)) {
    return "any";
  }
  if (login.expect === null) {
    return "none";
  }
  if (typeof login.expect !== "string" || !FINGERPRINT.test(login.expect)) {
    throw invalid("expect", "expect must be a fingerprint (64 lowercase hex digits) or null");
  }
  return login.expect;
}

async function store({ salt, logins }) {
  if (typeof salt !== "string" || !salt) {
    throw invalid("salt", "salt must be a non-empty string");
  }
  if (!Array.isArray(logins) || !logins.length) {
    throw invalid("logins", "logins must be a non-empty array");
  }
  const writes = logins.map(l => {
    if (!isObject(l) || typeof l.origin !== "string" || !l.origin || typeof l.username !== "string") {
      throw invalid("logins", "each login needs a string origin and username");
    }
    if (typeof l.password !== "string" || !l.password) {
      throw invalid("password", "password must be a non-empty string");
    }
    return { origin: l.origin, username: l.username, password: l.password, expect: expectOf(l) };
  });
  let result;
  try {
    result = await messenger.credsync.writeLogins(salt, writes);
  } catch {
    // writeLogins answers every failure of a write itself; it throws only
    // before writing (arguments, the login store not ready).
    const states = writes.map(({ origin, username }) => ({ origin, username, state: "unchanged" }));
    throw new CredsyncError("store_failed", "Thunderbird could not save the logins; nothing was written", {
      logins: states,
    });
  }
  if (result?.code) {
    throw new CredsyncError(result.code, result.message ?? result.code, { logins: result.logins ?? [] });
  }
  return { logins: result?.logins ?? [] };
}
