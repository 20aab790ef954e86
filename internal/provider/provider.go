// Package provider changes a mail password where the mailbox lives. Each
// back-end is one file and one line in the registry (registry.go).
package provider

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/policy"
)

// Request is what a back-end gets to change one password.
type Request struct {
	// Username is the login name, as the incoming server knows it.
	Username string
	Current  string
	New      string
	// URL overrides the back-end's endpoint (a Roundcube address, a test
	// server); empty means the back-end's default or one derived from Incoming.
	URL string
	// Incoming is the account's incoming server, for back-ends that derive
	// their address from it.
	Incoming endpoint.Endpoint
	// Roots verifies the back-end's TLS certificate; nil means system roots.
	Roots *x509.CertPool
}

// Info describes a back-end to the extension and the CLI.
type Info struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// NeedsURL: the back-end cannot work without Request.URL.
	NeedsURL bool `json:"needsUrl"`
	// NeedsCurrent: the provider checks the current password.
	NeedsCurrent bool `json:"needsCurrent"`
	// Rules are the provider's published password rules, checked before
	// anything is sent; nil when the provider's rules are not known (the
	// server decides).
	Rules *policy.Rules `json:"rules,omitempty"`
}

// Backend changes passwords at one kind of provider.
type Backend interface {
	Info() Info
	// Change changes the password once. It never retries a request that
	// may have reached the provider.
	Change(ctx context.Context, req Request) error
}

// Kind says what went wrong, in terms the flow can act on.
type Kind string

const (
	// WrongCurrent: the provider rejected the current password; nothing changed.
	WrongCurrent Kind = "wrong_current_password"
	// Rejected: the provider refused the new password; nothing changed.
	Rejected Kind = "backend_rejected"
	// Unreachable: the request never reached the provider; nothing changed.
	Unreachable Kind = "backend_unreachable"
	// OutcomeUnknown: the request may have been applied (connection lost
	// after sending it, or an answer that says neither yes nor no).
	OutcomeUnknown Kind = "outcome_unknown"
	// PageNotRecognised: a web back-end did not recognise the provider's
	// pages (changed layout, an extra step such as a verification code) and
	// submitted no change; nothing changed.
	PageNotRecognised Kind = "page_not_recognised"
	// RecentlyUsed: the provider refused a new password from the
	// account's history; nothing changed.
	RecentlyUsed Kind = "recently_used"
	// TooRecent: the password was changed too recently to change again
	// (minimum age); nothing changed.
	TooRecent Kind = "changed_too_recently"
	// Locked: the account is locked or its password may not be changed;
	// nothing changed.
	Locked Kind = "account_locked"
)

// Error is a back-end failure with its kind. Err and Detail never carry a
// password.
type Error struct {
	Kind   Kind
	Detail string
	Err    error
	// Rule names the broken rule (policy's names, e.g. "too_short") when a
	// Rejected provider said which.
	Rule string
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Kind, e.Detail, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Kind, e.Detail)
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the kind of a back-end error; anything untyped may have
// reached the provider, so it is OutcomeUnknown.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return OutcomeUnknown
}
