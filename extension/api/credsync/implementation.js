// credsync Experiment, parent side: lists the mail accounts, writes their
// saved logins, and reports when Thunderbird saves a new password for one of
// them (onLoginSaved). Works on Thunderbird 128, 140 and 153 by feature
// detection. No password ever goes into an error message, the console or an
// event.

"use strict";

var { MailServices } = ChromeUtils.importESModule(
  "resource:///modules/MailServices.sys.mjs"
);

// authMethod values a password can verify: unset, old, cleartext, any.
const PASSWORD_AUTH = new Set([0, 2, 3, 9]);
const AUTH_NONE = 1;

// How long a password saved by Thunderbird stays available to propagate(),
// and how long a write of storeLogins waits for its notification.
const SAVED_KEEP_MS = 5 * 60 * 1000;
const OWN_WRITE_MS = 60 * 1000;

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

// ---- own writes -----------------------------------------------------------
//
// Every login storeLogins writes (and every undo) is announced here first,
// as origin + user name + SHA-256 of the password; the storage observer
// consumes the announcement when the login manager reports the write, so
// credsync never reacts to its own writes. An announcement that is never
// consumed (a failed write) is withdrawn, or expires after OWN_WRITE_MS.

const ownWrites = new Map(); // key -> [expiry, ...]

function utf8(text) {
  const bytes = [];
  for (const ch of text) {
    const c = ch.codePointAt(0);
    if (c < 0x80) {
      bytes.push(c);
    } else if (c < 0x800) {
      bytes.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    } else if (c < 0x10000) {
      bytes.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    } else {
      bytes.push(
        0xf0 | (c >> 18),
        0x80 | ((c >> 12) & 63),
        0x80 | ((c >> 6) & 63),
        0x80 | (c & 63)
      );
    }
  }
  return bytes;
}

function writeKey(origin, username, password) {
  const hash = Cc["@mozilla.org/security/hash;1"].createInstance(
    Ci.nsICryptoHash
  );
  hash.init(Ci.nsICryptoHash.SHA256);
  const bytes = utf8(password);
  hash.update(bytes, bytes.length);
  return `${origin.toLowerCase()}\n${username}\n${hash.finish(true)}`;
}

function announceWrite(key) {
  const now = Date.now();
  const list = (ownWrites.get(key) ?? []).filter(t => t > now);
  list.push(now + OWN_WRITE_MS);
  ownWrites.set(key, list);
}

// Returns true (and forgets one announcement) if the write was ours.
function consumeWrite(key) {
  const now = Date.now();
  const list = (ownWrites.get(key) ?? []).filter(t => t > now);
  const ours = list.length > 0;
  list.shift();
  if (list.length) {
    ownWrites.set(key, list);
  } else {
    ownWrites.delete(key);
  }
  return ours;
}

// Runs a login-manager write announced as ours.
async function ownWrite(origin, username, password, write) {
  const key = writeKey(origin, username, password);
  announceWrite(key);
  try {
    return await write();
  } catch (e) {
    consumeWrite(key);
    throw e;
  }
}

