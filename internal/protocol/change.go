package protocol

import (
	"context"
	"fmt"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/flow"
	"github.com/credsync/credsync/internal/provider"
)

type changeResult struct {
	Changed  bool        `json:"changed"`
	Stored   bool        `json:"stored"`
	Incoming *sideResult `json:"incoming,omitempty"`
	Outgoing *sideResult `json:"outgoing,omitempty"`
	// AuditFailed: the flow's audit record could not be written (audit.go).
	AuditFailed bool `json:"auditFailed,omitempty"`
}

func decodeChange(req gjson.Result) (flow.Change, error) {
	var c flow.Change
	var err *Error
	if c.Account, err = accountMember(req, "account"); err != nil {
		return c, err
	}
	b := req.Get("backend")
	if !b.IsObject() {
		return c, invalid("backend", `member "backend" must be an object`)
	}
	name, err := requiredString(b, "name", 1, 64)
	if err != nil {
		return c, prefix("backend", err)
	}
	var known bool
	if c.Backend, known = provider.Lookup(name); !known {
		return c, &Error{Code: BackendUnknown, Field: "backend.name", Message: fmt.Sprintf("no back-end is called %q", truncate(name, 64))}
	}
	if c.BackendURL, err = optionalString(b, "url", 2048); err != nil {
		return c, prefix("backend", err)
	}
	if c.Current, err = password(req, "current", !c.Backend.Info().NeedsCurrent); err != nil {
		return c, err
	}
	if c.New, err = password(req, "new", true); err != nil {
		return c, err
	}
	return c, nil
}

// change changes the password at the provider, verifies it and has the
// extension store it (flow.Engine.Change).
func change(ctx context.Context, s *session, id string, req gjson.Result) (any, error) {
	c, err := decodeChange(req)
	if err != nil {
		return nil, err
	}
	result, err := s.host.engine.Change(ctx, c, s.progress(id))
	if err != nil {
		return nil, noteAudit(err, result.AuditFailed)
	}
	return changeResult{Changed: result.Changed, Stored: result.Stored,
		Incoming: side(result.Incoming), Outgoing: side(result.Outgoing), AuditFailed: result.AuditFailed}, nil
}

// accountMember reads {"id", "incoming", "outgoing"}.
func accountMember(req gjson.Result, field string) (flow.Account, *Error) {
	v := req.Get(field)
	if !v.IsObject() {
		return flow.Account{}, invalid(field, fmt.Sprintf("member %q must be an object", field))
	}
	var acct flow.Account
	var err *Error
	if acct.ID, err = requiredString(v, "id", 1, 128); err != nil {
		return acct, prefix(field, err)
	}
	if acct.Incoming, err = endpointMember(v, "incoming", endpoint.IMAP, endpoint.POP3); err != nil {
		return acct, prefix(field, err)
	}
	if acct.Outgoing, err = endpointMember(v, "outgoing", endpoint.SMTP); err != nil {
		return acct, prefix(field, err)
	}
	if acct.Incoming == nil && acct.Outgoing == nil {
		return acct, invalid(field+".incoming", "the account has neither an incoming nor an outgoing server")
	}
	return acct, nil
}
