//go:build !windows

package tbharness

import (
	"context"
	"fmt"
	"time"
)

// PopupView is what the credsync popup shows now (the parts the guided
// mode, the rules and the Aruba hint add to the form).
type PopupView struct {
	// View is "change", "sync" or "guided" (change mode without a usable
	// back-end: the provider's page is offered).
	View string `json:"view"`
	// Account is the selected account's id.
	Account string `json:"account"`
	// Backends is "ready" once the host's hello (back-ends and rules) has
	// arrived, "unknown" if it failed, "" before.
	Backends    string `json:"backends"`
	BackendText string `json:"backendText"`
	// ArubaHint is the two-step verification hint ("" when hidden).
	ArubaHint string `json:"arubaHint"`
	// GuidedIntro is the guided view's explanation ("" when hidden).
	GuidedIntro string `json:"guidedIntro"`
	// GuidedPage is "Page: <url>" when a page is known ("" when hidden).
	GuidedPage string `json:"guidedPage"`
	// GuidedURLField is true when the page's address field is shown.
	GuidedURLField bool `json:"guidedUrlField"`
	// GuidedNote is the sync view's instruction after the page was opened
	// ("" when hidden).
	GuidedNote string `json:"guidedNote"`
	// GuidedOffer is true when the status line offers guided mode.
	GuidedOffer bool `json:"guidedOffer"`
	// FailedHint says Thunderbird's login with the saved password just
	// failed ("" when hidden); FailedSync is true when its button to "I
	// already changed it" shows.
	FailedHint string `json:"failedHint"`
	FailedSync bool   `json:"failedSync"`
	// RulesHint is the back-end's rules under the new password ("" when hidden).
	RulesHint string `json:"rulesHint"`
	// SubmitVisible is true when the form's Change/Save button is shown.
	SubmitVisible bool   `json:"submitVisible"`
	Status        string `json:"status"`
	StatusKind    string `json:"statusKind"`
	// Note is the remark under the status line (auditFailed).
	Note string `json:"note"`
	// FieldErrors and FieldRules are each password field's message and the
	// names of the rules it reports (PROTOCOL.md rule names).
	FieldErrors map[string]string   `json:"fieldErrors"`
	FieldRules  map[string][]string `json:"fieldRules"`
}

const popupViewJS = `
const $ = id => document.getElementById(id);
const shown = el => !!el && !el.closest("[hidden]");
const text = id => (shown($(id)) ? $(id).textContent.trim() : "");
const fieldErrors = {}, fieldRules = {};
for (const id of ["current", "new", "repeat", "password"]) {
  const el = $(id + "-error");
  if (el && el.textContent) fieldErrors[id] = el.textContent;
  if (el && el.dataset.rules) fieldRules[id] = el.dataset.rules.split(" ");
}
return {
  view: document.documentElement.dataset.view || "",
  account: $("account").value,
  backends: document.documentElement.dataset.backends || "",
  backendText: text("backend-text"),
  arubaHint: text("aruba-hint"),
  guidedIntro: text("guided-intro"),
  guidedPage: text("guided-page-text"),
  guidedUrlField: shown($("guided-url-field")),
  guidedNote: text("guided-note"),
  guidedOffer: shown($("guided-offer")),
  failedHint: text("failed-text"),
  failedSync: shown($("failed-sync")),
  rulesHint: text("new-hint"),
  submitVisible: shown($("change")),
  status: $("status").textContent,
  statusKind: $("status").className,
  note: $("note").textContent,
  fieldErrors, fieldRules,
};`

// View returns what the popup shows now.
func (p *Popup) View(ctx context.Context) (PopupView, error) {
	var v PopupView
	err := p.Eval(ctx, popupViewJS, nil, &v)
	return v, err
}

// WaitView waits (up to timeout) until the popup shows the view ("change",
// "sync", "guided") with the host's back-ends loaded, and returns it.
func (p *Popup) WaitView(ctx context.Context, view string, timeout time.Duration) (PopupView, error) {
	var v PopupView
	deadline := time.Now().Add(timeout)
	for {
		var err error
		v, err = p.View(ctx)
		if err == nil && v.View == view && v.Backends != "" {
			return v, nil
		}
		if time.Now().After(deadline) {
			return v, fmt.Errorf("tbharness: the popup shows %+v (%v), want view %s", v, err, view)
		}
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Select selects the account in the popup as a user does.
func (p *Popup) Select(ctx context.Context, accountID string) error {
	return p.Eval(ctx, `
const [accountId] = arguments;
const select = document.getElementById("account");
if (![...select.options].some(o => o.value == accountId)) {
  throw new Error("account " + accountId + " is not in the popup's list: " + [...select.options].map(o => o.value).join(","));
}
if (select.value != accountId) {
  select.value = accountId;
  select.dispatchEvent(new Event("change", { bubbles: true }));
}`, []any{accountID}, nil)
}

// Field is a form field and the text to type into it.
type Field struct{ ID, Value string }

// Type types into the popup's fields in order, like a user (focus, value,
// input event), without submitting, and returns what the popup shows once
// the host has checked the typed password (the popup marks a pending check
// with data-checking on its root element).
func (p *Popup) Type(ctx context.Context, fields ...Field) (PopupView, error) {
	args := make([]any, 0, len(fields))
	for _, f := range fields {
		args = append(args, []string{f.ID, f.Value})
	}
	if err := p.Eval(ctx, `
for (const [id, value] of arguments) {
  const input = document.getElementById(id);
  if (!input) throw new Error("no field " + id);
  if (input.closest("[hidden]")) throw new Error("field " + id + " is hidden");
  input.focus();
  input.value = value;
  input.dispatchEvent(new Event("input", { bubbles: true }));
}`, args, nil); err != nil {
		return PopupView{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := p.WaitFor(wctx, `return !document.documentElement.dataset.checking;`, nil, 50*time.Millisecond, nil); err != nil {
		return PopupView{}, fmt.Errorf("tbharness: the popup's rules check did not finish: %w", err)
	}
	return p.View(ctx)
}

// Click clicks a button of the popup by id; it must be shown and enabled.
func (p *Popup) Click(ctx context.Context, id string) error {
	return p.Eval(ctx, `
const [id] = arguments;
const el = document.getElementById(id);
if (!el) throw new Error("no element " + id);
if (el.closest("[hidden]")) throw new Error(id + " is hidden");
if (el.disabled) throw new Error(id + " is disabled");
el.click();`, []any{id}, nil)
}

// OpenGuided selects the account and, in the guided view, types url as the
// provider's page (unless url is empty: the page the popup knows) and
// clicks "Open the provider's page"; then it waits (up to timeout) until
// the popup has switched to "I already changed it", and returns what it
// shows.
func (p *Popup) OpenGuided(ctx context.Context, accountID, url string, timeout time.Duration) (PopupView, error) {
	if err := p.Select(ctx, accountID); err != nil {
		return PopupView{}, err
	}
	v, err := p.WaitView(ctx, "guided", timeout)
	if err != nil {
		return v, err
	}
	if url != "" {
		if !v.GuidedURLField {
			if err := p.Click(ctx, "guided-edit"); err != nil {
				return v, err
			}
		}
		if _, err := p.Type(ctx, Field{"guided-url", url}); err != nil {
			return v, err
		}
	}
	if err := p.Click(ctx, "guided-open"); err != nil {
		return v, err
	}
	return p.WaitView(ctx, "sync", timeout)
}
