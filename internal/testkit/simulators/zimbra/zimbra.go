// Package zimbra simulates a Zimbra server's SOAP endpoint for the
// ChangePasswordRequest of the urn:zimbraAccount namespace (zm-mailbox
// store/docs/soap.txt; AccountServiceException): no auth token, the old
// password authenticates. It answers in the SOAP version it was asked in:
// SOAP 1.2 (application/soap+xml) or 1.1 (text/xml). Faults carry HTTP 500,
// soap:Sender (1.2) / soap:Client (1.1) for the caller's errors and
// soap:Receiver / soap:Server for the server's, and a detail
// <Error xmlns="urn:zimbra"><Code>account.…</Code><Trace>…</Trace>[<a n= t=>…</a>]</Error>.
//
// Checks, in Zimbra's order: account and old password (account.AUTH_FAILED
// "authentication failed for [name]"), locked (account.PASSWORD_LOCKED),
// minimum age (account.PASSWORD_CHANGE_TOO_SOON), strength
// (account.INVALID_PASSWORD "invalid password: too short" … with the
// policy attribute as argument), history (account.PASSWORD_RECENTLY_USED).
//
// It runs over TLS on 127.0.0.1 (CAPool trusts it) and is a test fixture:
// passwords stay in memory, nothing is logged.
package zimbra

import (
	"bytes"
	"crypto/subtle"
	"encoding/xml"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"unicode"

	"github.com/credsync/credsync/internal/testkit/simulators/simhttp"
)

// Fault breaks the answer to a change.
type Fault int

const (
	NoFault Fault = iota
	// DropAfterChange applies the change and closes the connection unanswered.
	DropAfterChange
	// DropBeforeChange closes the connection unanswered, changing nothing.
	DropBeforeChange
	// Garbage applies the change and answers 200 with an HTML page.
	Garbage
	// ReceiverFault applies the change, then answers a soap:Receiver
	// service.FAILURE fault (a failure after the directory was written).
	ReceiverFault
	// ProxyError changes nothing; a front proxy answers 502 in HTML.
	ProxyError
)

// Options configures the server's accounts and password policy.
type Options struct {
	Users map[string]string // account name → password
	// MinLength, MinUpper, MinDigits: zimbraPasswordMinLength,
	// zimbraPasswordMinUpperCaseChars, zimbraPasswordMinNumericChars.
	MinLength, MinUpper, MinDigits int
	// Locked accounts have zimbraPasswordLocked TRUE.
	Locked []string
	// TooSoon accounts changed their password within zimbraPasswordMinAge.
	TooSoon []string
	// History is zimbraPasswordEnforceHistory: the last N passwords are refused.
	History int
}

// Server is a running simulated Zimbra.
type Server struct {
	simhttp.Base[Fault]
	opts     Options
	history  map[string][]string
	requests []string // SOAP request element names received
}

// Start runs the server; its URL is https://127.0.0.1:port/service/soap/.
func Start(opts Options) *Server {
	s := &Server{opts: opts, history: map[string][]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /service/soap/", s.soap)
	simhttp.Start(&s.Base, mux, "/service/soap/", opts.Users)
	return s
}

// Requests lists the SOAP request elements received.
func (s *Server) Requests() []string {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	return append([]string(nil), s.requests...)
}

const (
	ns12 = "http://www.w3.org/2003/05/soap-envelope"
	ns11 = "http://schemas.xmlsoap.org/soap/envelope/"
)

type envelope struct {
	XMLName xml.Name
	Body    struct {
		Request *struct {
			XMLName xml.Name
			Account struct {
				By   string `xml:"by,attr"`
				Name string `xml:",chardata"`
			} `xml:"account"`
			Old string `xml:"oldPassword"`
			New string `xml:"password"`
		} `xml:",any"`
	} `xml:"Body"`
}

// arg is a fault argument: <a n="name" t="NUM">value</a>.
type arg struct{ name, typ, value string }

func (s *Server) soap(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	s.Mu.Lock()
	defer s.Mu.Unlock()
	var env envelope
	v12 := true
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "text/xml" {
		v12 = false
	}
	if xml.Unmarshal(body, &env) != nil || env.Body.Request == nil || (env.XMLName.Space != ns12 && env.XMLName.Space != ns11) {
		s.fault500(w, v12, false, "service.PARSE_ERROR", "parse error: invalid SOAP envelope")
		return
	}
	req := env.Body.Request
	s.requests = append(s.requests, req.XMLName.Local)
	if req.XMLName.Local != "ChangePasswordRequest" || req.XMLName.Space != "urn:zimbraAccount" {
		s.fault500(w, v12, false, "service.UNKNOWN_DOCUMENT", "unknown document: "+req.XMLName.Local)
		return
	}
	switch s.Fault {
	case DropBeforeChange:
		simhttp.Drop(w)
		return
	case ProxyError:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "<html><body><h1>502 Bad Gateway</h1>nginx</body></html>")
		return
	}
	name := strings.TrimSpace(req.Account.Name)
	want, known := s.Users[name]
	switch {
	case req.Account.By != "" && req.Account.By != "name":
		s.fault500(w, v12, false, "service.INVALID_REQUEST", "invalid request: unsupported account selector")
	case !known || subtle.ConstantTimeCompare([]byte(req.Old), []byte(want)) != 1:
		s.fault500(w, v12, false, "account.AUTH_FAILED", "authentication failed for ["+name+"]")
	case slices.Contains(s.opts.Locked, name):
		s.fault500(w, v12, false, "account.PASSWORD_LOCKED", "password is locked and can't be changed")
	case slices.Contains(s.opts.TooSoon, name):
		s.fault500(w, v12, false, "account.PASSWORD_CHANGE_TOO_SOON", "password can't be changed yet")
	default:
		if desc, a := s.weak(req.New); desc != "" {
			s.fault500(w, v12, false, "account.INVALID_PASSWORD", "invalid password: "+desc, a)
			return
		}
		if s.opts.History > 0 && (req.New == want || slices.Contains(s.history[name], req.New)) {
			s.fault500(w, v12, false, "account.PASSWORD_RECENTLY_USED", "password recently used")
			return
		}
		h := append(s.history[name], want)
		if len(h) > s.opts.History {
			h = h[len(h)-s.opts.History:]
		}
		s.history[name] = h
		s.Users[name] = req.New
		switch s.Fault {
		case DropAfterChange:
			simhttp.Drop(w)
		case Garbage:
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html><body>Zimbra Web Client Sign In</body></html>")
		case ReceiverFault:
			s.fault500(w, v12, true, "service.FAILURE", "system failure: unable to update mailbox")
		default:
			s.reply(w, v12, `<ChangePasswordResponse xmlns="urn:zimbraAccount"><authToken>0_5f3c2b_token</authToken><lifetime>172800000</lifetime></ChangePasswordResponse>`)
		}
	}
}

