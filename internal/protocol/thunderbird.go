// The extension as flow.Thunderbird: the host's own requests to it
// (PROTOCOL.md, "Requests from the host") — accounts, login, store.

package protocol

import (
	"context"
	"fmt"
	"time"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/code"
	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/flow"
)

// accountsTimeout bounds the wait for the extension's account list.
const accountsTimeout = 30 * time.Second

// maxName bounds an account's display name in a reply.
const maxName = 256

// maxAccounts bounds the accounts read from one list.
const maxAccounts = 1000

// Accounts implements flow.Thunderbird: the extension's facts
// (PROTOCOL.md, "accounts").
func (s *session) Accounts(ctx context.Context, salt string) ([]flow.Account, error) {
	ctx, cancel := context.WithTimeout(ctx, accountsTimeout)
	defer cancel()
	fields := map[string]any{}
	if salt != "" {
		fields["salt"] = salt
	}
	reply, err := s.request(ctx, "accounts", fields)
	if err != nil {
		return nil, err
	}
	if reply.Get("status").String() != "ok" {
		return nil, fmt.Errorf("%s: %s", truncate(reply.Get("code").String(), 64), truncate(reply.Get("message").String(), maxDetail))
	}
	list := reply.Get("result.accounts")
	if !list.IsArray() {
		return nil, fmt.Errorf(`no "accounts" array in the reply`)
	}
	var accounts []flow.Account
	for _, v := range list.Array() {
		if len(accounts) == maxAccounts {
			return nil, fmt.Errorf("more than %d accounts", maxAccounts)
		}
		if a, ok := decodeAccount(v); ok {
			accounts = append(accounts, a)
		}
	}
	return accounts, nil
}

// decodeAccount reads one listed account. An entry without an id, or
// without an incoming user name and host, cannot be matched and is
// dropped; a server in a form credsync cannot use is kept with its
// problem, so that a transaction it belongs to fails rather than skip it.
func decodeAccount(v gjson.Result) (flow.Account, bool) {
	var a flow.Account
	if !v.IsObject() {
		return a, false
	}
	id, err := requiredString(v, "id", 1, 128)
	if err != nil {
		return a, false
	}
	a.ID = id
	if name := v.Get("name"); name.Type == gjson.String {
		a.Name = truncate(name.String(), maxName)
	}
	in, ok := decodeServer(v.Get("incoming"), endpoint.IMAP, endpoint.POP3)
	if !ok || in == nil {
		return a, false
	}
	a.Incoming = in
	if out, ok := decodeServer(v.Get("outgoing"), endpoint.SMTP); ok {
		a.Outgoing = out
	}
	return a, true
}

// decodeServer reads a listed server: an Endpoint plus origin and saved.
// ok is false when not even its user name and host are strings.
func decodeServer(v gjson.Result, want ...endpoint.Protocol) (*flow.Server, bool) {
	if !v.Exists() || v.Type == gjson.Null {
		return nil, true
	}
	user, host := v.Get("username"), v.Get("host")
	if !v.IsObject() || user.Type != gjson.String || host.Type != gjson.String {
		return nil, false
	}
	s := &flow.Server{}
	s.Username, s.Host = user.String(), host.String()
	ep, err := endpointValue(v, "server", want...)
	if err == nil {
		s.Endpoint = *ep
		s.Origin, err = requiredString(v, "origin", 1, 300)
	}
	if err == nil {
		s.Saved, err = savedMember(v)
	}
	if err != nil {
		s.Problem = err.Message
	}
	return s, true
}

// savedMember reads "saved": a fingerprint, null (no login saved) or
// absent (the store was locked).
func savedMember(v gjson.Result) (flow.Saved, *Error) {
	saved := v.Get("saved")
	switch {
	case !saved.Exists():
		return flow.Saved{}, nil
	case saved.Type == gjson.Null:
		return flow.Saved{Known: true}, nil
	}
	fp, err := stringValue(saved, "saved", 64, 64)
	if err != nil {
		return flow.Saved{}, err
	}
	return flow.Saved{Known: true, Exists: true, Fingerprint: fp}, nil
}

// ReadLogin implements flow.Thunderbird: the password of one saved login
// (PROTOCOL.md, "login").
func (s *session) ReadLogin(ctx context.Context, l flow.Login) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, accountsTimeout)
	defer cancel()
	reply, err := s.request(ctx, "login", map[string]any{"origin": l.Origin, "username": l.Username})
	if err != nil {
		return "", err
	}
	if reply.Get("status").String() != "ok" {
		return "", &Error{Code: code.Code(truncate(reply.Get("code").String(), 64)), Message: "the extension did not give the saved password"}
	}
	pw, perr := password(reply.Get("result"), "password", false)
	if perr != nil {
		return "", perr
	}
	return pw, nil
}

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