// Writes one login; returns how to undo it.
async function writeLogin(ep, password) {
  const origin = loginOrigin(ep.protocol, ep.host);
  const existing = await findLogin(ep);
  if (existing) {
    const oldPassword = existing.password;
    await ownWrite(origin, ep.username, password, () =>
      loginStore.modify(existing, passwordBag(password))
    );
    return {
      action: "modified",
      undo: async () =>
        ownWrite(origin, ep.username, oldPassword, async () =>
          loginStore.modify(await findLogin(ep), passwordBag(oldPassword))
        ),
    };
  }
  const login = Cc["@mozilla.org/login-manager/loginInfo;1"].createInstance(
    Ci.nsILoginInfo
  );
  login.init(origin, null, origin, ep.username, password, "", "");
  await ownWrite(origin, ep.username, password, () => loginStore.add(login));
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

// ---- passwords saved by Thunderbird -------------------------------------
//
// When Thunderbird's login store saves a new password (its prompt after
// "remember", the Saved Passwords dialog, another add-on) for the incoming
// or outgoing login of a password account, onLoginSaved fires with the
// accounts and the side, never the password. The password is kept here, for
// SAVED_KEEP_MS at most, keyed by side + host + user name (so an account
// sharing the login finds it too), until propagate() hands it out for the
// host's verification or forgetSaved() drops it.

const saved = new Map(); // savedKey -> {password, expires}
const savedListeners = new Set(); // fire objects of onLoginSaved

function savedKey(side, ep) {
  return `${side}\n${ep.host.toLowerCase()}\n${ep.username}`;
}

function takeSaved(side, ep) {
  const key = savedKey(side, ep);
  const entry = saved.get(key);
  if (entry && entry.expires <= Date.now()) {
    saved.delete(key);
    return null;
  }
  return entry ?? null;
}

// The password accounts whose incoming or outgoing login is origin/username:
// {side, accountIds, endpoint (of the first of them)}, or null. One login
// serves one side only (imap:// and mailbox:// are incoming, smtp://
// outgoing).
function accountsUsingLogin(origin, username) {
  const wanted = origin.toLowerCase();
  const side = wanted.startsWith("smtp://") ? "outgoing" : "incoming";
  const accountIds = [];
  let endpoint = null;
  for (const account of MailServices.accounts.accounts) {
    const ep = (side === "incoming" ? incomingOf(account) : outgoingOf(account))?.endpoint;
    if (
      ep &&
      PASSWORD_AUTH.has(ep.authMethod) &&
      ep.username === username &&
      loginOrigin(ep.protocol, ep.host).toLowerCase() === wanted
    ) {
      accountIds.push(account.key);
      endpoint ??= ep;
    }
  }
  return accountIds.length ? { side, accountIds, endpoint } : null;
}

// passwordmgr-storage-changed: addLogin (subject nsILoginInfo) or
// modifyLogin (subject nsIArray [old, new]).
function onStorageChanged(subject, topic, data) {
  if (data !== "addLogin" && data !== "modifyLogin") {
    return;
  }
  try {
    let before = null;
    let login;
    if (data === "modifyLogin") {
      const pair = subject.QueryInterface(Ci.nsIArray);
      before = pair.queryElementAt(0, Ci.nsILoginInfo);
      login = pair.queryElementAt(1, Ci.nsILoginInfo);
    } else {
      login = subject.QueryInterface(Ci.nsILoginInfo);
    }
    if (!login.origin || !login.password) {
      return;
    }
    if (consumeWrite(writeKey(login.origin, login.username, login.password))) {
      return; // storeLogins wrote it
    }
    if (
      before &&
      before.password === login.password &&
      before.username === login.username &&
      before.origin === login.origin
    ) {
      return; // same password: nothing to propagate
    }
    if (!savedListeners.size) {
      return;
    }
    const match = accountsUsingLogin(login.origin, login.username);
    if (!match) {
      return;
    }
    saved.set(savedKey(match.side, match.endpoint), {
      password: login.password,
      expires: Date.now() + SAVED_KEEP_MS,
    });
    const change = { accountIds: match.accountIds, side: match.side };
    for (const fire of savedListeners) {
      fire.async(change);
    }
  } catch (e) {
    console.error(`credsync: login observer: ${e.name || "error"}`);
  }
}

/**
 * What to verify so that the password Thunderbird saved for `side` also
 * serves the rest of the account: the account with every server whose saved
 * login does not hold that password yet (the other side; for an account
 * sharing the login, possibly both), and the password, for the host's sync.
 * null when nothing was saved for this account's side, the primary
 * password is locked, or every login already holds it.
 */
async function propagate(accountId, side) {
  const account = findAccount(accountId);
  const ep = account[side]?.endpoint;
  const entry = ep && takeSaved(side, ep);
  if (!entry) {
    return null;
  }
  await Services.logins.initializationPromise;
  if (!Services.logins.isLoggedIn) {
    return null; // never prompt from here
  }
  const result = { id: accountId, incoming: null, outgoing: null };
  let needed = false;
  for (const s of ["incoming", "outgoing"]) {
    const endpoint = account[s]?.endpoint;
    if (!endpoint || !PASSWORD_AUTH.has(endpoint.authMethod)) {
      continue;
    }
    const login = await findLogin(endpoint);
    if (login?.password !== entry.password) {
      result[s] = endpoint;
      needed = true;
    }
  }
  return needed ? { account: result, password: entry.password } : null;
}

// Drops the password saved for this account's side, if it is still kept.
async function forgetSaved(accountId, side) {
  const account = findAccount(accountId);
  const ep = account[side]?.endpoint;
  if (ep) {
    saved.delete(savedKey(side, ep));
  }
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

const STORAGE_TOPIC = "passwordmgr-storage-changed";

var credsync = class extends ExtensionCommon.ExtensionAPIPersistent {
  constructor(extension) {
    super(extension);
    this.observer = { observe: onStorageChanged };
    Services.obs.addObserver(this.observer, STORAGE_TOPIC);
  }

  onShutdown() {
    Services.obs.removeObserver(this.observer, STORAGE_TOPIC);
    saved.clear();
    ownWrites.clear();
    savedListeners.clear();
  }

  // A persistent event: a listener added by the background page survives
  // the event page's suspension and wakes it.
  PERSISTENT_EVENTS = {
    onLoginSaved({ fire }) {
      const listener = { async: change => fire.async(change) };
      savedListeners.add(listener);
      return {
        unregister() {
          savedListeners.delete(listener);
        },
        convert(newFire) {
          fire = newFire;
        },
      };
    },
  };

  getAPI(context) {
    return {
      credsync: {
        listAccounts: guard("list_failed", listAccounts),
        storeLogins: guard("store_failed", storeLogins),
        propagate: guard("store_failed", propagate),
        forgetSaved: guard("store_failed", forgetSaved),
        onLoginSaved: new ExtensionCommon.EventManager({
          context,
          module: "credsync",
          event: "onLoginSaved",
          extensionApi: this,
        }).api(),
      },
    };
  }
};
