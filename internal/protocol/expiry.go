package protocol

import (
	"context"
	"fmt"
	"time"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/code"
	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/provider"
)

// expiryTimeout bounds an expiry request's one check.
const expiryTimeout = 30 * time.Second

// expiryResult is an expiry request's result (PROTOCOL.md, "expiry").
type expiryResult struct {
	State provider.ExpiryState `json:"state"`
	// ExpiresAt: RFC 3339 UTC, for "expires", and for "expired" when the
	// directory said when.
	ExpiresAt string `json:"expiresAt,omitempty"`
	// LastChanged: RFC 3339 UTC, when the directory said.
	LastChanged string `json:"lastChanged,omitempty"`
	Source      string `json:"source"`
	// GraceLogins: the logins an expired password still allows (ppolicy),
	// when the directory said.
	GraceLogins *int `json:"graceLogins,omitempty"`
	// Detail: why the state is unknown (English, for logs).
	Detail string `json:"detail,omitempty"`
}

type expiryArgs struct {
	backend  provider.Backend
	url      string
	username string
	incoming *endpoint.Endpoint
	password string
}

func decodeExpiry(req gjson.Result) (expiryArgs, error) {
	var a expiryArgs
	b := req.Get("backend")
	if !b.IsObject() {
		return a, invalid("backend", `member "backend" must be an object`)
	}
	name, err := requiredString(b, "name", 1, 64)
	if err != nil {
		return a, prefix("backend", err)
	}
	var known bool
	if a.backend, known = provider.Lookup(name); !known {
		return a, &Error{Code: code.BackendUnknown, Field: "backend.name", Message: fmt.Sprintf("no back-end is called %q", truncate(name, 64))}
	}
	if a.url, err = optionalString(b, "url", 2048); err != nil {
		return a, prefix("backend", err)
	}
	if a.incoming, err = endpointMember(req, "incoming", endpoint.IMAP, endpoint.POP3); err != nil {
		return a, err
	}
	if a.username, err = optionalString(req, "username", endpoint.MaxUsername); err != nil {
		return a, err
	}
	if a.username == "" && a.incoming != nil {
		a.username = a.incoming.Username
	}
	if a.username == "" {
		return a, invalid("username", `give "username" or "incoming"`)
	}
	if a.password, err = password(req, "password", false); err != nil {
		return a, err
	}
	return a, nil
}

// expiry reads when the password expires, where the back-end's directory
// knows it: one bind as the user, nothing written, nothing stored.
func expiry(ctx context.Context, s *session, _ string, req gjson.Result) (any, error) {
	a, err := decodeExpiry(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, expiryTimeout)
	defer cancel()
	r := provider.Request{Username: a.username, Current: a.password, URL: a.url, Roots: s.host.Trust.Roots}
	if a.incoming != nil {
		r.Incoming = *a.incoming
	}
	x, rerr := provider.ReadExpiry(ctx, a.backend, r)
	if rerr != nil {
		c := provider.KindOf(rerr)
		if c == code.OutcomeUnknown { // nothing is changed by a check
			c = code.BackendUnreachable
		}
		return nil, &Error{Code: c, Message: rerr.Error()}
	}
	return expiryResultOf(x), nil
}

func expiryResultOf(x provider.Expiry) expiryResult {
	r := expiryResult{State: x.State, Source: x.Source, Detail: x.Detail}
	if !x.At.IsZero() {
		r.ExpiresAt = x.At.UTC().Format(time.RFC3339)
	}
	if !x.LastChanged.IsZero() {
		r.LastChanged = x.LastChanged.UTC().Format(time.RFC3339)
	}
	if x.Grace >= 0 && x.State == provider.Expired {
		g := x.Grace
		r.GraceLogins = &g
	}
	return r
}
