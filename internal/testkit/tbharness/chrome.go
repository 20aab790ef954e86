//go:build !windows

package tbharness

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// prelude is prepended to every helper script. It papers over the 140/153
// differences (notes §12): hostName/hostname, sync/async login manager,
// PK11 token contracts.
const prelude = `
const { MailServices } = ChromeUtils.importESModule("resource:///modules/MailServices.sys.mjs");
const { setTimeout, clearTimeout } = ChromeUtils.importESModule("resource://gre/modules/Timer.sys.mjs");
const hostOf = s => s.hostname ?? s.hostName;
const mainWindow = () => Services.wm.getMostRecentWindow("mail:3pane") || window;
async function loginsReady() {
  if (Services.logins.initializationPromise) await Services.logins.initializationPromise;
}
function internalToken() {
  if ("@mozilla.org/security/internalkeytoken;1" in Cc) {
    return Cc["@mozilla.org/security/internalkeytoken;1"].createInstance(Ci.nsIPKCS11Token);
  }
  return Cc["@mozilla.org/security/pk11tokendb;1"].createInstance(Ci.nsIPK11TokenDB).getInternalKeyToken();
}
function tokenLoggedIn(t) { return typeof t.isLoggedIn == "function" ? t.isLoggedIn() : t.isLoggedIn; }
function tokenHasPassword(t) {
  if (typeof t.hasPassword == "boolean") return t.hasPassword;
  return !t.needsLogin ? false : t.needsLogin();
}
`

// Chrome runs body (with the prelude, async-wrapped) in the chrome context.
func (tb *TB) Chrome(ctx context.Context, body string, args []any, out any) error {
	if err := tb.M.ExecuteScript(ctx, prelude+body, args, out); err != nil {
		return fmt.Errorf("tbharness: chrome script: %w", err)
	}
	return nil
}

// AppInfo reports Services.appinfo.
type AppInfo struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Platform string `json:"platformVersion"`
}

// AppInfo returns the running application's name and version.
func (tb *TB) AppInfo(ctx context.Context) (AppInfo, error) {
	var ai AppInfo
	err := tb.Chrome(ctx, `return { name: Services.appinfo.name, version: Services.appinfo.version,
		platformVersion: Services.appinfo.platformVersion };`, nil, &ai)
	return ai, err
}

// Socket types and auth methods (MailNewsTypes2.idl).
const (
	SocketPlain    = 0
	SocketSTARTTLS = 2
	SocketSSL      = 3

	AuthPasswordCleartext = 3
)

// ServerSpec is one server of an account.
type ServerSpec struct {
	Host       string `json:"host"`
	Port       int    `json:"port"`
	SocketType int    `json:"socketType"`
	AuthMethod int    `json:"authMethod"`
	Username   string `json:"username"`
	// Password, if not empty, is stored as Thunderbird stores it (SeedLogin)
	// before the server exists, so Thunderbird never prompts for it.
	Password string `json:"-"`
}

// AccountSpec describes an account to create.
type AccountSpec struct {
	Type     string      `json:"type"` // "imap" or "pop3"
	Incoming ServerSpec  `json:"incoming"`
	SMTP     *ServerSpec `json:"smtp,omitempty"`
	Email    string      `json:"email"`
	FullName string      `json:"fullName"`
	// Name, if set, is the account's name (the incoming server's
	// prettyName), instead of Thunderbird's default "user@host", which
	// the same mailbox as an IMAP and a POP3 account would share.
	Name string `json:"name,omitempty"`
}

// Account is a created account.
type Account struct {
	Key            string `json:"key"`       // account key, e.g. "account3" (MailAccount.id)
	ServerKey      string `json:"serverKey"` // incoming server key
	SMTPKey        string `json:"smtpKey"`   // outgoing server key ("" without SMTP)
	IncomingOrigin string `json:"incomingOrigin"`
	SMTPOrigin     string `json:"smtpOrigin"`
}

