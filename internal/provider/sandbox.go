package provider

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// sandbox changes passwords at credsync's own sandbox (internal/testkit/sandbox),
// which `make demo` and the end-to-end suite run on 127.0.0.1:
// POST form username, current, new → {"ok": true} or {"ok": false, "error": code}.
type sandbox struct{}

func (sandbox) Info() Info {
	return Info{
		Name:         "sandbox",
		Description:  "credsync's demo and test servers",
		NeedsURL:     true,
		NeedsCurrent: true,
	}
}

// sandboxTimeout bounds a change when the context has no deadline.
const sandboxTimeout = 60 * time.Second

func (sandbox) Change(ctx context.Context, r Request) error {
	if r.URL == "" {
		return &Error{Kind: Unreachable, Detail: "the sandbox back-end needs a URL"}
	}
	// The passwords go only over verified TLS (the sandbox serves https).
	if u, err := url.Parse(r.URL); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return &Error{Kind: Unreachable, Detail: "the sandbox back-end needs an https:// URL; nothing was sent"}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, sandboxTimeout)
		defer cancel()
	}
	form := url.Values{"username": {r.Username}, "current": {r.Current}, "new": {r.New}}
	req, err := http.NewRequest(http.MethodPost, r.URL, strings.NewReader(form.Encode()))
	if err != nil {
		return &Error{Kind: Unreachable, Detail: "bad sandbox URL"}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, body, err := sendOnce(ctx, r.Roots, req)
	if err != nil {
		return err
	}
	var answer struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &answer) != nil {
		return &Error{Kind: OutcomeUnknown, Detail: "unreadable answer, HTTP " + resp.Status}
	}
	switch {
	case answer.OK && resp.StatusCode == http.StatusOK:
		return nil
	case answer.Error == string(WrongCurrent):
		return &Error{Kind: WrongCurrent, Detail: "the sandbox rejected the current password"}
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return &Error{Kind: Rejected, Detail: "the sandbox refused the change: " + answer.Error}
	}
	return &Error{Kind: OutcomeUnknown, Detail: "HTTP " + resp.Status}
}
