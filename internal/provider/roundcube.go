package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/credsync/credsync/internal/policy"
)

// roundcube changes the password the way a user does in Roundcube webmail
// with the password plugin (Settings ▸ Password): it logs in with the
// current password, opens the plugin's form and submits it
// (notes: providers.md §1). Whatever driver the plugin uses behind it (SQL,
// LDAP, kpasswd, a hosting panel…) is the provider's business.
//
// Request.URL is Roundcube's address, e.g. https://webmail.example.org/ or
// https://example.org/roundcube/. Plain http:// is accepted only for a
// loopback host (a webmail on this machine).
//
// Reading the result, by structure rather than wording (skins, versions and
// languages differ; internal/testkit/simulators/roundcube serves several):
//   - The login: a redirect (302/303) is success. The login form shown
//     again — 401 since Roundcube 1.5, 200 before, with any message or none
//     — is the current password refused: WrongCurrent, unless the message's
//     words say the account is locked (rate limit: Locked) or name a failure
//     that is not the credentials' (storage server, invalid request:
//     Rejected with Roundcube's words). Any other page is Rejected when it
//     shows an error message, else PageNotRecognised; nothing further is
//     sent.
//   - The save: the plugin always answers HTTP 200 and says what happened
//     only in rcmail.display_message(text, type). The type decides:
//     "confirmation" is success, "error"/"warning" a refusal whose words
//     refine the kind (the plugin's "Current password incorrect." is
//     WrongCurrent, history RecentlyUsed, a rule's name) and are passed on
//     as the provider's (Error.Words), whatever the language.
//   - No verdict on the page, or a connection lost after the form was sent,
//     is OutcomeUnknown.
//
// Every error says what was sent (Error.Sent).
type roundcube struct{}

func (roundcube) Info() Info {
	return Info{
		Name:         "roundcube",
		WebPage:      PageURL,
		Description:  "Roundcube webmail with the password plugin (Settings ▸ Password)",
		NeedsURL:     true,
		NeedsCurrent: true,
	}
}

// roundcubeTimeout bounds a change when the context has no deadline.
const roundcubeTimeout = 90 * time.Second

// English texts of the Roundcube labels that mean "wrong current password".
const (
	rcLoginFailed       = "Login failed."               // loginfailed
	rcPasswordIncorrect = "Current password incorrect." // password plugin: passwordincorrect
)

func (roundcube) Change(ctx context.Context, r Request) (err error) {
	sent := SentNothing
	defer func() { stampSent(err, sent) }()
	base, err := roundcubeBase(r.URL)
	if err != nil {
		return &Error{Kind: Unreachable, Detail: "roundcube: " + err.Error()}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, roundcubeTimeout)
		defer cancel()
	}
	// Pages are fetched like a browser, following redirects within the
	// scheme; form posts are not followed: their answer is the verdict.
	follow := newHTTPClient(r.Roots)
	defer follow.CloseIdleConnections()
	noFollow := *follow
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	secrets := []string{r.Current, r.New}

	// 1. The login page: session cookie and request token.
	loginURL := base.ResolveReference(&url.URL{RawQuery: "_task=login"})
	page, err := rcGet(ctx, follow, base, loginURL)
	if err != nil {
		return err
	}
	login, ok := findForm(page.body, rcLoginForm)
	if !ok {
		return &Error{Kind: Unreachable, Detail: "roundcube: no Roundcube login form at " + loginURL.Redacted() + " (HTTP " + page.status + ")"}
	}
	fields := login.values()
	fields.Set("_user", r.Username)
	fields.Set("_pass", r.Current)

	// 2. Log in. Success is a redirect (302, or 303) with a new session
	// cookie; the login form shown again is the current password refused.
	resp, body, err := rcPost(ctx, &noFollow, page.url, login.action, fields, false)
	if reached(err) {
		sent = SentCurrent
	}
	if err != nil {
		return err
	}
	sent = SentCurrent
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		return rcLoginRefused(resp, body, secrets)
	}

	// 3. The plugin's form.
	formURL := base.ResolveReference(&url.URL{RawQuery: "_task=settings&_action=plugin.password"})
	page, err = rcGet(ctx, follow, base, formURL)
	if err != nil {
		return err
	}
	pwForm, ok := findForm(page.body, func(f htmlForm) bool { return f.id == "password-form" || f.has("_newpasswd") })
	if !ok {
		return &Error{Kind: Unreachable, Detail: "roundcube: no password form after the login (HTTP " + page.status + "): is the password plugin enabled?"}
	}
	fields = pwForm.values()
	if pwForm.has("_curpasswd") {
		fields.Set("_curpasswd", r.Current)
	}
	fields.Set("_newpasswd", r.New)
	fields.Set("_confpasswd", r.New)

	// 4. Save. From here on, a lost answer leaves the outcome unknown.
	resp, body, err = rcPost(ctx, &noFollow, page.url, pwForm.action, fields, true)
	if reached(err) {
		sent = SentChange
	}
	if err != nil {
		return err
	}
	sent = SentChange
	if resp.StatusCode != http.StatusOK {
		return &Error{Kind: OutcomeUnknown, Detail: "roundcube: unexpected answer to the password change: HTTP " + resp.Status}
	}
	return rcVerdict(body, secrets)
}