// LoginOrigin returns the origin (== httpRealm) under which Thunderbird stores
// the password of a server (notes §6.1): imap://host, mailbox://host, smtp://host.
func LoginOrigin(protocol, host string) string {
	scheme := protocol
	if protocol == "pop3" {
		scheme = "mailbox"
	}
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	} else if protocol == "pop3" {
		host = url.PathEscape(host)
	}
	return scheme + "://" + host
}

// CreateAccount creates an incoming server, an identity, an optional SMTP
// server and the account, seeding the given passwords first.
func (tb *TB) CreateAccount(ctx context.Context, spec AccountSpec) (Account, error) {
	if spec.Type != "imap" && spec.Type != "pop3" {
		return Account{}, fmt.Errorf("tbharness: account type %q", spec.Type)
	}
	if spec.Email == "" {
		spec.Email = spec.Incoming.Username + "@example.test"
	}
	if spec.FullName == "" {
		spec.FullName = spec.Incoming.Username
	}
	if spec.Incoming.Password != "" {
		if err := tb.SeedLogin(ctx, LoginOrigin(spec.Type, spec.Incoming.Host), spec.Incoming.Username, spec.Incoming.Password); err != nil {
			return Account{}, err
		}
	}
	if spec.SMTP != nil && spec.SMTP.Password != "" {
		if err := tb.SeedLogin(ctx, LoginOrigin("smtp", spec.SMTP.Host), spec.SMTP.Username, spec.SMTP.Password); err != nil {
			return Account{}, err
		}
	}
	var a Account
	err := tb.Chrome(ctx, `
const [spec] = arguments;
const i = spec.incoming;
const inServer = MailServices.accounts.createIncomingServer(i.username, i.host, spec.type);
inServer.port = i.port;
inServer.socketType = i.socketType;
inServer.authMethod = i.authMethod;
inServer.doBiff = false;
inServer.setBoolValue("login_at_startup", false);
if (spec.type == "pop3") {
  inServer.setBoolValue("leave_on_server", true);
  inServer.setBoolValue("download_on_biff", false);
}
if (spec.name) inServer.prettyName = spec.name;
inServer.valid = true;

let out = null;
if (spec.smtp) {
  out = MailServices.outgoingServer.createServer("smtp");
  const smtp = out.QueryInterface(Ci.nsISmtpServer);
  smtp.hostname = spec.smtp.host;
  smtp.port = spec.smtp.port;
  out.socketType = spec.smtp.socketType;
  out.authMethod = spec.smtp.authMethod;
  out.username = spec.smtp.username;
}
const identity = MailServices.accounts.createIdentity();
identity.fullName = spec.fullName;
identity.email = spec.email;
if (out) identity.smtpServerKey = out.key;
identity.valid = true;

const account = MailServices.accounts.createAccount();
account.addIdentity(identity);
account.incomingServer = inServer;
if (!MailServices.accounts.defaultAccount) MailServices.accounts.defaultAccount = account;
MailServices.accounts.saveAccountInfo();
const host = hostOf(inServer);
return {
  key: account.key, serverKey: inServer.key, smtpKey: out ? out.key : "",
  incomingOrigin: inServer.localStoreType + "://" + host,
  smtpOrigin: out ? "smtp://" + out.QueryInterface(Ci.nsISmtpServer).hostname : "",
};`, []any{spec}, &a)
	return a, err
}

// RemoveAccount deletes an account, its SMTP server and its logins
// (used between tests that share one Thunderbird).
func (tb *TB) RemoveAccount(ctx context.Context, a Account) error {
	return tb.Chrome(ctx, `
const [key, smtpKey] = arguments;
const account = MailServices.accounts.getAccount(key);
if (account) {
  try { account.incomingServer.closeCachedConnections(); } catch (e) {}
  MailServices.accounts.removeAccount(account, false);
}
if (smtpKey) {
  const out = MailServices.outgoingServer.getServerByKey(smtpKey);
  if (out) MailServices.outgoingServer.deleteServer(out);
}
MailServices.accounts.saveAccountInfo();`, []any{a.Key, a.SMTPKey}, nil)
}

