// Package code is credsync's one table of error codes: the host's
// (protocol, flow and the providers' kinds) and those only the extension
// produces. PROTOCOL.md documents every one; code_test.go fails when the
// two differ.
//
// Append-only: a code keeps its meaning forever; new codes go at the end.
package code

// Code is a stable error code, sent to the extension and to scripts.
type Code string

// Codes the host sends.
const (
	InvalidJSON          Code = "invalid_json"
	MessageTooLarge      Code = "message_too_large"
	InvalidRequest       Code = "invalid_request"
	UnknownType          Code = "unknown_type"
	InternalError        Code = "internal_error"
	NotPasswordAccount   Code = "not_password_account"
	Busy                 Code = "busy"
	BackendUnknown       Code = "backend_unknown"
	PolicyViolation      Code = "policy_violation"
	WrongCurrentPassword Code = "wrong_current_password"
	BackendUnreachable   Code = "backend_unreachable"
	BackendRejected      Code = "backend_rejected"
	OutcomeUnknown       Code = "outcome_unknown"
	VerificationFailed   Code = "verification_failed"
	StoreFailed          Code = "store_failed"
	StoreCancelled       Code = "store_cancelled"
	UnknownAccount       Code = "unknown_account"
	NotChanged           Code = "not_changed"
	StoreUnconfirmed     Code = "store_unconfirmed"
	PageNotRecognised    Code = "page_not_recognised"
	RecentlyUsed         Code = "recently_used"
	ChangedTooRecently   Code = "changed_too_recently"
	AccountLocked        Code = "account_locked"
	StoreConflict        Code = "store_conflict"
	PasswordExpired      Code = "password_expired"
)

// Codes only the extension produces: its own failures, and its answers to
// the host's requests. The host never sends them to the extension.
const (
	BackendNotConfigured Code = "backend_not_configured"
	HostNotInstalled     Code = "host_not_installed"
	HostDisconnected     Code = "host_disconnected"
	HostTimeout          Code = "host_timeout"
	ListFailed           Code = "list_failed"
	OpenFailed           Code = "open_failed"
	NoLogin              Code = "no_login"
	NotAllowed           Code = "not_allowed"
)

// Host lists the host's codes and Extension the extension's, each in the
// order of PROTOCOL.md's tables.
var (
	Host = []Code{
		InvalidJSON, MessageTooLarge, InvalidRequest, UnknownType, InternalError,
		NotPasswordAccount, Busy, BackendUnknown, PolicyViolation, WrongCurrentPassword,
		BackendUnreachable, BackendRejected, OutcomeUnknown, VerificationFailed,
		StoreFailed, StoreCancelled, UnknownAccount, NotChanged, StoreUnconfirmed,
		PageNotRecognised, RecentlyUsed, ChangedTooRecently, AccountLocked, StoreConflict,
		PasswordExpired,
	}
	Extension = []Code{
		BackendNotConfigured, HostNotInstalled, HostDisconnected, HostTimeout,
		ListFailed, OpenFailed, NoLogin, NotAllowed,
	}
)
