package protocol

import (
	"context"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/flow"
)

// syncRequest stores a password changed elsewhere in every login it
// belongs to, once their servers take it (flow.Engine.Sync).
func syncRequest(ctx context.Context, s *session, id string, req gjson.Result) (any, error) {
	accountID, err := requiredString(req, "accountId", 1, 128)
	if err != nil {
		return nil, err
	}
	pw, err := password(req, "password", false)
	if err != nil {
		return nil, err
	}
	return replyOf(s.engine.Sync(ctx, flow.Trigger{AccountID: accountID}, pw, s.progress(id)))
}
