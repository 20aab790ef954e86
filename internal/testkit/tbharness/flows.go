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
