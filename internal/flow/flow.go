// Package flow runs credsync's transactions: a password change, "I already
// changed it" and the propagation of a password Thunderbird saved. Each is
// one transaction over every login the password belongs to (transaction.go):
// check → change at the provider → log in once to each distinct server →
// one store of every login, all or none. Thunderbird's logins change only
// after the new password is verified.
package flow

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/credsync/credsync/internal/code"
	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/policy"
	"github.com/credsync/credsync/internal/verify"
)

// Account is one Thunderbird account as the extension lists it
// (PROTOCOL.md, "accounts"): facts, no decisions.
type Account struct {
	ID       string
	Name     string
	Incoming *Server
	Outgoing *Server
}

// Server is one server of an account and the login Thunderbird keeps for it.
type Server struct {
	endpoint.Endpoint
	// Origin is where the login manager keeps the server's login
	// (imap://host, mailbox://host, smtp://host).
	Origin string
	// Saved is what the login manager holds for Origin and Username.
	Saved Saved
	// Problem says why the listed server cannot be used; "" when it can.
	// Its Host and Username are still those listed, for matching.
	Problem string
}

// Saved is what the extension reported of a saved login.
type Saved struct {
	// Known is false when the login store was locked (primary password).
	Known bool
	// Exists: a login is saved; Fingerprint is its password's (fingerprint.go).
	Exists      bool
	Fingerprint string
}

// Side names one of an account's two servers.
type Side string

const (
	Incoming Side = "incoming"
	Outgoing Side = "outgoing"
)

// Login is one saved login of Thunderbird's login manager.
type Login struct {
	Origin   string
	Username string
}

// key compares logins as the login manager does: origin without case.
func (l Login) key() string { return strings.ToLower(l.Origin) + "\n" + l.Username }

// Write is one login the store request writes: its new password, and what
// the login must hold now (compare-and-swap; Known false: no comparison).
type Write struct {
	Login
	Password string
	Expect   Saved
}

// LoginState is what the store did to one login.
type LoginState string

const (
	Stored    LoginState = "stored"
	Unchanged LoginState = "unchanged"
	Restored  LoginState = "restored"
	Unknown   LoginState = "unknown"
)

// Written is one login's state after a store request.
type Written struct {
	Login
	State LoginState
}

// Thunderbird is the extension, as the transactions need it.
type Thunderbird interface {
	// Accounts lists the accounts; saved logins are fingerprinted with salt.
	Accounts(ctx context.Context, salt string) ([]Account, error)
	// ReadLogin returns the password saved for one login.
	ReadLogin(ctx context.Context, l Login) (string, error)
	// Store writes every login or none. A refusal it can name is a
	// *StoreError; any other error leaves the outcome unknown.
	Store(ctx context.Context, salt string, writes []Write) ([]Written, error)
}

// Step and State are reported through Progress as a transaction runs.
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

// Engine runs transactions; two never write the same login at once.
type Engine struct {
	Trust verify.Trust
	// Thunderbird lists the accounts and stores the logins. Nil for the
	// command line's change, which names its servers itself and ends once
	// they accepted the new password.
	Thunderbird Thunderbird
	// VerifyTimeout bounds each verification login (default 30 s).
	VerifyTimeout time.Duration
	// Policy adds the optional breach check before a change; the zero value
	// adds none and uses no network.
	Policy policy.Options
	// Audit, when set, records every transaction (audit.go).
	Audit AuditFunc
	// Recheck, when set and not Off, makes a change whose servers lag
	// behind the provider wait for them (recheck.go); nil: a change ends
	// after its first verification.
	Recheck *Recheck

	mu      sync.Mutex
	running map[string]bool
}

// Touched is an account whose logins a transaction writes.
type Touched struct {
	ID    string
	Name  string
	Sides []Side
}

// Checked is one server logged in to, and what it said.
type Checked struct {
	Side   Side
	Server endpoint.Endpoint
	Result verify.Result
}

// Result is what a transaction did.
type Result struct {
	// Changed: the provider has the new password (change only).
	Changed bool
	// Stored: every login to write holds the password.
	Stored bool
	// Updated: a propagation wrote something (it may find nothing to do).
	Updated  bool
	Accounts []Touched
	Logins   []Written
	Servers  []Checked
	// Skipped are accounts a sync named that sign in without a password.
	Skipped []Touched
	// Policy is what the policy step learnt of the new password (change).
	Policy policy.Report
	// AuditFailed: the audit record could not be written.
	AuditFailed bool
	// Waited: the change waited for servers lagging behind the provider
	// (recheck.go); nil when it did not.
	Waited *Waited
}

// Error is a transaction that ended without storing. Message is for people
// and logs and never contains a password. The Result members say what is
// known of the accounts, logins and servers.
type Error struct {
	Code    code.Code
	Message string
	// Changed: the provider has the new password (Thunderbird does not).
	Changed bool
	// Rule names the broken rule of a PolicyViolation (or of a refusal).
	Rule string
	// Sent says what of a change reached the provider (provider.Error.Sent:
	// "nothing", "current", "change"; "" when not known); Words are the
	// provider's own words about it, for the user.
	Sent  string
	Words string
	// Breaches: how often a breached new password was seen (rule breached).
	Breaches int
	Accounts []Touched
	Logins   []Written
	Servers  []Checked
	// Waited: the change waited for lagging servers (recheck.go).
	Waited *Waited
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// StoreError is the extension's refusal to store, with its code
// (StoreFailed, StoreCancelled, StoreConflict) and each login's state.
type StoreError struct {
	Code    code.Code
	Message string
	Logins  []Written
}

func (e *StoreError) Error() string { return string(e.Code) + ": " + e.Message }

// lock marks logins busy, or fails when a transaction already holds one.
func (e *Engine) lock(logins []Login) (unlock func(), err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, l := range logins {
		if e.running[l.key()] {
			return nil, &Error{Code: code.Busy, Message: "a password change for one of these logins is already running; wait for it to finish"}
		}
	}
	if e.running == nil {
		e.running = map[string]bool{}
	}
	for _, l := range logins {
		e.running[l.key()] = true
	}
	return func() {
		e.mu.Lock()
		for _, l := range logins {
			delete(e.running, l.key())
		}
		e.mu.Unlock()
	}, nil
}
