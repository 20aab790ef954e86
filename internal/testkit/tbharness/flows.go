//go:build !windows

package tbharness

import (
	"context"
	"fmt"
	"time"
)

// Sync chooses "I already changed it elsewhere" in the popup, selects the
// account, types the password once like a user (value + input events),
// clicks the button and waits (up to timeout) for the page's final message.
func (p *Popup) Sync(ctx context.Context, accountID, password string, timeout time.Duration) (Outcome, error) {
	err := p.Eval(ctx, `
const [accountId, password] = arguments;
const $ = id => document.getElementById(id);
const radio = $("mode-sync");
if (!radio) throw new Error("the popup has no \"I already changed it\" mode");
radio.click();
const select = $("account");
if (![...select.options].some(o => o.value == accountId)) {
  throw new Error("account " + accountId + " is not in the popup's list: " + [...select.options].map(o => o.value).join(","));
}
select.value = accountId;
select.dispatchEvent(new Event("change", { bubbles: true }));
const input = $("password");
if (input.closest("[hidden]")) throw new Error("the password field is hidden in sync mode");
input.focus();
input.value = password;
input.dispatchEvent(new Event("input", { bubbles: true }));
const status = $("status");
status.textContent = "";
status.className = "";
$("change").click();`, []any{accountID, password}, nil)
	if err != nil {
		return Outcome{}, err
	}
	return p.waitOutcome(ctx, timeout)
}

// waitOutcome waits for the popup's final message (as Change does).
func (p *Popup) waitOutcome(ctx context.Context, timeout time.Duration) (Outcome, error) {
	var o Outcome
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := p.WaitFor(wctx, `
const $ = id => document.getElementById(id);
const status = $("status");
if (!["success", "error"].includes(status.className)) return null;
if ($("change-form").getAttribute("aria-busy") == "true") return null;
const steps = {};
for (const li of document.querySelectorAll("#steps li")) steps[li.dataset.step] = li.className;
const fieldErrors = {};
for (const id of ["current", "new", "repeat", "password"]) {
  const el = $(id + "-error");
  if (el && el.textContent) fieldErrors[id] = el.textContent;
}
return { kind: status.className, text: status.textContent, steps, fieldErrors };`, nil, 100*time.Millisecond, &o)
	return o, err
}

// SiblingsHint returns the popup's list of the accounts sharing the selected
// account's login ("" when hidden), after selecting accountID.
func (p *Popup) SiblingsHint(ctx context.Context, accountID string) (string, error) {
	var s string
	err := p.Eval(ctx, `
const [accountId] = arguments;
const select = document.getElementById("account");
select.value = accountId;
select.dispatchEvent(new Event("change", { bubbles: true }));
const hint = document.getElementById("siblings-hint");
return hint.hidden ? "" : hint.textContent;`, []any{accountID}, &s)
	return s, err
}

// Settings are the extension's settings (background command settings).
type Settings struct {
	AutoPropagate bool  `json:"autoPropagate"`
	Managed       *bool `json:"managed"`
}

// SetAutoPropagate turns the automatic propagation on or off through the
// extension's setSettings command (as the options page does).
func (p *Popup) SetAutoPropagate(ctx context.Context, on bool) (Settings, error) {
	var s Settings
	err := p.Command(ctx, map[string]any{"cmd": "setSettings", "autoPropagate": on}, &s)
	return s, err
}

// Propagation is one automatic propagation the background ran (command
// propagations).
type Propagation struct {
	At         int64    `json:"at"`
	AccountIDs []string `json:"accountIds"`
	Side       string   `json:"side"`
	Enabled    bool     `json:"enabled"`
	Results    []struct {
		ID     string   `json:"id"`
		Name   string   `json:"name"`
		Sides  []string `json:"sides"`
		Stored bool     `json:"stored"`
		Error  *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	} `json:"results"`
	Notification *struct {
		Title   string `json:"title"`
		Message string `json:"message"`
	} `json:"notification"`
}

// Propagations returns the background's last automatic propagations.
func (p *Popup) Propagations(ctx context.Context) ([]Propagation, error) {
	var r struct {
		Propagations []Propagation `json:"propagations"`
	}
	err := p.Command(ctx, map[string]any{"cmd": "propagations"}, &r)
	return r.Propagations, err
}

