package flow

import "github.com/credsync/credsync/internal/verify"

// Code is a stable error code, listed in PROTOCOL.md.
type Code string

const (
	Busy                 Code = "busy"
	NotPasswordAccount   Code = "not_password_account"
	PolicyViolation      Code = "policy_violation"
	WrongCurrentPassword Code = "wrong_current_password"
	BackendUnreachable   Code = "backend_unreachable"
	BackendRejected      Code = "backend_rejected"
	OutcomeUnknown       Code = "outcome_unknown"
	NotChanged           Code = "not_changed"
	VerificationFailed   Code = "verification_failed"
	StoreFailed          Code = "store_failed"
	StoreCancelled       Code = "store_cancelled"
	StoreUnconfirmed     Code = "store_unconfirmed"
	UnknownAccount       Code = "unknown_account"
	// The provider's refusals that say more than BackendRejected; each
	// equals the provider.Kind of the same name. Nothing changed.
	PageNotRecognised  Code = "page_not_recognised"
	RecentlyUsed       Code = "recently_used"
	ChangedTooRecently Code = "changed_too_recently"
	AccountLocked      Code = "account_locked"
)

// Error is a flow that ended without storing the new password. Message is
// for people and logs and never contains a password.
type Error struct {
	Code    Code
	Message string
	// Changed: the provider has the new password (Thunderbird does not).
	Changed bool
	// Rule names the broken rule of a PolicyViolation.
	Rule string
	// Incoming and Outgoing hold the verification results, when verification ran.
	Incoming *verify.Result
	Outgoing *verify.Result
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// StoreError is the extension's refusal to store, with its code
// (StoreFailed, StoreCancelled or UnknownAccount).
type StoreError struct {
	Code    Code
	Message string
}

func (e *StoreError) Error() string { return string(e.Code) + ": " + e.Message }
