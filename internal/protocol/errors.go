package protocol

import (
	"errors"

	"github.com/credsync/credsync/internal/code"
	"github.com/credsync/credsync/internal/flow"
)

// Error is a request refused by the protocol layer.
type Error struct {
	Code    code.Code
	Message string
	Field   string
	Limit   uint32
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

func invalid(field, message string) *Error {
	return &Error{Code: code.InvalidRequest, Field: field, Message: message}
}

type errorReplyMsg struct {
	ID      *string   `json:"id"`
	Status  string    `json:"status"`
	Code    code.Code `json:"code"`
	Message string    `json:"message"`
	Field   string    `json:"field,omitempty"`
	Limit   uint32    `json:"limit,omitempty"`
	Rule    string    `json:"rule,omitempty"`
	Changed *bool     `json:"changed,omitempty"`
	// Sent and ProviderWords: what of a change reached the provider, and
	// its own words about the refusal (PROTOCOL.md, error codes).
	Sent          string `json:"sent,omitempty"`
	ProviderWords string `json:"providerWords,omitempty"`
	// Breaches: how often a breached password was seen (rule "breached").
	Breaches int `json:"breaches,omitempty"`
	txMembers
	// Waited: the change waited for lagging servers (wait.go).
	Waited *waitedJSON `json:"waited,omitempty"`
	// AuditFailed: the flow's audit record could not be written (audit.go).
	AuditFailed bool `json:"auditFailed,omitempty"`
}

// errorReply turns any error into a reply; an error of unknown type
// becomes internal_error, its text kept for the log only.
func errorReply(id *string, err error) errorReplyMsg {
	reply := errorReplyMsg{ID: id, Status: "error"}
	var pe *Error
	var fe *flow.Error
	switch {
	case errors.As(err, &pe):
		reply.Code, reply.Message, reply.Field, reply.Limit = pe.Code, pe.Message, pe.Field, pe.Limit
	case errors.As(err, &fe):
		reply.Code, reply.Message, reply.Rule = fe.Code, fe.Message, fe.Rule
		reply.Sent, reply.ProviderWords, reply.Breaches = fe.Sent, truncate(fe.Words, maxDetail), fe.Breaches
		reply.txMembers = members(fe.Accounts, fe.Logins, fe.Servers)
		reply.Changed = &fe.Changed
		reply.Waited = waitedOf(fe.Waited)
	default:
		reply.Code, reply.Message = code.InternalError, "credsync failed unexpectedly; nothing was stored"
	}
	reply.AuditFailed = errors.As(err, new(auditFailedError))
	return reply
}

// codeOf is what the log says about a failed request: its code only.
func codeOf(err error) code.Code {
	return errorReply(nil, err).Code
}
