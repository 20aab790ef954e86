// Package provider changes a mail password where the mailbox lives. Each
// back-end is one file and one line in the registry (registry.go).
package provider

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/credsync/credsync/internal/code"

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
	// HostSuffixes are server host-name suffixes that imply this back-end
	// (Detect): only unambiguous ones, e.g. Aruba PEC's own servers.
	HostSuffixes []string `json:"hostSuffixes,omitempty"`
	// WebPage is the page where a person changes the password by hand
	// (guided mode), for back-ends that work through a web site: "url"
	// (the back-end's URL), "origin" (that URL's origin, for back-ends
	// whose URL names an API call) or a fixed https:// address.
	WebPage string `json:"webPage,omitempty"`
	// Expiry: the back-end can read when the password expires
	// (ExpiryReader); for kpasswd only when its URL names the directory
	// (ldap=).
	Expiry bool `json:"expiry,omitempty"`
}

// WebPage values that derive the page from the back-end's URL.
const (
	PageURL    = "url"
	PageOrigin = "origin"
)

// Backend changes passwords at one kind of provider.
type Backend interface {
	Info() Info
	// Change changes the password once. It never retries a request that
	// may have reached the provider.
	Change(ctx context.Context, req Request) error
}

// Kind says what went wrong, in terms the flow can act on: one of the
// codes of the table in internal/code.
type Kind = code.Code

const (
	// WrongCurrent: the provider rejected the current password; nothing changed.
	WrongCurrent = code.WrongCurrentPassword
	// Rejected: the provider refused the new password; nothing changed.
	Rejected = code.BackendRejected
	// Unreachable: the request never reached the provider; nothing changed.
	Unreachable = code.BackendUnreachable
	// OutcomeUnknown: the request may have been applied (connection lost
	// after sending it, or an answer that says neither yes nor no).
	OutcomeUnknown = code.OutcomeUnknown
	// PageNotRecognised: a web back-end did not recognise the provider's
	// pages (changed layout, an extra step such as a verification code) and
	// submitted no change; nothing changed.
	PageNotRecognised = code.PageNotRecognised
	// RecentlyUsed: the provider refused a new password from the
	// account's history; nothing changed.
	RecentlyUsed = code.RecentlyUsed
	// TooRecent: the password was changed too recently to change again
	// (minimum age); nothing changed.
	TooRecent = code.ChangedTooRecently
	// Locked: the account is locked or its password may not be changed;
	// nothing changed.
	Locked = code.AccountLocked
	// PasswordExpired: the directory refused the login because the current
	// password has expired or must be changed at the next logon, and this
	// back-end cannot change it in that state; nothing changed.
	PasswordExpired = code.PasswordExpired
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
	// Sent says what reached the provider before the failure, so that no
	// text claims less (or more) than was sent: SentNothing, SentCurrent
	// (the current password was posted, e.g. to a panel's login form, but
	// no change was asked) or SentChange (the change itself was sent). ""
	// when the back-end does not say (API back-ends that send everything
	// in one request).
	Sent string
	// Words are the provider's own words about the failure, as its page
	// showed them (the visible text of the message nearest the form), for
	// the user to read as the provider's: whitespace collapsed, at most
	// maxWords characters, never a password (providerWords). "" when the
	// provider said nothing readable or its text could not be made safe.
	Words string

	// written: the request was written before the failure (send).
	written bool
}

// Values of Error.Sent.
const (
	SentNothing = "nothing"
	SentCurrent = "current"
	SentChange  = "change"
)

func (e *Error) Error() string { return string(e.Kind) + ": " + e.Message() }

// Message is the error's text without its kind, for a caller that names
// the kind itself.
func (e *Error) Message() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Detail, e.Err)
	}
	return e.Detail
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