// Login is a saved login.
type Login struct {
	Origin    string `json:"origin"`
	HTTPRealm string `json:"httpRealm"`
	FormOrig  string `json:"formActionOrigin"`
	Username  string `json:"username"`
	Password  string `json:"password"`
}

// String masks the password.
func (l Login) String() string {
	return fmt.Sprintf("%s (realm %s) user %q password %s", l.Origin, l.HTTPRealm, l.Username, Mask(l.Password))
}

// Mask shows the first character of a secret and bullets.
func Mask(s string) string {
	if s == "" {
		return `""`
	}
	r := []rune(s)
	return string(r[0]) + "•••"
}

// SeedLogin stores a login exactly as Thunderbird does (origin == httpRealm,
// no form fields), replacing an existing one for the same origin and user.
func (tb *TB) SeedLogin(ctx context.Context, origin, username, password string) error {
	return tb.Chrome(ctx, `
const [origin, username, password] = arguments;
await loginsReady();
const li = Cc["@mozilla.org/login-manager/loginInfo;1"].createInstance(Ci.nsILoginInfo);
li.init(origin, null, origin, username, password, "", "");
const existing = (await Services.logins.searchLoginsAsync({ origin, httpRealm: origin }))
  .filter(l => l.username == username);
for (const l of existing) {
  if (Services.logins.removeLoginAsync) await Services.logins.removeLoginAsync(l);
  else Services.logins.removeLogin(l);
}
await Services.logins.addLoginAsync(li);`, []any{origin, username, password}, nil)
}

// Logins returns every saved login (decrypting them: with a locked primary
// password this prompts).
func (tb *TB) Logins(ctx context.Context) ([]Login, error) {
	var ls []Login
	err := tb.Chrome(ctx, `
await loginsReady();
return (await Services.logins.getAllLogins()).map(l => ({
  origin: l.origin, httpRealm: l.httpRealm, formActionOrigin: l.formActionOrigin || "",
  username: l.username, password: l.password }));`, nil, &ls)
	return ls, err
}

// LoginFor returns the saved login for origin and username, if any.
func (tb *TB) LoginFor(ctx context.Context, origin, username string) (Login, bool, error) {
	ls, err := tb.Logins(ctx)
	if err != nil {
		return Login{}, false, err
	}
	for _, l := range ls {
		if l.Origin == origin && l.HTTPRealm == origin && l.Username == username {
			return l, true, nil
		}
	}
	return Login{}, false, nil
}

// ImportCA adds the PEM certificate(s) to Thunderbird's certificate database,
// trusted to identify servers ("C,,"), so Thunderbird accepts servers whose
// chain ends there. It returns the SHA-256 fingerprints.
func (tb *TB) ImportCA(ctx context.Context, pemBytes []byte) ([]string, error) {
	var b64 []string
	for rest := pemBytes; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type == "CERTIFICATE" {
			b64 = append(b64, base64.StdEncoding.EncodeToString(blk.Bytes))
		}
	}
	if len(b64) == 0 {
		return nil, errors.New("tbharness: ImportCA: no CERTIFICATE block")
	}
	var fps []string
	err := tb.Chrome(ctx, `
const [certs] = arguments;
const db = Cc["@mozilla.org/security/x509certdb;1"].getService(Ci.nsIX509CertDB);
return certs.map(b => db.addCertFromBase64(b, "C,,").sha256Fingerprint);`, []any{b64}, &fps)
	return fps, err
}

// PrimaryState describes the primary password (the internal key token).
type PrimaryState struct {
	HasPassword bool `json:"hasPassword"`
	LoggedIn    bool `json:"loggedIn"`
	// ServicesLoggedIn is Services.logins.isLoggedIn (false = set but locked).
	ServicesLoggedIn bool `json:"servicesLoggedIn"`
}

