package protocol

import (
	"context"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/flow"
)

type syncArgs struct {
	account  flow.Account
	password string
}

// syncRequest stores a password changed elsewhere, once both servers take it
// (flow.Engine.Sync).
func syncRequest(ctx context.Context, s *session, id string, req gjson.Result) (any, error) {
	a, err := decodeSync(req)
	if err != nil {
		return nil, err
	}
	result, err := s.host.engine.Sync(ctx, a.account, a.password, s.progress(id))
	if err != nil {
		return nil, noteAudit(err, result.AuditFailed)
	}
	return changeResult{Stored: result.Stored, Incoming: side(result.Incoming), Outgoing: side(result.Outgoing),
		AuditFailed: result.AuditFailed}, nil
}

func decodeSync(req gjson.Result) (syncArgs, error) {
	var a syncArgs
	var err *Error
	if a.account, err = accountMember(req, "account"); err != nil {
		return a, err
	}
	if a.password, err = password(req, "password", false); err != nil {
		return a, err
	}
	return a, nil
}
