//go:build !windows

package tbharness

import (
	"context"
	"time"
)

// StartChange fills the popup's form and clicks Change like Change does,
// without waiting for the outcome (WaitOutcome): a test can look at the
// change while it runs, e.g. while it waits for lagging servers.
func (p *Popup) StartChange(ctx context.Context, accountID, current, newPassword string) error {
	return p.Eval(ctx, `
const [accountId, current, next] = arguments;
const $ = id => document.getElementById(id);
const select = $("account");
if (![...select.options].some(o => o.value == accountId)) {
  throw new Error("account " + accountId + " is not in the popup's list: " + [...select.options].map(o => o.value).join(","));
}
select.value = accountId;
select.dispatchEvent(new Event("change", { bubbles: true }));
for (const [id, value] of [["current", current], ["new", next], ["repeat", next]]) {
  const input = $(id);
  input.focus();
  input.value = value;
  input.dispatchEvent(new Event("input", { bubbles: true }));
}
const status = $("status");
status.textContent = "";
status.className = "";
$("change").click();`, []any{accountID, current, newPassword}, nil)
}

// WaitOutcome waits (up to timeout) for the popup's final message.
func (p *Popup) WaitOutcome(ctx context.Context, timeout time.Duration) (Outcome, error) {
	return p.waitOutcome(ctx, timeout)
}

// Waiting is what the background says of a change waiting for servers
// that lag behind the provider (its status's "waiting").
type Waiting struct {
	NextCheck    string `json:"nextCheck"`
	Checks       int    `json:"checks"`
	FailedLogins int    `json:"failedLogins"`
	Budget       int    `json:"budget"`
}

// WaitWaiting polls the background's status until the account's change
// waits for its servers, and returns the wait.
func (p *Popup) WaitWaiting(ctx context.Context, accountID string, timeout time.Duration) (Waiting, error) {
	var w Waiting
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := p.WaitFor(wctx, `
const r = await messenger.runtime.sendMessage({ cmd: "status" });
const flow = (r?.result?.flows ?? []).find(f => f.accountId == arguments[0] && !f.done);
return flow?.waiting ?? null;`, []any{accountID}, 100*time.Millisecond, &w)
	return w, err
}

// PausedChecks returns the accounts whose background checks the
// extension's Experiment has paused now.
func (p *Popup) PausedChecks(ctx context.Context) ([]string, error) {
	var ids []string
	err := p.Eval(ctx, `return await messenger.credsync.pausedChecks();`, nil, &ids)
	return ids, err
}

// WaitingLine is what the popup shows while the host waits for the servers.
type WaitingLine struct {
	Text   string `json:"text"`
	Cancel bool   `json:"cancel"` // the Cancel button can be clicked
}

// WaitWaitingLine waits until the popup's page shows its waiting line.
func (p *Popup) WaitWaitingLine(ctx context.Context, timeout time.Duration) (WaitingLine, error) {
	var w WaitingLine
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := p.WaitFor(wctx, `
const w = document.getElementById("waiting");
if (!w || w.hidden) return null;
return { text: document.getElementById("waiting-text").textContent, cancel: !document.getElementById("waiting-cancel").disabled };`,
		nil, 100*time.Millisecond, &w)
	return w, err
}
