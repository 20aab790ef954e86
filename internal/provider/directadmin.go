package provider

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// directadmin changes a DirectAdmin mailbox's password with
// CMD_CHANGE_EMAIL_PASSWORD, the end-user call that needs no DirectAdmin
// login: the old password proves the identity (providers.md §1.3, §6).
// It posts email (the full address), oldpassword, password1, password2 and
// api=1 to https://<incoming host>:2222/CMD_CHANGE_EMAIL_PASSWORD unless
// Request.URL names the panel.
//
// Reading the answer, a URL-encoded array: error=0 is success; error=1 a
// refusal described by text and details: one blaming the old password is
// WrongCurrent, a blacklisted IP or a locked account Locked, anything else
// Rejected with the rule its words name. An answer without "error" (an
// HTML page) is OutcomeUnknown, except HTTP 404/405/403 (no such command
// there: Unreachable); so is a lost answer.
type directadmin struct{}

const (
	directadminTimeout = 60 * time.Second
	directadminPath    = "/CMD_CHANGE_EMAIL_PASSWORD"
)

func (directadmin) Info() Info {
	return Info{
		Name:         "directadmin",
		WebPage:      PageOrigin,
		Description:  "DirectAdmin: CMD_CHANGE_EMAIL_PASSWORD at https://<incoming host>:2222 unless a URL is given",
		NeedsURL:     false,
		NeedsCurrent: true,
	}
}

func (directadmin) Change(ctx context.Context, r Request) error {
	if local, domain, ok := strings.Cut(r.Username, "@"); !ok || local == "" || domain == "" {
		return &Error{Kind: Rejected, Detail: "directadmin: the mailbox name must be a full address (user@domain); a DirectAdmin account's own password is changed in DirectAdmin"}
	}
	if r.Current == "" {
		return &Error{Kind: Rejected, Detail: "directadmin: the current password is required"}
	}
	target, err := directadminURL(r)
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, directadminTimeout)
		defer cancel()
	}
	form := url.Values{"email": {r.Username}, "oldpassword": {r.Current}, "password1": {r.New}, "password2": {r.New}, "api": {"1"}}
	req, err := http.NewRequest(http.MethodPost, target.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return &Error{Kind: Unreachable, Detail: "directadmin: bad URL"}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, body, err := sendOnce(ctx, r.Roots, req)
	if err != nil {
		return err
	}
	return directadminResult(resp.StatusCode, body, []string{r.Current, r.New})
}

// directadminURL is Request.URL (its path defaulting to the command) or the
// incoming host's panel port.
func directadminURL(r Request) (*url.URL, error) {
	raw := r.URL
	if raw == "" {
		if r.Incoming.Host == "" {
			return nil, &Error{Kind: Unreachable, Detail: "directadmin: no URL and no incoming server to derive it from"}
		}
		host := r.Incoming.Host
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		raw = "https://" + host + ":2222" + directadminPath
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return nil, &Error{Kind: Unreachable, Detail: "directadmin: the URL must be https://host:2222/"}
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = directadminPath
	}
	return u, nil
}

// directadminParse reads the URL-encoded answer: its error flag and its
// text and details (tags removed); ok is false when body is not one.
func directadminParse(body []byte) (failed bool, text string, ok bool) {
	v, err := url.ParseQuery(strings.TrimSpace(string(body)))
	if err != nil {
		return false, "", false
	}
	flag, present := v["error"]
	if !present || len(flag) != 1 {
		return false, "", false
	}
	switch strings.TrimSpace(flag[0]) {
	case "0":
	case "1":
		failed = true
	default:
		return false, "", false
	}
	text = strings.TrimSpace(htmlVisibleText([]byte(v.Get("text") + " " + v.Get("details"))))
	return failed, text, true
}

// directadminResult turns the HTTP answer into the change's outcome.
func directadminResult(status int, body []byte, secrets []string) error {
	failed, text, ok := directadminParse(body)
	switch {
	case !ok:
		switch status {
		case http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed:
			return &Error{Kind: Unreachable, Detail: "directadmin: no CMD_CHANGE_EMAIL_PASSWORD answered (HTTP " + strconv.Itoa(status) + ")"}
		}
		return &Error{Kind: OutcomeUnknown, Detail: "directadmin: unreadable answer (HTTP " + strconv.Itoa(status) + ")"}
	case !failed:
		return nil
	case saysWrongCurrent(classifiable(text, secrets...)):
		return &Error{Kind: WrongCurrent, Detail: "directadmin: " + scrubText(text, secrets...)}
	case containsAny(text, []string{"blacklist", "blocked"}):
		return &Error{Kind: Locked, Detail: "directadmin: " + scrubText(text, secrets...)}
	}
	e := refusal(text, secrets...)
	e.Detail = "directadmin: " + e.Detail
	return e
}