// weak applies the account's strength policy like Zimbra's
// checkPasswordStrength: a description and the policy attribute.
func (s *Server) weak(pw string) (string, *arg) {
	var upper, digits int
	for _, c := range pw {
		if unicode.IsUpper(c) {
			upper++
		}
		if unicode.IsDigit(c) {
			digits++
		}
	}
	switch {
	case s.opts.MinLength > 0 && len([]rune(pw)) < s.opts.MinLength:
		return "too short", &arg{"zimbraPasswordMinLength", "NUM", fmt.Sprint(s.opts.MinLength)}
	case upper < s.opts.MinUpper:
		return "not enough upper case characters", &arg{"zimbraPasswordMinUpperCaseChars", "NUM", fmt.Sprint(s.opts.MinUpper)}
	case digits < s.opts.MinDigits:
		return "not enough numeric characters", &arg{"zimbraPasswordMinNumericChars", "NUM", fmt.Sprint(s.opts.MinDigits)}
	}
	return "", nil
}

func (s *Server) envelope(v12 bool, body string) string {
	ns := ns12
	if !v12 {
		ns = ns11
	}
	return `<soap:Envelope xmlns:soap="` + ns + `"><soap:Header><context xmlns="urn:zimbra"><change token="2"/></context></soap:Header><soap:Body>` + body + `</soap:Body></soap:Envelope>`
}

func (s *Server) reply(w http.ResponseWriter, v12 bool, body string) {
	ct := "application/soap+xml; charset=utf-8"
	if !v12 {
		ct = "text/xml; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	io.WriteString(w, s.envelope(v12, body))
}

func (s *Server) fault500(w http.ResponseWriter, v12, receiver bool, code, reason string, args ...*arg) {
	var detail bytes.Buffer
	fmt.Fprintf(&detail, `<Error xmlns="urn:zimbra"><Code>%s</Code><Trace>qtp1-42:1795000000000:5f3c2b</Trace>`, code)
	for _, a := range args {
		if a != nil {
			fmt.Fprintf(&detail, `<a n="%s" t="%s">%s</a>`, a.name, a.typ, a.value)
		}
	}
	detail.WriteString(`</Error>`)
	var reasonXML bytes.Buffer
	_ = xml.EscapeText(&reasonXML, []byte(reason))
	var f string
	if v12 {
		who := "soap:Sender"
		if receiver {
			who = "soap:Receiver"
		}
		f = `<soap:Fault><soap:Code><soap:Value>` + who + `</soap:Value></soap:Code><soap:Reason><soap:Text>` +
			reasonXML.String() + `</soap:Text></soap:Reason><soap:Detail>` + detail.String() + `</soap:Detail></soap:Fault>`
	} else {
		who := "soap:Client"
		if receiver {
			who = "soap:Server"
		}
		f = `<soap:Fault><faultcode>` + who + `</faultcode><faultstring>` + reasonXML.String() +
			`</faultstring><detail>` + detail.String() + `</detail></soap:Fault>`
	}
	ct := "application/soap+xml; charset=utf-8"
	if !v12 {
		ct = "text/xml; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusInternalServerError)
	io.WriteString(w, s.envelope(v12, f))
}