// PrimaryPassword reports the primary password's state.
func (tb *TB) PrimaryPassword(ctx context.Context) (PrimaryState, error) {
	var st PrimaryState
	err := tb.Chrome(ctx, `
const t = internalToken();
return { hasPassword: tokenHasPassword(t), loggedIn: tokenLoggedIn(t), servicesLoggedIn: Services.logins.isLoggedIn };`, nil, &st)
	return st, err
}

// SetPrimaryPassword sets the primary password (none must be set). The token
// stays unlocked.
func (tb *TB) SetPrimaryPassword(ctx context.Context, pw string) error {
	return tb.Chrome(ctx, `
const [pw] = arguments;
const t = internalToken();
if (t.needsUserInit === true && t.initPassword) t.initPassword(pw); else t.changePassword("", pw);
if (!tokenHasPassword(t)) throw new Error("primary password not set");`, []any{pw}, nil)
}

// RemovePrimaryPassword removes the primary password pw (back to none).
func (tb *TB) RemovePrimaryPassword(ctx context.Context, pw string) error {
	return tb.Chrome(ctx, `
const [pw] = arguments;
const t = internalToken();
t.changePassword(pw, "");
if (tokenHasPassword(t)) throw new Error("primary password still set");`, []any{pw}, nil)
}

// LockPrimaryPassword logs the internal token out ("set but locked").
func (tb *TB) LockPrimaryPassword(ctx context.Context) error {
	return tb.Chrome(ctx, `
const t = internalToken();
if (t.logoutSimple) t.logoutSimple(); else t.logout();
if (tokenLoggedIn(t) || Services.logins.isLoggedIn) throw new Error("token still logged in");`, nil, nil)
}

// UnlockPrimaryPassword logs the internal token in with pw, without UI.
func (tb *TB) UnlockPrimaryPassword(ctx context.Context, pw string) error {
	return tb.Chrome(ctx, `
const [pw] = arguments;
const t = internalToken();
if (t.checkPassword) {
  // 140: nsIPK11Token.checkPassword logs in when the password is right.
  if (!t.checkPassword(pw)) throw new Error("wrong primary password");
} else {
  // 153: nsIPKCS11Token has no checkPassword; changing the password to itself
  // authenticates (throws when wrong) and leaves the token logged in.
  try { t.changePassword(pw, pw); } catch (e) { throw new Error("wrong primary password: " + e); }
}
if (!tokenLoggedIn(t) || !Services.logins.isLoggedIn) throw new Error("token not logged in after checkPassword");`, []any{pw}, nil)
}

// InstallAddon installs the add-on at path (directory or .xpi) temporarily and
// returns its ID.
func (tb *TB) InstallAddon(ctx context.Context, path string) (string, error) {
	return tb.M.InstallAddon(ctx, path, true)
}

// UninstallAddon removes an add-on.
func (tb *TB) UninstallAddon(ctx context.Context, id string) error {
	return tb.M.UninstallAddon(ctx, id)
}

// AddonState reports an installed add-on.
type AddonState struct {
	Found     bool   `json:"found"`
	Active    bool   `json:"active"`
	Temporary bool   `json:"temporary"`
	Version   string `json:"version"`
	Host      string `json:"host"` // moz-extension host name (UUID)
}

// Addon returns the state of the add-on with the given ID.
func (tb *TB) Addon(ctx context.Context, id string) (AddonState, error) {
	var st AddonState
	err := tb.Chrome(ctx, `
const [id] = arguments;
const { AddonManager } = ChromeUtils.importESModule("resource://gre/modules/AddonManager.sys.mjs");
const a = await AddonManager.getAddonByID(id);
if (!a) return { found: false };
const p = WebExtensionPolicy.getByID(id);
return { found: true, active: a.isActive, temporary: !!a.temporarilyInstalled, version: a.version,
         host: p ? p.mozExtensionHostname : "" };`, []any{id}, &st)
	return st, err
}

