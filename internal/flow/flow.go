// Package flow runs credsync's transactions: check the new password, change
// it at the provider, verify it on both servers, then have Thunderbird store
// it. Thunderbird's logins change only after the new password is verified.
package flow

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/policy"
	"github.com/credsync/credsync/internal/verify"
)

// Account is one Thunderbird account as the extension reports it.
type Account struct {
	ID       string
	Incoming *endpoint.Endpoint
	Outgoing *endpoint.Endpoint
}

// Side names one of an account's two logins.
type Side string

const (
	Incoming Side = "incoming"
	Outgoing Side = "outgoing"
)

// Step and State are reported through Progress as a flow runs.
type (
	Step  string
	State string
)

const (
	StepPolicy           Step = "policy"
	StepChanging         Step = "changing"
	StepCheckingIncoming Step = "checking_incoming"
	StepCheckingOutgoing Step = "checking_outgoing"
	StepSaving           Step = "saving"

	Running State = "running"
	OK      State = "ok"
	Failed  State = "failed"
)

// Progress receives each step's state changes. It must not block for long.
type Progress func(Step, State)

// Storer writes the verified password into Thunderbird's saved logins for
// the given sides of an account: all of them or none. A failure it can name
// is a *StoreError.
type Storer interface {
	Store(ctx context.Context, accountID string, sides []Side, password string) error
}

// Engine runs flows, one at a time per account.
type Engine struct {
	Trust verify.Trust
	// Store writes verified passwords into Thunderbird. It may be nil (the
	// command line has no Thunderbird): Change then ends once both servers
	// accepted the new password, with Changed true, Stored false and no
	// error; Sync, which exists only to store, fails with StoreFailed.
	Store Storer
	// VerifyTimeout bounds each verification login (default 30 s).
	VerifyTimeout time.Duration
	// Policy adds the optional breach check before a change; the zero value
	// adds none and uses no network.
	Policy policy.Options
	// Audit, when set, records every flow (audit.go).
	Audit AuditFunc

	mu      sync.Mutex
	running map[string]bool
}

// Result is a completed flow.
type Result struct {
	Changed  bool
	Stored   bool
	Incoming *verify.Result
	Outgoing *verify.Result
	// Policy is what the policy step learnt of the new password (Change only).
	Policy policy.Report
	// AuditFailed: the flow's audit record could not be written. Also set
	// when the flow returns an error.
	AuditFailed bool
}

// lock marks accountID busy, or fails when a flow for it already runs.
func (e *Engine) lock(accountID string) (unlock func(), err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.running[accountID] {
		return nil, &Error{Code: Busy, Message: "a password flow for this account is already running; wait for it to finish"}
	}
	if e.running == nil {
		e.running = map[string]bool{}
	}
	e.running[accountID] = true
	return func() {
		e.mu.Lock()
		delete(e.running, accountID)
		e.mu.Unlock()
	}, nil
}

// verifyBoth logs in once to each server of the account, in parallel,
// reporting each side's progress.
func (e *Engine) verifyBoth(ctx context.Context, acct Account, password string, progress Progress) (in, out *verify.Result) {
	timeout := e.VerifyTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var wg sync.WaitGroup
	run := func(ep *endpoint.Endpoint, step Step, dst **verify.Result) {
		if ep == nil {
			return
		}
		progress(step, Running)
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := verify.Login(ctx, *ep, password, e.Trust)
			*dst = &r
			if r.Outcome == verify.OK {
				progress(step, OK)
			} else {
				progress(step, Failed)
			}
		}()
	}
	run(acct.Incoming, StepCheckingIncoming, &in)
	run(acct.Outgoing, StepCheckingOutgoing, &out)
	wg.Wait()
	return in, out
}

func allOK(results ...*verify.Result) bool {
	for _, r := range results {
		if r != nil && r.Outcome != verify.OK {
			return false
		}
	}
	return true
}

// store asks Thunderbird to save the verified password for every side the
// account has.
func (e *Engine) store(ctx context.Context, acct Account, password string, progress Progress) *Error {
	var sides []Side
	if acct.Incoming != nil {
		sides = append(sides, Incoming)
	}
	if acct.Outgoing != nil {
		sides = append(sides, Outgoing)
	}
	if e.Store == nil {
		return &Error{Code: StoreFailed, Message: "this credsync has no Thunderbird to store the password in"}
	}
	progress(StepSaving, Running)
	if err := e.Store.Store(ctx, acct.ID, sides, password); err != nil {
		progress(StepSaving, Failed)
		if se, ok := err.(*StoreError); ok {
			return &Error{Code: se.Code, Message: se.Message}
		}
		return &Error{Code: StoreUnconfirmed, Message: fmt.Sprintf("Thunderbird did not confirm the new logins (%v); they hold either the old or the new password: run \"I already changed it\" with the new password", err)}
	}
	progress(StepSaving, OK)
	return nil
}
