package protocol

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/code"
	"github.com/credsync/credsync/internal/flow"
	"github.com/credsync/credsync/internal/policy"
	"github.com/credsync/credsync/internal/provider"
	"github.com/credsync/credsync/internal/roots"
	"github.com/credsync/credsync/internal/verify"
)

func decodeChange(req gjson.Result, trust verify.Trust) (flow.Change, error) {
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
	if c.Checks, err = breachMember(req, trust); err != nil {
		return c, err
	}
	return c, nil
}

// breachTimeout bounds the breach check's one request.
const breachTimeout = 10 * time.Second

// breachMember reads the optional "breachCheck": {"url", "failClosed"},
// the administrator's breach-check settings the popup sends. Absent: no
// breach check. Only https reaches a range API; its certificate is
// verified like the servers'.
func breachMember(req gjson.Result, trust verify.Trust) (policy.Options, *Error) {
	b := req.Get("breachCheck")
	if !b.Exists() || b.Type == gjson.Null {
		return policy.Options{}, nil
	}
	if !b.IsObject() {
		return policy.Options{}, invalid("breachCheck", `member "breachCheck" must be an object`)
	}
	base, err := optionalString(b, "url", 2048)
	if err != nil {
		return policy.Options{}, prefix("breachCheck", err)
	}
	if base == "" {
		base = policy.DefaultBreachURL
	}
	if u, perr := url.Parse(base); perr != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return policy.Options{}, invalid("breachCheck.url", `member "breachCheck.url" must be an https:// URL`)
	}
	failClosed := b.Get("failClosed")
	if failClosed.Exists() && !failClosed.IsBool() {
		return policy.Options{}, invalid("breachCheck.failClosed", `member "breachCheck.failClosed" must be a boolean`)
	}
	client := &http.Client{Timeout: breachTimeout, Transport: &http.Transport{
		Proxy: http.ProxyFromEnvironment, TLSClientConfig: &tls.Config{RootCAs: roots.Or(trust.Roots), MinVersion: tls.VersionTLS12}}}
	return policy.Options{Breach: &policy.Breach{BaseURL: base, Client: client}, FailClosed: failClosed.Bool()}, nil
}

// change changes the password at the provider, verifies it and has the
// extension store it in every login it belongs to (flow.Engine.Change).
func change(ctx context.Context, s *session, id string, req gjson.Result) (any, error) {
	c, err := decodeChange(req, s.host.Trust)
	if err != nil {
		return nil, err
	}
	defer s.waitable(id, &c)()
	result, err := s.engine.Change(ctx, c, s.progress(id))
	r, rerr := replyOf(result, err)
	if result.Policy.Breach != policy.BreachOff {
		r.BreachCheck = result.Policy.Breach
	}
	return r, rerr
}
