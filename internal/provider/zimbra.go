package provider

import (
	"bytes"
	"context"
	"encoding/xml"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/credsync/credsync/internal/policy"
)

// zimbra changes the password with Zimbra's SOAP ChangePasswordRequest
// (urn:zimbraAccount), which needs no session: the old password
// authenticates (providers.md §5). It posts one SOAP 1.2 envelope to
// Request.URL, by default https://<incoming host>/service/soap/.
//
// Reading the answer:
//   - <ChangePasswordResponse> is success (its auth token is ignored).
//   - A fault's detail code decides: account.AUTH_FAILED is WrongCurrent;
//     account.INVALID_PASSWORD Rejected, with the rule named by the policy
//     attribute in its arguments (zimbraPasswordMinLength → too_short …) or
//     its reason ("invalid password: too short");
//     account.PASSWORD_RECENTLY_USED RecentlyUsed;
//     account.PASSWORD_CHANGE_TOO_SOON TooRecent; account.PASSWORD_LOCKED
//     and account.ACCOUNT_INACTIVE Locked; any other caller fault
//     (soap:Sender / soap:Client) Rejected. A server fault (soap:Receiver /
//     soap:Server, e.g. service.FAILURE) may come after the directory was
//     written: OutcomeUnknown.
//   - No SOAP at all: 404, 405, 401, 403 mean no Zimbra answered there
//     (Unreachable); anything else (a proxy's 502, an HTML page) or a lost
//     answer is OutcomeUnknown.
//
// XML 1.0 cannot carry control characters other than tab: a password with
// one is refused (bad_character) before sending rather than altered.
type zimbra struct{}

const zimbraTimeout = 60 * time.Second

const (
	zimbraSOAP12 = "http://www.w3.org/2003/05/soap-envelope"
	zimbraSOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
)

func (zimbra) Info() Info {
	return Info{
		Name:         "zimbra",
		WebPage:      PageURL,
		Description:  "Zimbra: SOAP ChangePasswordRequest at https://<incoming host>/service/soap/ unless a URL is given",
		NeedsURL:     false,
		NeedsCurrent: true,
	}
}

func (zimbra) Change(ctx context.Context, r Request) error {
	if r.Current == "" || r.Username == "" {
		return &Error{Kind: Rejected, Detail: "zimbra: the account name and its current password are required"}
	}
	for _, pw := range []string{r.Current, r.New} {
		if !zimbraXMLText(pw) {
			return &Error{Kind: Rejected, Rule: policy.RuleBadCharacter, Detail: "zimbra: refused before sending: a password contains a control character that XML cannot carry"}
		}
	}
	target, err := zimbraURL(r)
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, zimbraTimeout)
		defer cancel()
	}
	req, err := http.NewRequest(http.MethodPost, target.String(), bytes.NewReader(zimbraRequest(r.Username, r.Current, r.New)))
	if err != nil {
		return &Error{Kind: Unreachable, Detail: "zimbra: bad URL"}
	}
	req.Header.Set("Content-Type", "application/soap+xml; charset=utf-8")
	resp, body, err := sendOnce(ctx, r.Roots, req)
	if err != nil {
		return err
	}
	return zimbraResult(resp.StatusCode, body, []string{r.Current, r.New})
}

// zimbraURL is Request.URL or https://<incoming host>/service/soap/.
func zimbraURL(r Request) (*url.URL, error) {
	raw := r.URL
	if raw == "" {
		if r.Incoming.Host == "" {
			return nil, &Error{Kind: Unreachable, Detail: "zimbra: no URL and no incoming server to derive it from"}
		}
		host := r.Incoming.Host
		if strings.Contains(host, ":") {
			host = "[" + host + "]" // IPv6
		}
		raw = "https://" + host + "/service/soap/"
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return nil, &Error{Kind: Unreachable, Detail: "zimbra: the URL must be https://host/service/soap/"}
	}
	return u, nil
}

// zimbraXMLText reports whether s is made only of XML 1.0 characters
// (xml.EscapeText would silently replace the others).
func zimbraXMLText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0xFFFE || r == 0xFFFF {
			return false
		}
	}
	return true
}