// SaveLoginAsPrompt saves a password for origin/username the way
// Thunderbird's password prompt does after "remember" (MsgAsyncPrompter):
// how "add" removes the saved login first (as Thunderbird does before it
// asks for a new password) and adds the new one with addLoginAsync; how
// "modify" changes the saved login's password with modifyLoginAsync (153)
// or modifyLogin (140).
func (tb *TB) SaveLoginAsPrompt(ctx context.Context, origin, username, password, how string) error {
	if how != "add" && how != "modify" {
		return fmt.Errorf("tbharness: SaveLoginAsPrompt: how %q", how)
	}
	return tb.Chrome(ctx, `
const [origin, username, password, how] = arguments;
await loginsReady();
const existing = (await Services.logins.searchLoginsAsync({ origin, httpRealm: origin }))
  .filter(l => l.username == username);
const li = Cc["@mozilla.org/login-manager/loginInfo;1"].createInstance(Ci.nsILoginInfo);
li.init(origin, null, origin, username, password, "", "");
if (how == "modify") {
  if (existing.length != 1) throw new Error(existing.length + " saved logins for " + origin + " " + username);
  if (Services.logins.modifyLoginAsync) await Services.logins.modifyLoginAsync(existing[0], li);
  else Services.logins.modifyLogin(existing[0], li);
  return;
}
for (const l of existing) {
  if (Services.logins.removeLoginAsync) await Services.logins.removeLoginAsync(l);
  else Services.logins.removeLogin(l);
}
await Services.logins.addLoginAsync(li);`, []any{origin, username, password, how}, nil)
}

// TerminateBackground stops an add-on's background event page as its idle
// timeout would, even while a native-messaging port is open (which
// otherwise keeps it alive), and returns the background state afterwards
// ("stopped").
func (tb *TB) TerminateBackground(ctx context.Context, addonID string) (string, error) {
	var state string
	err := tb.Chrome(ctx, `
const [id] = arguments;
const ext = WebExtensionPolicy.getByID(id).extension;
await ext.terminateBackground({ disableResetIdleForTest: true });
return String(ext.backgroundState);`, []any{addonID}, &state)
	return state, err
}

// BackgroundState returns an add-on's background state ("running",
// "stopped", …).
func (tb *TB) BackgroundState(ctx context.Context, addonID string) (string, error) {
	var state string
	err := tb.Chrome(ctx, `
const [id] = arguments;
return String(WebExtensionPolicy.getByID(id).extension.backgroundState);`, []any{addonID}, &state)
	return state, err
}

// TxAccount is an account a transaction writes, with its sides.
type TxAccount struct {
	ID    string   `json:"id"`
	Name  string   `json:"name"`
	Sides []string `json:"sides"`
}

// TxLogin is a login a transaction writes and its state: "stored",
// "unchanged", "restored" or "unknown".
type TxLogin struct {
	Origin   string `json:"origin"`
	Username string `json:"username"`
	State    string `json:"state"`
}

// TxServer is a server a transaction logged in to, and its answer.
type TxServer struct {
	Side     string `json:"side"`
	Protocol string `json:"protocol"`
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Username string `json:"username"`
	Outcome  string `json:"outcome"`
}

// TxMembers say what a transaction touched (PROTOCOL.md, "The
// transaction's result"); error replies carry whichever are known.
type TxMembers struct {
	Changed  bool        `json:"changed"`
	Accounts []TxAccount `json:"accounts"`
	Logins   []TxLogin   `json:"logins"`
	Servers  []TxServer  `json:"servers"`
}

// FlowResult is the final answer of the popup's last change or sync of an
// account, as the background page keeps it and hands it to the popup:
// the host's result, or its error (code, changed, accounts, logins,
// servers).
type FlowResult struct {
	OK     bool `json:"ok"`
	Result *struct {
		Stored bool `json:"stored"`
		TxMembers
	} `json:"result"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		TxMembers
	} `json:"error"`
}

// LastResult returns the final answer of the last change or sync of
// accountID that the background page ran, as the popup got it (the
// popup's own "watch" message on a port named "credsync"). The flow must
// have finished.
func (p *Popup) LastResult(ctx context.Context, accountID string) (FlowResult, error) {
	var r FlowResult
	err := p.Eval(ctx, `
const [accountId] = arguments;
return await new Promise((resolve, reject) => {
  const port = messenger.runtime.connect({ name: "credsync" });
  const timer = setTimeout(() => { port.disconnect(); reject(new Error("no result within 10 s")); }, 10000);
  port.onMessage.addListener(m => {
    if (m?.type != "result") return;
    clearTimeout(timer);
    port.disconnect();
    resolve({ ok: !!m.ok, result: m.result ?? null, error: m.error ?? null });
  });
  port.onDisconnect.addListener(() => { clearTimeout(timer); reject(new Error("the background page closed the port")); });
  port.postMessage({ cmd: "watch", accountId });
});`, []any{accountID}, &r)
	if err != nil {
		return r, err
	}
	if r.Error != nil && r.Error.Code == "no_flow" {
		return r, fmt.Errorf("tbharness: the background page ran no change or sync of %s", accountID)
	}
	return r, nil
}
