//go:build !windows

package tbharness

import (
	"context"
	"fmt"
	"time"
)

// ExtensionID is the credsync MailExtension's ID.
const ExtensionID = "credsync@credsync.org"

// Popup drives the credsync extension's own change form
// (extension/popup/popup.html) loaded in a Thunderbird tab: the same page
// and code path as the toolbar popup.
type Popup struct {
	*Page
}

// OpenPopup opens moz-extension://<uuid>/popup/popup.html of the add-on
// with the given ID and waits until it has listed the accounts.
func (tb *TB) OpenPopup(ctx context.Context, addonID string) (*Popup, error) {
	u, err := tb.ExtensionURL(ctx, addonID, "popup/popup.html")
	if err != nil {
		return nil, err
	}
	page, err := tb.OpenPage(ctx, u)
	if err != nil {
		return nil, err
	}
	p := &Popup{page}
	if err := p.waitReady(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// waitReady waits until the page has filled its account list.
func (p *Popup) waitReady(ctx context.Context) error {
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return p.WaitFor(wctx, `
const select = document.getElementById("account");
return document.readyState == "complete" && select && select.options.length > 0;`, nil, 100*time.Millisecond, nil)
}

// Reload reloads the page (it reads the accounts and back-ends at load).
func (p *Popup) Reload(ctx context.Context) error {
	if err := p.Eval(ctx, `
document.getElementById("account").replaceChildren();
location.reload();`, nil, nil); err != nil {
		return err
	}
	return p.waitReady(ctx)
}

// Command sends a runtime message {cmd, ...} to the background page from
// the page, as the popup and options page do, and returns its result; an
// {ok:false} answer is an error.
func (p *Popup) Command(ctx context.Context, msg map[string]any, out any) error {
	var r struct {
		OK     bool           `json:"ok"`
		Result any            `json:"result"`
		Error  map[string]any `json:"error"`
	}
	if err := p.Eval(ctx, `return await messenger.runtime.sendMessage(arguments[0]);`, []any{msg}, &r); err != nil {
		return err
	}
	if !r.OK {
		return fmt.Errorf("tbharness: extension answered %v to %v", r.Error, msg["cmd"])
	}
	if out != nil {
		return remarshal(r.Result, out)
	}
	return nil
}

// SetBackend chooses the account's back-end through the extension's own
// setBackend message, then reloads the page so it shows it.
func (p *Popup) SetBackend(ctx context.Context, accountID, name, url string) error {
	if err := p.Command(ctx, map[string]any{"cmd": "setBackend", "accountId": accountID, "name": name, "url": url}, nil); err != nil {
		return err
	}
	return p.Reload(ctx)
}

// PopupAccount is one entry of the extension's account list.
type PopupAccount struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	PasswordBased bool   `json:"passwordBased"`
	BackendSource string `json:"backendSource"`
	Backend       *struct {
		Name string `json:"name"`
		URL  string `json:"url"`
	} `json:"backend"`
	// Siblings are the ids of the accounts sharing this account's login.
	Siblings []string `json:"siblings"`
	// Page is the provider's web page for guided mode (Source "local",
	// "managed", "backend" or "aruba"), nil when none is known.
	Page *struct {
		URL    string `json:"url"`
		Source string `json:"source"`
	} `json:"page"`
	// ArubaPec is true for an Aruba PEC mailbox (back-end or server name).
	ArubaPec bool `json:"arubaPec"`
}

// Accounts returns the extension's account list.
func (p *Popup) Accounts(ctx context.Context) ([]PopupAccount, error) {
	var r struct {
		Accounts []PopupAccount `json:"accounts"`
	}
	err := p.Command(ctx, map[string]any{"cmd": "accounts"}, &r)
	return r.Accounts, err
}

// Outcome is what the popup shows once a change has finished.
type Outcome struct {
	// Kind is the status line's class: "success" or "error".
	Kind string `json:"kind"`
	// Text is the status line.
	Text string `json:"text"`
	// Steps maps each progress step to its final state (pending, running, ok, failed).
	Steps map[string]string `json:"steps"`
	// FieldErrors are the per-field messages (current, new, repeat).
	FieldErrors map[string]string `json:"fieldErrors"`
}

// Change selects the account, types the passwords into the form like a
// user (value + input events), clicks the Change button and waits (up to
// timeout) for the page's final message.
func (p *Popup) Change(ctx context.Context, accountID, current, newPassword string, timeout time.Duration) (Outcome, error) {
	if err := p.StartChange(ctx, accountID, current, newPassword); err != nil {
		return Outcome{}, err
	}
	return p.waitOutcome(ctx, timeout)
}
