// credsync Experiment, parent side: lists the mail accounts and writes their
// saved logins. Works on Thunderbird 128, 140 and 153 by feature detection.
// No password ever goes into an error message or the console.

"use strict";

var { MailServices } = ChromeUtils.importESModule(
  "resource:///modules/MailServices.sys.mjs"
);

// authMethod values a password can verify: unset, old, cleartext, any.
const PASSWORD_AUTH = new Set([0, 2, 3, 9]);
const AUTH_NONE = 1;

class CodedError extends Error {
  constructor(code, message) {
    super(`${code}: ${message}`);
  }
}

/**
 * The origin (== httpRealm) under which Thunderbird looks up the saved login
 * of a server. No user, no port.
 *   IMAP: "imap://" + host, as nsMsgIncomingServer / MsgPasswordAuthModule
 *         build it (the raw host, also for IPv6).
 *   POP3: "mailbox://" + encodeURIComponent(host, IPv6 bracketed), as
 *         MsgIncomingServer._getServerURI(false).
 *   SMTP: "smtp://" + host (IPv6 bracketed), as SmtpServer._getServerURISpec().
 */
function loginOrigin(protocol, host) {
  const bracketed = host.includes(":") ? `[${host}]` : host;
  switch (protocol) {
    case "imap":
      return `imap://${host}`;
    case "pop3":
      return `mailbox://${encodeURIComponent(bracketed)}`;
    case "smtp":
      return `smtp://${bracketed}`;
  }
  throw new Error(`no login key for protocol ${protocol}`);
}

// The SHA-256 of the certificate of Thunderbird's certificate exception
// for host:port (nsICertOverride.fingerprint "AB:CD:…"), as 64 hex digits.
function certSha256(host, port) {
  try {
    const overrides = Cc["@mozilla.org/security/certoverride;1"]
      .getService(Ci.nsICertOverrideService)
      .getOverrides();
    const found = overrides.find(o => o.asciiHost === host && o.port === port);
    const hex = found?.fingerprint.replace(/:/g, "").toLowerCase();
    return /^[0-9a-f]{64}$/.test(hex) ? hex : undefined;
  } catch (e) {
    return undefined;
  }
}

function endpoint(protocol, host, port, server) {
  const result = {
    protocol,
    host,
    port,
    socketType: server.socketType,
    authMethod: server.authMethod,
    username: server.username,
  };
  const cert = certSha256(host, port);
  if (cert) {
    result.certSha256 = cert;
  }
  return result;
}

// The incoming server: nsIMsgIncomingServer (hostName up to 140, hostname
// from 153). Its port getter already returns the protocol default.
function incomingOf(account) {
  const server = account.incomingServer;
  if (!server || !["imap", "pop3"].includes(server.type)) {
    return null;
  }
  const host = server.hostname ?? server.hostName;
  return { server, endpoint: endpoint(server.type, host, server.port, server) };
}

// The outgoing server of the account's default identity, or null.
function outgoingOf(account) {
  try {
    if (!account.defaultIdentity) {
      return null;
    }
    const server = MailServices.outgoingServer.getServerByIdentity(
      account.defaultIdentity
    );
    if (!server) {
      return null;
    }
    const smtp = server.QueryInterface(Ci.nsISmtpServer);
    // Port 0 means the default, as SmtpClient picks it.
    const port = smtp.port || (server.socketType === 3 ? 465 : 587);
    return { server, endpoint: endpoint("smtp", smtp.hostname, port, server) };
  } catch (e) {
    return null;
  }
}

function findAccount(accountId) {
  const account = MailServices.accounts.getAccount(accountId);
  const incoming = account && incomingOf(account);
  if (!incoming) {
    throw new CodedError(
      "unknown_account",
      `no IMAP or POP3 account with id "${accountId}"`
    );
  }
  return { incoming, outgoing: outgoingOf(account) };
}

async function findLogin(ep) {
  const origin = loginOrigin(ep.protocol, ep.host);
  const logins = await Services.logins.searchLoginsAsync({
    origin,
    httpRealm: origin,
  });
  return logins.find(l => l.username === ep.username) ?? null;
}

// Login manager writes: async in 153, synchronous in 128/140.
const loginStore = {
  add: login => Services.logins.addLoginAsync(login),
  modify: (old, changes) =>
    Services.logins.modifyLoginAsync
      ? Services.logins.modifyLoginAsync(old, changes)
      : Services.logins.modifyLogin(old, changes),
  remove: login =>
    Services.logins.removeLoginAsync
      ? Services.logins.removeLoginAsync(login)
      : Services.logins.removeLogin(login),
};

// Removes the password from a text, in case an error message echoes it.
function scrub(text, password) {
  return String(text).split(password).join("***").slice(0, 300);
}

function passwordBag(password) {
  const bag = Cc["@mozilla.org/hash-property-bag;1"].createInstance(
    Ci.nsIWritablePropertyBag2
  );
  bag.setPropertyAsAString("password", password);
  return bag;
}

// Writes one login; returns how to undo it.
async function writeLogin(ep, password) {
  const existing = await findLogin(ep);
  if (existing) {
    await loginStore.modify(existing, passwordBag(password));
    const oldPassword = existing.password;
    return {
      action: "modified",
      undo: async () =>
        loginStore.modify(await findLogin(ep), passwordBag(oldPassword)),
    };
  }
  const origin = loginOrigin(ep.protocol, ep.host);
  const login = Cc["@mozilla.org/login-manager/loginInfo;1"].createInstance(
    Ci.nsILoginInfo
  );
  login.init(origin, null, origin, ep.username, password, "", "");
  await loginStore.add(login);
  return {
    action: "added",
    undo: async () => loginStore.remove(await findLogin(ep)),
  };
}

