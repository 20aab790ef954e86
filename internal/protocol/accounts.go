package protocol

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/flow"
)

// accountsTimeout bounds the wait for the extension's account list.
const accountsTimeout = 30 * time.Second

// maxName bounds an account's display name in a reply.
const maxName = 256

// listedAccount is one entry of the extension's `accounts` reply
// (PROTOCOL.md, "accounts"): an Account plus its display name and whether
// it signs in with a password.
type listedAccount struct {
	flow.Account
	Name          string
	PasswordBased bool
	// username and host of the incoming server, as listed, for matching.
	username, host string
	// problem is why the entry cannot be used (malformed servers), or nil.
	problem *Error
}

// accounts asks the extension for Thunderbird's accounts.
func (s *session) accounts(ctx context.Context) ([]listedAccount, error) {
	ctx, cancel := context.WithTimeout(ctx, accountsTimeout)
	defer cancel()
	reply, err := s.request(ctx, "accounts", map[string]any{})
	if err != nil {
		return nil, &Error{Code: InternalError, Message: fmt.Sprintf("Thunderbird did not list its accounts (%v)", err)}
	}
	if reply.Get("status").String() != "ok" {
		return nil, &Error{Code: InternalError, Message: fmt.Sprintf("Thunderbird did not list its accounts (%s: %s)",
			truncate(reply.Get("code").String(), 64), truncate(reply.Get("message").String(), maxDetail))}
	}
	list := reply.Get("result.accounts")
	if !list.IsArray() {
		return nil, &Error{Code: InternalError, Message: `Thunderbird did not list its accounts (no "accounts" array in the reply)`}
	}
	var accounts []listedAccount
	for _, v := range list.Array() {
		if a, ok := decodeListed(v); ok {
			accounts = append(accounts, a)
		}
	}
	return accounts, nil
}

// decodeListed reads one listed account. Entries without an id or an
// incoming user name and host cannot match anything and are dropped
// (ok false); an entry with malformed servers is kept with its problem, so
// that a request naming it says why it was not synced.
func decodeListed(v gjson.Result) (a listedAccount, ok bool) {
	if !v.IsObject() {
		return a, false
	}
	id, err := requiredString(v, "id", 1, 128)
	if err != nil {
		return a, false
	}
	a.ID = id
	a.username = v.Get("incoming.username").String()
	a.host = v.Get("incoming.host").String()
	if v.Get("incoming.username").Type != gjson.String || v.Get("incoming.host").Type != gjson.String {
		return a, false
	}
	if name := v.Get("name"); name.Type == gjson.String {
		a.Name = truncate(name.String(), maxName)
	}
	a.PasswordBased = v.Get("passwordBased").Type == gjson.True
	if a.Incoming, err = endpointMember(v, "incoming", endpoint.IMAP, endpoint.POP3); err != nil {
		a.problem = err
		return a, true
	}
	// An outgoing server that signs in without authentication has no login
	// to verify or store (as in the extension's change).
	if out := v.Get("outgoing"); out.IsObject() && out.Get("authMethod").Int() == int64(endpoint.AuthNone) {
		return a, true
	}
	if a.Outgoing, err = endpointMember(v, "outgoing", endpoint.SMTP); err != nil {
		a.problem = err
	}
	return a, true
}

// matchAccounts returns the listed accounts whose incoming server has this
// user name (exactly, as Thunderbird stores it) on this host (ignoring
// case), in the extension's order. Every account sharing the login — the
// same mailbox set up as an IMAP and as a POP3 account, or twice — matches
// by that rule.
func matchAccounts(list []listedAccount, username, host string) []listedAccount {
	var matched []listedAccount
	for _, a := range list {
		if a.username == username && strings.EqualFold(a.host, host) {
			matched = append(matched, a)
		}
	}
	return matched
}
