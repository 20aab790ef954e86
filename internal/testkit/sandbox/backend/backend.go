// Package backend is the "sandbox" password-change back-end: the client of
// the sandbox's change endpoint (internal/testkit/sandbox), which `make
// demo`, `make bench` and the end-to-end suites run on 127.0.0.1.
//
// Importing it registers the back-end with internal/provider. Only demo and
// test builds do: cmd/credsync under the build tag "sandbox"
// (cmd/credsync/sandbox.go), Go tests from their _test.go files. A release
// binary neither holds nor lists it.
package backend

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/credsync/credsync/internal/provider"
)

func init() { provider.Register(Sandbox{}) }

// Sandbox changes passwords at the sandbox's change endpoint:
// POST form username, current, new → {"ok": true} or {"ok": false, "error": code}.
type Sandbox struct{}

// Info describes the back-end.
func (Sandbox) Info() provider.Info {
	return provider.Info{
		Name:         "sandbox",
		Description:  "credsync's demo and test servers",
		NeedsURL:     true,
		NeedsCurrent: true,
		Expiry:       true,
	}
}

// timeout bounds a change when the context has no deadline.
const timeout = 60 * time.Second

// Change changes the password once.
func (Sandbox) Change(ctx context.Context, r provider.Request) error {
	if r.URL == "" {
		return &provider.Error{Kind: provider.Unreachable, Detail: "the sandbox back-end needs a URL"}
	}
	// The passwords go only over verified TLS (the sandbox serves https).
	if u, err := url.Parse(r.URL); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return &provider.Error{Kind: provider.Unreachable, Detail: "the sandbox back-end needs an https:// URL; nothing was sent"}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	form := url.Values{"username": {r.Username}, "current": {r.Current}, "new": {r.New}}
	req, err := http.NewRequest(http.MethodPost, r.URL, strings.NewReader(form.Encode()))
	if err != nil {
		return &provider.Error{Kind: provider.Unreachable, Detail: "bad sandbox URL"}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, body, err := provider.SendOnce(ctx, r.Roots, req)
	if err != nil {
		return err
	}
	var answer struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &answer) != nil {
		return &provider.Error{Kind: provider.OutcomeUnknown, Detail: "unreadable answer, HTTP " + resp.Status}
	}
	switch {
	case answer.OK && resp.StatusCode == http.StatusOK:
		return nil
	case answer.Error == string(provider.WrongCurrent):
		return &provider.Error{Kind: provider.WrongCurrent, Detail: "the sandbox rejected the current password"}
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return &provider.Error{Kind: provider.Rejected, Detail: "the sandbox refused the change: " + answer.Error}
	}
	return &provider.Error{Kind: provider.OutcomeUnknown, Detail: "HTTP " + resp.Status}
}

// Expiry asks the sandbox's expiry endpoint (the change URL's /expiry)
// when the password expires (provider.ExpiryReader): one request.
func (Sandbox) Expiry(ctx context.Context, r provider.Request) (provider.Expiry, error) {
	u, err := url.Parse(r.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return provider.Expiry{}, &provider.Error{Kind: provider.Unreachable, Detail: "the sandbox back-end needs an https:// URL; nothing was sent"}
	}
	u.Path, u.RawQuery = "/expiry", ""
	form := url.Values{"username": {r.Username}, "password": {r.Current}}
	req, err := http.NewRequest(http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return provider.Expiry{}, &provider.Error{Kind: provider.Unreachable, Detail: "bad sandbox URL"}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, body, err := provider.SendOnce(ctx, r.Roots, req)
	if err != nil {
		return provider.Expiry{}, err
	}
	var answer struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
		State string `json:"state"`
		At    string `json:"at"`
	}
	if json.Unmarshal(body, &answer) != nil || !answer.OK && answer.Error == "" {
		return provider.Expiry{}, &provider.Error{Kind: provider.Unreachable, Detail: "unreadable answer, HTTP " + resp.Status}
	}
	if !answer.OK {
		if answer.Error == string(provider.WrongCurrent) {
			return provider.Expiry{}, &provider.Error{Kind: provider.WrongCurrent, Detail: "the sandbox rejected the password"}
		}
		return provider.Expiry{}, &provider.Error{Kind: provider.Rejected, Detail: "the sandbox refused: " + answer.Error}
	}
	x := provider.Expiry{State: provider.ExpiryState(answer.State), Source: "sandbox", Grace: -1}
	if answer.At != "" {
		if x.At, err = time.Parse(time.RFC3339, answer.At); err != nil {
			return provider.Expiry{}, &provider.Error{Kind: provider.Unreachable, Detail: "unreadable date " + answer.At}
		}
	}
	return x, nil
}