// ExtensionURL returns moz-extension://<uuid>/<path> for an installed add-on,
// waiting until its policy is registered.
func (tb *TB) ExtensionURL(ctx context.Context, id, path string) (string, error) {
	var u string
	err := tb.Chrome(ctx, `
const [id, path] = arguments;
for (let i = 0; i < 200; i++) {
  const p = WebExtensionPolicy.getByID(id);
  if (p) return p.getURL(path);
  await new Promise(r => setTimeout(r, 50));
}
throw new Error("no WebExtensionPolicy for " + id);`, []any{id, path}, &u)
	return u, err
}

// LogonResult is the outcome of a Thunderbird-initiated login.
type LogonResult struct {
	// Code is the nsresult passed to OnStopRunningUrl (0 = success), or -1 when
	// the listener was not called in time.
	Code     int64 `json:"code"`
	TimedOut bool  `json:"timedOut"`
}

// VerifyIncoming makes Thunderbird log in to the account's incoming server
// (verifyLogon after dropping cached connections) and waits for the result.
func (tb *TB) VerifyIncoming(ctx context.Context, accountKey string, timeout time.Duration) (LogonResult, error) {
	var r LogonResult
	err := tb.Chrome(ctx, `
const [key, timeoutMs] = arguments;
const server = MailServices.accounts.getAccount(key).incomingServer;
try { server.closeCachedConnections(); } catch (e) {}
const w = mainWindow();
return await new Promise(resolve => {
  const timer = setTimeout(() => resolve({ code: -1, timedOut: true }), timeoutMs);
  server.verifyLogon({
    QueryInterface: ChromeUtils.generateQI(["nsIUrlListener"]),
    OnStartRunningUrl() {},
    OnStopRunningUrl(url, code) { clearTimeout(timer); resolve({ code, timedOut: false }); },
  }, w.msgWindow || null);
});`, []any{accountKey, timeout.Milliseconds()}, &r)
	return r, err
}

// CheckMail makes Thunderbird check the account's inbox for new mail as its
// background check (biff) does, after dropping cached connections: a login
// with the saved password, and Thunderbird's own question when the server
// refuses it (the prompt watcher records and cancels it). Fire and forget:
// poll the server or Prompts for the outcome.
func (tb *TB) CheckMail(ctx context.Context, accountKey string) error {
	return tb.Chrome(ctx, `
const [key] = arguments;
const server = MailServices.accounts.getAccount(key).incomingServer;
try { server.closeCachedConnections(); } catch (e) {}
const inbox = server.rootFolder.getFolderWithFlags(Ci.nsMsgFolderFlags.Inbox);
// After this script's answer: Marionette fails a script during which a dialog opens.
setTimeout(() => server.getNewMessages(inbox, mainWindow().msgWindow || null, null), 0);`, []any{accountKey}, nil)
}

// TriggerSMTPLogon makes Thunderbird log in to the account's SMTP server
// (verifyLogon, fire and forget: in 153 its listener never reports success,
// notes §9). Poll the server for the outcome.
func (tb *TB) TriggerSMTPLogon(ctx context.Context, smtpKey string) error {
	return tb.Chrome(ctx, `
const [key] = arguments;
const out = MailServices.outgoingServer.getServerByKey(key);
if (!out) throw new Error("no outgoing server " + key);
try { out.closeCachedConnections(); } catch (e) {}
const w = mainWindow();
out.verifyLogon({
  QueryInterface: ChromeUtils.generateQI(["nsIUrlListener"]),
  OnStartRunningUrl() {},
  OnStopRunningUrl(url, code) {},
}, w.msgWindow || null);`, []any{smtpKey}, nil)
}

// Prompt is a dialog Thunderbird opened (a password prompt, an auth-failure
// question, the primary-password prompt, …).
type Prompt struct {
	Topic string `json:"topic"`
	URL   string `json:"url"`
	Title string `json:"title"`
	Text  string `json:"text"`
	// Cancelled is true when the watcher dismissed it (so a login does not hang).
	Cancelled bool `json:"cancelled"`
}