// zimbraRequest is the SOAP 1.2 envelope of a ChangePasswordRequest.
func zimbraRequest(user, current, next string) []byte {
	var b bytes.Buffer
	text := func(s string) { _ = xml.EscapeText(&b, []byte(s)) }
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` +
		`<soap:Envelope xmlns:soap="` + zimbraSOAP12 + `"><soap:Header><context xmlns="urn:zimbra"><nosession/><userAgent name="credsync"/></context></soap:Header>` +
		`<soap:Body><ChangePasswordRequest xmlns="urn:zimbraAccount"><account by="name">`)
	text(user)
	b.WriteString(`</account><oldPassword>`)
	text(current)
	b.WriteString(`</oldPassword><password>`)
	text(next)
	b.WriteString(`</password></ChangePasswordRequest></soap:Body></soap:Envelope>`)
	return b.Bytes()
}

// zimbraAnswer is what a SOAP answer says.
type zimbraAnswer struct {
	ok       bool              // a ChangePasswordResponse
	code     string            // the fault's detail code, e.g. account.AUTH_FAILED
	reason   string            // the fault's reason text
	receiver bool              // the server's fault, not the caller's
	args     map[string]string // the fault's <a n="…">…</a> arguments
}

type zimbraError struct {
	Code string `xml:"Code"`
	Args []struct {
		Name  string `xml:"n,attr"`
		Value string `xml:",chardata"`
	} `xml:"a"`
}

type zimbraEnvelope struct {
	XMLName xml.Name
	Body    struct {
		Response *struct{} `xml:"urn:zimbraAccount ChangePasswordResponse"`
		Fault    *struct {
			Value12  string      `xml:"Code>Value"`
			Reason12 string      `xml:"Reason>Text"`
			Detail12 zimbraError `xml:"Detail>Error"`
			Code11   string      `xml:"faultcode"`
			Reason11 string      `xml:"faultstring"`
			Detail11 zimbraError `xml:"detail>Error"`
		} `xml:"Fault"`
	} `xml:"Body"`
}

// zimbraParse reads a SOAP 1.2 or 1.1 answer; ok is false when body is not
// one (not XML, not a SOAP envelope, neither a response nor a fault).
func zimbraParse(body []byte) (a zimbraAnswer, ok bool) {
	var env zimbraEnvelope
	if xml.Unmarshal(body, &env) != nil || env.XMLName.Local != "Envelope" ||
		(env.XMLName.Space != zimbraSOAP12 && env.XMLName.Space != zimbraSOAP11) {
		return a, false
	}
	f := env.Body.Fault
	switch {
	case f != nil:
		detail := f.Detail12
		if detail.Code == "" {
			detail = f.Detail11
		}
		who := strings.TrimSpace(f.Value12 + f.Code11)
		if i := strings.LastIndexByte(who, ':'); i >= 0 {
			who = who[i+1:]
		}
		a.code = strings.TrimSpace(detail.Code)
		a.reason = strings.TrimSpace(f.Reason12 + f.Reason11)
		a.receiver = who == "Receiver" || who == "Server"
		for _, x := range detail.Args {
			if a.args == nil {
				a.args = map[string]string{}
			}
			a.args[x.Name] = strings.TrimSpace(x.Value)
		}
		return a, a.code != "" || who != ""
	case env.Body.Response != nil:
		a.ok = true
		return a, true
	}
	return a, false
}

// zimbraArgRules map Zimbra's password-policy attributes to rule names.
var zimbraArgRules = []struct{ attr, rule string }{
	{"zimbraPasswordMinLength", policy.RuleTooShort},
	{"zimbraPasswordMaxLength", policy.RuleTooLong},
	{"zimbraPasswordMinUpperCaseChars", policy.RuleNeedsUpper},
	{"zimbraPasswordMinLowerCaseChars", policy.RuleNeedsLower},
	{"zimbraPasswordMinNumericChars", policy.RuleNeedsDigit},
	{"zimbraPasswordMinPunctuationChars", policy.RuleNeedsSpecial},
	{"zimbraPasswordAllowedChars", policy.RuleBadCharacter},
	{"zimbraPasswordAllowedPunctuationChars", policy.RuleBadCharacter},
	{"zimbraPasswordBlockCommonEnabled", policy.RuleTooWeak},
}

// zimbraResult turns the HTTP answer into the change's outcome.
func zimbraResult(status int, body []byte, secrets []string) error {
	a, ok := zimbraParse(body)
	if !ok {
		switch status {
		case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusUnauthorized, http.StatusForbidden:
			return &Error{Kind: Unreachable, Detail: "zimbra: no SOAP service answered (HTTP " + strconv.Itoa(status) + ")"}
		}
		return &Error{Kind: OutcomeUnknown, Detail: "zimbra: unreadable answer (HTTP " + strconv.Itoa(status) + ")"}
	}
	if a.ok {
		return nil
	}
	detail := "zimbra: " + scrubText(a.code+": "+a.reason, secrets...)
	switch a.code {
	case "account.AUTH_FAILED":
		return &Error{Kind: WrongCurrent, Detail: detail}
	case "account.INVALID_PASSWORD":
		e := &Error{Kind: Rejected, Detail: detail, Rule: policy.RuleFromMessage(collapseText(classifiable(a.reason, secrets...)))}
		for _, ar := range zimbraArgRules {
			if _, named := a.args[ar.attr]; named {
				e.Rule = ar.rule
				break
			}
		}
		return e
	case "account.PASSWORD_RECENTLY_USED":
		return &Error{Kind: RecentlyUsed, Detail: detail}
	case "account.PASSWORD_CHANGE_TOO_SOON":
		return &Error{Kind: TooRecent, Detail: detail}
	case "account.PASSWORD_LOCKED", "account.ACCOUNT_INACTIVE":
		return &Error{Kind: Locked, Detail: detail}
	}
	if a.receiver {
		return &Error{Kind: OutcomeUnknown, Detail: detail}
	}
	return &Error{Kind: Rejected, Detail: detail}
}