// The internal key token, for the primary password: nsIPKCS11Token in 153,
// nsIPK11Token from nsIPK11TokenDB in 128/140.
function internalKeyToken() {
  if ("@mozilla.org/security/internalkeytoken;1" in Cc) {
    const token = Cc["@mozilla.org/security/internalkeytoken;1"].createInstance(
      Ci.nsIPKCS11Token
    );
    return { login: () => token.login() };
  }
  const token = Cc["@mozilla.org/security/pk11tokendb;1"]
    .createInstance(Ci.nsIPK11TokenDB)
    .getInternalKeyToken();
  return { login: () => token.login(true) };
}

// Resolves when a primary-password prompt already open elsewhere closes.
function promptClosed() {
  const topics = ["passwordmgr-crypto-login", "passwordmgr-crypto-loginCanceled"];
  return new Promise(resolve => {
    const observer = () => {
      topics.forEach(t => Services.obs.removeObserver(observer, t));
      resolve();
    };
    topics.forEach(t => Services.obs.addObserver(observer, t));
  });
}

// Unlocks the primary password with Thunderbird's own prompt, if it is set
// and locked. Nothing is written before this succeeds.
async function ensureUnlocked() {
  if (!Services.logins.isLoggedIn && Services.logins.uiBusy) {
    await promptClosed();
  }
  if (!Services.logins.isLoggedIn) {
    try {
      internalKeyToken().login();
    } catch (e) {
      // Cancel throws; the check below decides.
    }
  }
  if (!Services.logins.isLoggedIn) {
    throw new CodedError(
      "store_cancelled",
      "the primary password was not entered; nothing was written"
    );
  }
}

// Makes the running Thunderbird drop cached passwords and connections so
// it uses the saved login at once. Best effort: the logins are already
// written.
function refreshServer(server, isIncoming) {
  try {
    if (isIncoming) {
      server.forgetSessionPassword(false);
    } else {
      server.password = "";
    }
    server.closeCachedConnections();
  } catch (e) {
    console.warn(`credsync: could not refresh a server: ${e.name || e}`);
  }
}

async function listAccounts() {
  await Services.logins.initializationPromise;
  const canReadLogins = Services.logins.isLoggedIn;
  const isPassword = ep => PASSWORD_AUTH.has(ep.authMethod);
  const result = [];
  for (const account of MailServices.accounts.accounts) {
    const incoming = incomingOf(account)?.endpoint;
    if (!incoming) {
      continue;
    }
    const outgoing = outgoingOf(account)?.endpoint ?? null;
    result.push({
      id: account.key,
      name: account.incomingServer.prettyName,
      incoming,
      outgoing,
      passwordBased:
        isPassword(incoming) &&
        (!outgoing || isPassword(outgoing) || outgoing.authMethod === AUTH_NONE),
      hasIncomingPassword: canReadLogins ? !!(await findLogin(incoming)) : null,
      hasOutgoingPassword: canReadLogins
        ? !!outgoing && !!(await findLogin(outgoing))
        : null,
    });
  }
  return result;
}

async function storeLogins(accountId, sides, password) {
  const account = findAccount(accountId);
  const wanted = ["incoming", "outgoing"].filter(s => sides.includes(s));
  if (wanted.includes("outgoing") && !account.outgoing) {
    throw new CodedError("store_failed", "the account has no outgoing server");
  }
  await Services.logins.initializationPromise;
  await ensureUnlocked();

  const done = [];
  try {
    for (const side of wanted) {
      done.push({ side, ...(await writeLogin(account[side].endpoint, password)) });
    }
  } catch (e) {
    const failed = wanted[done.length];
    const notRestored = [];
    for (const { side, undo } of done.reverse()) {
      try {
        await undo();
      } catch (undoError) {
        notRestored.push(side);
      }
    }
    const reason = scrub(`${e.name || "Error"}: ${e.message ?? ""}`, password);
    // NS_ERROR_ABORT: the primary-password prompt was cancelled after all.
    throw new CodedError(
      e.result === Cr.NS_ERROR_ABORT ? "store_cancelled" : "store_failed",
      `could not save the ${failed} login (${reason}); ` +
        (notRestored.length
          ? `the ${notRestored.join(" and ")} login could not be restored`
          : "nothing was changed")
    );
  }

  const result = {};
  for (const { side, action } of done) {
    result[side] = action;
    refreshServer(account[side].server, side === "incoming");
  }
  return result;
}

// Every error reaches the add-on as an ExtensionError with a stable code
// prefix; anything unexpected becomes store_failed / list_failed without
// its message (which could in theory echo data).
function guard(fallbackCode, fn) {
  return async (...args) => {
    try {
      return await fn(...args);
    } catch (e) {
      if (e instanceof CodedError) {
        throw new ExtensionUtils.ExtensionError(e.message);
      }
      console.error(`credsync: ${fallbackCode}: ${e.name || "error"}`);
      throw new ExtensionUtils.ExtensionError(
        `${fallbackCode}: unexpected ${e.name || "error"} in Thunderbird`
      );
    }
  };
}

var credsync = class extends ExtensionCommon.ExtensionAPI {
  getAPI() {
    return {
      credsync: {
        listAccounts: guard("list_failed", listAccounts),
        storeLogins: guard("store_failed", storeLogins),
      },
    };
  }
};
