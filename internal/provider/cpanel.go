package provider

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// cpanel changes a cPanel mailbox's password with the webmail UAPI call
// Email::passwd_pop, as Roundcube's cpanel driver does (providers.md §1.3,
// §6): POST https://<incoming host>:2096/execute/Email/passwd_pop with HTTP
// Basic authentication as the mailbox itself (full address, current
// password) and form fields email (local part), domain and password (the
// new one).
//
// Reading the answer: HTTP 401 means the mailbox's login was refused
// (WrongCurrent), or Locked when cPHulk's page says the account is locked
// out. A UAPI JSON answer with "status": 1 is success; "status": 0 is a
// refusal, described by "errors" (cPanel's strength check → too_weak).
// HTTP 403, 404, 405 without JSON mean the call never ran (Unreachable).
// Anything else unreadable, or a lost answer, is OutcomeUnknown.
type cpanel struct{}

const (
	cpanelTimeout = 60 * time.Second
	cpanelPath    = "/execute/Email/passwd_pop"
)

func (cpanel) Info() Info {
	return Info{
		Name:         "cpanel",
		WebPage:      PageOrigin,
		Description:  "cPanel webmail: UAPI Email::passwd_pop at https://<incoming host>:2096" + cpanelPath + " unless a URL is given",
		NeedsURL:     false,
		NeedsCurrent: true,
	}
}

func (cpanel) Change(ctx context.Context, r Request) error {
	local, domain, ok := strings.Cut(r.Username, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") {
		return &Error{Kind: Rejected, Detail: "cpanel: the mailbox name must be a full address (user@domain); a cPanel account's own password is changed in cPanel"}
	}
	if r.Current == "" {
		return &Error{Kind: Rejected, Detail: "cpanel: the current password is required"}
	}
	if strings.Contains(r.Username, ":") {
		return &Error{Kind: Rejected, Detail: "cpanel: HTTP Basic authentication cannot carry a user name with a colon"}
	}
	target, err := cpanelURL(r)
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cpanelTimeout)
		defer cancel()
	}
	form := url.Values{"email": {local}, "domain": {domain}, "password": {r.New}}
	req, err := http.NewRequest(http.MethodPost, target.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return &Error{Kind: Unreachable, Detail: "cpanel: bad URL"}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(r.Username, r.Current)
	resp, body, err := sendOnce(ctx, r.Roots, req)
	if err != nil {
		return err
	}
	return cpanelResult(resp.StatusCode, body, []string{r.Current, r.New})
}

// cpanelURL is Request.URL (its path defaulting to the UAPI call) or the
// incoming host's webmail port.
func cpanelURL(r Request) (*url.URL, error) {
	raw := r.URL
	if raw == "" {
		if r.Incoming.Host == "" {
			return nil, &Error{Kind: Unreachable, Detail: "cpanel: no URL and no incoming server to derive it from"}
		}
		host := r.Incoming.Host
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		raw = "https://" + host + ":2096" + cpanelPath
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return nil, &Error{Kind: Unreachable, Detail: "cpanel: the URL must be https://host:2096/"}
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = cpanelPath
	}
	return u, nil
}

// cpanelReply is a UAPI answer: the /execute form, or wrapped in "result"
// (the json-api form).
type cpanelReply struct {
	Status json.RawMessage `json:"status"`
	Errors json.RawMessage `json:"errors"`
	Result *cpanelReply    `json:"result"`
}

// cpanelParse reads a UAPI JSON answer: its status (1 success, 0 failure)
// and error texts; ok is false when body is not one.
func cpanelParse(body []byte) (status int, errs []string, ok bool) {
	var r cpanelReply
	if json.Unmarshal(body, &r) != nil {
		return 0, nil, false
	}
	if len(r.Status) == 0 && r.Result != nil {
		r = *r.Result
	}
	switch strings.Trim(string(r.Status), `" `) {
	case "1":
		status = 1
	case "0":
		status = 0
	default:
		return 0, nil, false
	}
	var list []any
	if json.Unmarshal(r.Errors, &list) == nil {
		for _, e := range list {
			if s, isString := e.(string); isString && strings.TrimSpace(s) != "" {
				errs = append(errs, s)
			}
		}
	} else {
		var one string
		if json.Unmarshal(r.Errors, &one) == nil && strings.TrimSpace(one) != "" {
			errs = append(errs, one)
		}
	}
	return status, errs, true
}

// cpanelResult turns the HTTP answer into the change's outcome.
func cpanelResult(status int, body []byte, secrets []string) error {
	if status == http.StatusUnauthorized {
		// cpsrvd's login page; only cPHulk's lock-out changes its meaning
		// (its other texts, such as "JavaScript is disabled", do not).
		if text := htmlVisibleText(body); strings.Contains(text, "locked") || strings.Contains(text, "brute force") {
			return &Error{Kind: Locked, Detail: "cpanel: " + scrubText(text, secrets...)}
		}
		return &Error{Kind: WrongCurrent, Detail: "cpanel: the mailbox login was refused (HTTP 401)"}
	}
	st, errs, ok := cpanelParse(body)
	if !ok {
		switch status {
		case http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed:
			return &Error{Kind: Unreachable, Detail: "cpanel: no UAPI answered (HTTP " + strconv.Itoa(status) + ")"}
		}
		return &Error{Kind: OutcomeUnknown, Detail: "cpanel: unreadable answer (HTTP " + strconv.Itoa(status) + ")"}
	}
	if st == 1 {
		return nil
	}
	if len(errs) == 0 {
		return &Error{Kind: Rejected, Detail: "cpanel: refused without a reason"}
	}
	e := refusal(strings.Join(errs, " "), secrets...)
	e.Detail = "cpanel: " + e.Detail
	return e
}
