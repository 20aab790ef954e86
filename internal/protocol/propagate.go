package protocol

import (
	"context"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/flow"
)

// propagate follows a password Thunderbird saved for one login into every
// login it belongs to (flow.Engine.Propagate). The request carries no
// password: the host reads it from the login (ReadLogin).
func propagate(ctx context.Context, s *session, id string, req gjson.Result) (any, error) {
	origin, err := requiredString(req, "origin", 1, 300)
	if err != nil {
		return nil, err
	}
	username, err := requiredString(req, "username", 1, endpoint.MaxUsername)
	if err != nil {
		return nil, err
	}
	result, ferr := s.engine.Propagate(ctx, flow.Login{Origin: origin, Username: username}, s.progress(id))
	r, rerr := replyOf(result, ferr)
	r.Updated = &result.Updated
	return r, rerr
}
