package protocol

import (
	"context"
	"time"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/code"
	"github.com/credsync/credsync/internal/flow"
)

// storeTimeout bounds the wait for the extension's answer; the user may
// be typing the primary password meanwhile.
const storeTimeout = 5 * time.Minute

// Store implements flow.Thunderbird: one store request with every login
// (PROTOCOL.md, "store").
func (s *session) Store(ctx context.Context, salt string, writes []flow.Write) ([]flow.Written, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	logins := make([]map[string]any, len(writes))
	for i, w := range writes {
		l := map[string]any{"origin": w.Origin, "username": w.Username, "password": w.Password}
		// expect: the fingerprint; null: no login is saved yet; absent: the
		// store was locked when listed, so there is nothing to compare.
		switch {
		case w.Expect.Exists:
			l["expect"] = w.Expect.Fingerprint
		case w.Expect.Known:
			l["expect"] = nil
		}
		logins[i] = l
	}
	reply, err := s.request(ctx, "store", map[string]any{"salt": salt, "logins": logins})
	if err != nil {
		return nil, err
	}
	states := decodeStates(reply)
	if reply.Get("status").String() == "ok" {
		return states, nil
	}
	c := code.Code(reply.Get("code").String())
	switch c {
	case code.StoreFailed, code.StoreCancelled, code.StoreConflict:
	default:
		c = code.StoreFailed
	}
	return states, &flow.StoreError{Code: c, Message: truncate(reply.Get("message").String(), maxDetail), Logins: states}
}

// decodeStates reads the reply's "logins" (in result, or in an error
// reply); entries it cannot read are left out (their state is unknown).
func decodeStates(reply gjson.Result) []flow.Written {
	list := reply.Get("result.logins")
	if !list.Exists() {
		list = reply.Get("logins")
	}
	var out []flow.Written
	for _, v := range list.Array() {
		state := flow.LoginState(v.Get("state").String())
		switch state {
		case flow.Stored, flow.Unchanged, flow.Restored, flow.Unknown:
		default:
			continue
		}
		if v.Get("origin").Type != gjson.String || v.Get("username").Type != gjson.String {
			continue
		}
		out = append(out, flow.Written{Login: flow.Login{Origin: v.Get("origin").String(), Username: v.Get("username").String()}, State: state})
	}
	return out
}
