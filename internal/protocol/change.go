package protocol

import (
	"context"
	"fmt"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/code"
	"github.com/credsync/credsync/internal/flow"
	"github.com/credsync/credsync/internal/provider"
)

func decodeChange(req gjson.Result) (flow.Change, error) {
	var c flow.Change
	var err *Error
	if c.AccountID, err = requiredString(req, "accountId", 1, 128); err != nil {
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
		return c, &Error{Code: code.BackendUnknown, Field: "backend.name", Message: fmt.Sprintf("no back-end is called %q", truncate(name, 64))}
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
// extension store it in every login it belongs to (flow.Engine.Change).
func change(ctx context.Context, s *session, id string, req gjson.Result) (any, error) {
	c, err := decodeChange(req)
	if err != nil {
		return nil, err
	}
	result, err := s.engine.Change(ctx, c, s.progress(id))
	if err != nil {
		return nil, noteAudit(err, result.AuditFailed)
	}
	return resultOf(result), nil
}