// rcLoginForm tells Roundcube's login form.
func rcLoginForm(f htmlForm) bool { return f.value("_task") == "login" && f.has("_user") }

// Roundcube's English messages for a refused login that do not blame the
// credentials (labels storageerror, invalidrequest, cookiesdisabled,
// invalidhost, servererror), and words of the same in other languages.
var rcNotCredentials = []string{"storage server", "invalid request", "cookies", "invalid imap server", "server error",
	"connection", "connessione", "server di archiviazione", "richiesta non valida"}

// rcLoginRefused reads the answer to the login when it is no redirect. The
// login form shown again (any status, any words) is the current password
// refused: WrongCurrent, unless Roundcube's words say the account is locked
// (rate limit: Locked) or name a failure that is not the credentials'
// (storage server down, invalid request: Rejected with its words). A page
// that is not the login form is Rejected when it shows an error message,
// else PageNotRecognised; nothing further is sent either way.
func rcLoginRefused(resp *http.Response, body []byte, secrets []string) *Error {
	msg, typ, found := rcMessage(body)
	words := providerWords(msg, secrets...)
	_, again := findForm(body, rcLoginForm)
	if found && msg != "" {
		if e := refusal(msg, secrets...); e.Kind == Locked || e.Kind == TooRecent {
			e.Detail, e.Words = "roundcube: login: "+e.Detail, words
			return e
		}
	}
	switch {
	case again && found && msg != rcLoginFailed && containsAny(policy.NormalizeText(msg), rcNotCredentials):
		return &Error{Kind: Rejected, Detail: "roundcube: the login was refused" + describe(msg, secrets), Words: words}
	case again:
		return &Error{Kind: WrongCurrent, Detail: "roundcube: the login form came back after the current password was posted (HTTP " + resp.Status + ")" + describe(msg, secrets), Words: words}
	case found && (typ == "error" || typ == "warning"):
		return &Error{Kind: Rejected, Detail: "roundcube: the login was refused" + describe(msg, secrets), Words: words}
	}
	return &Error{Kind: PageNotRecognised, Detail: "roundcube: the answer to the login (HTTP " + resp.Status + ") is neither the login form nor a redirect, and says nothing; nothing further was sent", Words: words}
}

// rcVerdict reads the answer to the password form: the message's type
// decides ("confirmation" is success; "error" or "warning", the form's
// answer with a message, a refusal), its words only refine a refusal
// (the plugin's "Current password incorrect.", history, a rule) and are
// passed on as the provider's. No message, or another type, is
// OutcomeUnknown.
func rcVerdict(body []byte, secrets []string) error {
	msg, typ, found := rcMessage(body)
	switch {
	case !found:
		return &Error{Kind: OutcomeUnknown, Detail: "roundcube: the answer to the password change has no result message"}
	case typ == "confirmation":
		return nil
	case typ == "error" || typ == "warning":
		words := providerWords(msg, secrets...)
		if msg == rcPasswordIncorrect || saysWrongCurrent(scrubText(msg, secrets...)) {
			return &Error{Kind: WrongCurrent, Detail: "roundcube: " + scrubText(msg, secrets...), Words: words}
		}
		e := refusal(msg, secrets...)
		e.Detail, e.Words = "roundcube: the password was not changed: "+e.Detail, words
		return e
	}
	return &Error{Kind: OutcomeUnknown, Detail: "roundcube: the answer to the password change is a " + typ + " message" + describe(msg, secrets)}
}

// roundcubeBase checks and normalises Roundcube's address.
func roundcubeBase(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errNoURL
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil {
		return nil, errBadURL
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !loopbackHost(u.Hostname()) {
			return nil, errPlainHTTP
		}
	default:
		return nil, errBadURL
	}
	u.RawQuery, u.Fragment = "", ""
	if !strings.HasSuffix(u.Path, "/") && !strings.HasSuffix(u.Path, ".php") {
		u.Path += "/"
	}
	return u, nil
}

type rcURLError string

func (e rcURLError) Error() string { return string(e) }

const (
	errNoURL     = rcURLError("no URL: give Roundcube's address (https://webmail.example.org/)")
	errBadURL    = rcURLError("the URL must be Roundcube's https:// address")
	errPlainHTTP = rcURLError("refusing to send a password over plain http:// to a host other than this machine; use https://")
)

func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

type rcPage struct {
	url    *url.URL
	status string
	body   []byte
}