// promptStateJS finds the watcher's state: the observer registered for
// "common-dialog-loaded" exposes itself through wrappedJSObject, which keeps
// the state independent of any window.
const promptStateJS = `
function promptWatcher() {
  for (const o of Services.obs.enumerateObservers("common-dialog-loaded")) {
    const w = o.wrappedJSObject;
    if (w && w.credsyncPromptWatcher) return w;
  }
  return null;
}
`

// watchPromptsJS installs (once per Thunderbird) observers that record every
// common dialog (Services.prompt/nsIPrompt windows and sub-dialogs, tab-modal
// prompts, the primary-password prompt) and every other new dialog window,
// and cancels common dialogs so a login waiting on one fails instead of
// hanging.
const watchPromptsJS = promptStateJS + `
if (promptWatcher()) return promptWatcher().seen.length;
const seen = [];
function describe(win, topic) {
  const rec = { topic, url: "", title: "", text: "", cancelled: false };
  try {
    const doc = win.document;
    rec.url = String(doc.documentURI || "");
    rec.title = String(doc.title || "");
    const body = doc.getElementById("infoBody") || doc.getElementById("infoTitle");
    rec.text = body ? String(body.textContent || "") : "";
  } catch (e) { rec.text = "(unreadable: " + e + ")"; }
  return rec;
}
const watcher = {
  credsyncPromptWatcher: true,
  seen,
  autoCancel: true,
  QueryInterface: ChromeUtils.generateQI(["nsIObserver"]),
  observe(subject, topic) {
    const win = subject && subject.document ? subject : (subject && subject.ownerGlobal) || subject;
    const rec = describe(win, topic);
    seen.push(rec);
    dump("credsync-harness: prompt " + topic + " " + rec.url + " " + JSON.stringify(rec.title) + "\n");
    if (!this.autoCancel) return;
    setTimeout(() => {
      try {
        const d = win.document.getElementById("commonDialog") || win.document.querySelector("dialog");
        if (d && d.cancelDialog) d.cancelDialog(); else win.close();
        rec.cancelled = true;
      } catch (e) {
        try { win.close(); rec.cancelled = true; } catch (e2) {}
      }
    }, 0);
  },
};
watcher.wrappedJSObject = watcher;
Services.obs.addObserver(watcher, "common-dialog-loaded");
Services.obs.addObserver(watcher, "tabmodal-dialog-loaded");
// Top-level dialog windows that do not go through commonDialog.
Services.ww.registerNotification({
  observe(win, topic) {
    if (topic != "domwindowopened") return;
    win.addEventListener("load", () => {
      const url = String(win.document.documentURI || "");
      const type = win.document.documentElement.getAttribute("windowtype") || "";
      if (/commonDialog/.test(url)) return; // recorded via common-dialog-loaded
      if (/prompt|password|dialog/i.test(url + " " + type)) {
        const rec = describe(win, "domwindowopened");
        rec.title = rec.title || type;
        seen.push(rec);
        dump("credsync-harness: dialog window " + url + "\n");
      }
    }, { once: true });
  },
});
return 0;`

// WatchPrompts installs the prompt watcher (Launch does this).
func (tb *TB) WatchPrompts(ctx context.Context) error {
	return tb.Chrome(ctx, watchPromptsJS, nil, nil)
}

// Prompts returns every prompt recorded since Launch (or since ClearPrompts).
func (tb *TB) Prompts(ctx context.Context) ([]Prompt, error) {
	var ps []Prompt
	err := tb.Chrome(ctx, promptStateJS+`
const w = promptWatcher();
if (!w) throw new Error("prompt watcher not installed");
return w.seen.map(p => Object.assign({}, p));`, nil, &ps)
	return ps, err
}

// ClearPrompts forgets the recorded prompts.
func (tb *TB) ClearPrompts(ctx context.Context) error {
	return tb.Chrome(ctx, promptStateJS+`
const w = promptWatcher();
if (w) w.seen.length = 0;`, nil, nil)
}
