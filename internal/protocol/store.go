package protocol

import (
	"context"
	"time"

	"github.com/credsync/credsync/internal/flow"
)

// storeTimeout bounds the wait for the extension's answer; the user may
// be typing the primary password meanwhile.
const storeTimeout = 5 * time.Minute

// Store implements flow.Storer by asking the extension to write the logins.
func (s *session) Store(ctx context.Context, accountID string, sides []flow.Side, password string) error {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	reply, err := s.request(ctx, "store", map[string]any{
		"accountId": accountID, "sides": sides, "password": password,
	})
	if err != nil {
		return err
	}
	if reply.Get("status").String() == "ok" {
		return nil
	}
	code := flow.Code(reply.Get("code").String())
	switch code {
	case flow.StoreFailed, flow.StoreCancelled, flow.UnknownAccount:
	default:
		code = flow.StoreFailed
	}
	return &flow.StoreError{Code: code, Message: truncate(reply.Get("message").String(), maxDetail)}
}