// rcGet fetches a page of Roundcube at base; nothing it does changes the
// password. The page must stay on base's site.
func rcGet(ctx context.Context, client *http.Client, base, u *url.URL) (rcPage, error) {
	req, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		return rcPage{}, &Error{Kind: Unreachable, Detail: "roundcube: bad URL"}
	}
	resp, body, err := send(ctx, client, req, false)
	if err != nil {
		return rcPage{}, err
	}
	final := u
	if resp.Request != nil && resp.Request.URL != nil {
		final = resp.Request.URL
	}
	if final.Scheme != base.Scheme || final.Host != base.Host {
		return rcPage{}, &Error{Kind: Unreachable, Detail: "roundcube: " + u.Redacted() + " redirects to another site (" + final.Redacted() + ")"}
	}
	return rcPage{url: final, status: resp.Status, body: body}, nil
}

// rcPost submits a form to action, relative to the page it came from.
func rcPost(ctx context.Context, client *http.Client, page *url.URL, action string, fields url.Values, changes bool) (*http.Response, []byte, error) {
	target := page
	if action != "" {
		ref, err := url.Parse(action)
		if err != nil {
			return nil, nil, &Error{Kind: Unreachable, Detail: "roundcube: the form has a bad action"}
		}
		target = page.ResolveReference(ref)
	}
	if target.Scheme != page.Scheme || target.Host != page.Host {
		return nil, nil, &Error{Kind: Unreachable, Detail: "roundcube: the form posts to another site (" + target.Redacted() + ")"}
	}
	req, err := http.NewRequest(http.MethodPost, target.String(), strings.NewReader(fields.Encode()))
	if err != nil {
		return nil, nil, &Error{Kind: Unreachable, Detail: "roundcube: bad form action"}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return send(ctx, client, req, changes)
}

// displayMessage matches Roundcube's rcmail.display_message("text","type"…)
// calls; the text is a JSON string (Roundcube writes it with json_encode).
var displayMessage = regexp.MustCompile(`display_message\(\s*("(?:[^"\\]|\\.)*")\s*,\s*"([a-z]+)"`)

// rcMessage is the last message the page shows, with its type, read from the
// page's inline scripts.
func rcMessage(page []byte) (text, typ string, found bool) {
	for _, script := range inlineScripts(page) {
		for _, m := range displayMessage.FindAllStringSubmatch(script, -1) {
			var s string
			if json.Unmarshal([]byte(m[1]), &s) != nil {
				continue
			}
			text, typ, found = strings.TrimSpace(s), m[2], true
		}
	}
	return text, typ, found
}

// inlineScripts returns the text of every <script> element.
func inlineScripts(page []byte) []string {
	var out []string
	z := html.NewTokenizer(bytes.NewReader(page))
	in := false
	for {
		switch z.Next() {
		case html.ErrorToken:
			return out
		case html.StartTagToken:
			name, _ := z.TagName()
			in = atom.Lookup(name) == atom.Script
		case html.EndTagToken:
			in = false
		case html.TextToken:
			if in {
				out = append(out, string(z.Text()))
			}
		}
	}
}

// htmlForm is a <form> with its <input> fields.
type htmlForm struct {
	id, action string
	inputs     []htmlInput
}

type htmlInput struct{ name, typ, value string }

func (f htmlForm) has(name string) bool {
	for _, in := range f.inputs {
		if in.name == name {
			return true
		}
	}
	return false
}

func (f htmlForm) value(name string) string {
	for _, in := range f.inputs {
		if in.name == name {
			return in.value
		}
	}
	return ""
}

// values are the hidden fields (request token, task, action…), as a browser
// would send them.
func (f htmlForm) values() url.Values {
	v := url.Values{}
	for _, in := range f.inputs {
		if in.name != "" && strings.EqualFold(in.typ, "hidden") {
			v.Set(in.name, in.value)
		}
	}
	return v
}

// findForm returns the first form of page that match accepts. The inputs of
// a form are those between <form> and </form>, as a browser associates them
// (also when the parser would move the form out of a table).
func findForm(page []byte, match func(htmlForm) bool) (htmlForm, bool) {
	z := html.NewTokenizer(bytes.NewReader(page))
	var cur *htmlForm
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if cur != nil && match(*cur) {
				return *cur, true // unterminated form
			}
			return htmlForm{}, false
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			switch tok.DataAtom {
			case atom.Form:
				if tt == html.StartTagToken {
					cur = &htmlForm{id: attr(tok, "id"), action: attr(tok, "action")}
				}
			case atom.Input:
				if cur != nil {
					cur.inputs = append(cur.inputs, htmlInput{name: attr(tok, "name"), typ: attr(tok, "type"), value: attr(tok, "value")})
				}
			}
		case html.EndTagToken:
			if name, _ := z.TagName(); atom.Lookup(name) == atom.Form && cur != nil {
				if match(*cur) {
					return *cur, true
				}
				cur = nil
			}
		}
	}
}

func attr(t html.Token, key string) string {
	for _, a := range t.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}
