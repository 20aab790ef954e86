package provider

import (
	"cmp"
	"context"
	"strings"
	"testing"

	"github.com/credsync/credsync/internal/endpoint"
	sim "github.com/credsync/credsync/internal/testkit/simulators/zimbra"
)

const (
	zimbraUser = "mario.rossi@example.it"
	zimbraOld  = "Old-zimbra-1"
	zimbraNew  = "New-Zimbra-2026 <&>"
)

func zimbraStart(t *testing.T, opts sim.Options) *sim.Server {
	opts.Users = defaultUsers(opts.Users, zimbraUser, zimbraOld)
	return closeAtEnd(t, sim.Start(opts))
}

func zimbraChange(s *sim.Server, url, current, next string) error {
	return simChange(zimbra{}, s.CAPool, url, zimbraUser, current, next)
}

func TestZimbraChange(t *testing.T) {
	s := zimbraStart(t, sim.Options{})
	btKind(t, zimbraChange(s, s.URL, zimbraOld, zimbraNew), "", "")
	if s.Password(zimbraUser) != zimbraNew {
		t.Fatalf("the server has %q; want the new password, XML-escaped and back", s.Password(zimbraUser))
	}
	if got := s.Requests(); len(got) != 1 || got[0] != "ChangePasswordRequest" {
		t.Fatalf("requests %v", got)
	}
}

func TestZimbraFailures(t *testing.T) {
	cases := []struct {
		name    string
		opts    sim.Options
		fault   sim.Fault
		path    string // replaces the server's /service/soap/
		current string
		kind    Kind
		rule    string
		changed bool
	}{
		{name: "wrong current password", current: "Sbagliata-9", kind: WrongCurrent},
		{name: "too short", opts: sim.Options{MinLength: 32}, kind: Rejected, rule: "too_short"},
		{name: "needs upper", opts: sim.Options{MinUpper: 3}, kind: Rejected, rule: "needs_upper"},
		{name: "recently used", opts: sim.Options{History: 3, Users: map[string]string{zimbraUser: zimbraNew}}, current: zimbraNew, kind: RecentlyUsed},
		{name: "too soon", opts: sim.Options{TooSoon: []string{zimbraUser}}, kind: TooRecent},
		{name: "locked", opts: sim.Options{Locked: []string{zimbraUser}}, kind: Locked},
		{name: "lost after sending, applied", fault: sim.DropAfterChange, kind: OutcomeUnknown, changed: true},
		{name: "lost after sending, not applied", fault: sim.DropBeforeChange, kind: OutcomeUnknown},
		{name: "HTML instead of SOAP", fault: sim.Garbage, kind: OutcomeUnknown, changed: true},
		{name: "server fault after writing", fault: sim.ReceiverFault, kind: OutcomeUnknown, changed: true},
		{name: "proxy error", fault: sim.ProxyError, kind: OutcomeUnknown},
		{name: "no SOAP service there", path: "/nothing-here", kind: Unreachable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := zimbraStart(t, c.opts)
			s.SetFault(c.fault)
			current := cmp.Or(c.current, zimbraOld)
			before := s.Password(zimbraUser)
			url := s.URL
			if c.path != "" {
				url = strings.Replace(url, "/service/soap/", c.path, 1)
			}
			btKind(t, zimbraChange(s, url, current, zimbraNew), c.kind, c.rule, current, zimbraNew)
			if changed := s.Password(zimbraUser) != before; changed != c.changed {
				t.Fatalf("changed = %v; want %v", changed, c.changed)
			}
		})
	}
}

func TestZimbraUnreachable(t *testing.T) {
	err := zimbra{}.Change(context.Background(), Request{Username: zimbraUser, Current: zimbraOld, New: zimbraNew, URL: "https://" + btDeadAddr(t) + "/service/soap/"})
	btKind(t, err, Unreachable, "", zimbraOld, zimbraNew)
}

func TestZimbraRefusesBeforeSending(t *testing.T) {
	s := zimbraStart(t, sim.Options{})
	btKind(t, zimbraChange(s, s.URL, zimbraOld, "bell\x07char"), Rejected, "bad_character", zimbraOld)
	btKind(t, zimbraChange(s, "http://127.0.0.1:1/service/soap/", zimbraOld, zimbraNew), Unreachable, "")
	if n := len(s.Requests()); n != 0 {
		t.Fatalf("%d requests sent", n)
	}
}

func TestZimbraDefaultURL(t *testing.T) {
	for host, want := range map[string]string{
		"mail.example.it": "https://mail.example.it/service/soap/",
		"::1":             "https://[::1]/service/soap/",
	} {
		u, err := zimbraURL(Request{Incoming: endpoint.Endpoint{Host: host}})
		if err != nil || u.String() != want {
			t.Errorf("zimbraURL(%s) = %v, %v", host, u, err)
		}
	}
	if _, err := zimbraURL(Request{}); KindOf(err) != Unreachable {
		t.Fatalf("no host: %v", err)
	}
}

func TestZimbraRequestEscapes(t *testing.T) {
	body := string(zimbraRequest("a&b@example.it", "</oldPassword>", `"'<>&`))
	for _, want := range []string{"<account by=\"name\">a&amp;b@example.it</account>", "<oldPassword>&lt;/oldPassword&gt;</oldPassword>", "<password>&#34;&#39;&lt;&gt;&amp;</password>"} {
		if !strings.Contains(body, want) {
			t.Fatalf("request lacks %s:\n%s", want, body)
		}
	}
}

// SOAP 1.1 faults (a server configured for it, or a proxy) read the same.
func TestZimbraParseSOAP11(t *testing.T) {
	body := `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault>
<faultcode>soap:Client</faultcode><faultstring>invalid password: not enough punctuation characters</faultstring>
<detail><Error xmlns="urn:zimbra"><Code>account.INVALID_PASSWORD</Code><Trace>t</Trace></Error></detail></soap:Fault></soap:Body></soap:Envelope>`
	btKind(t, zimbraResult(500, []byte(body), nil), Rejected, "needs_special")
	body = strings.ReplaceAll(strings.ReplaceAll(body, "soap:Client", "soap:Server"), "account.INVALID_PASSWORD", "service.FAILURE")
	btKind(t, zimbraResult(500, []byte(body), nil), OutcomeUnknown, "")
}

func TestZimbraResultNeverEchoesPasswords(t *testing.T) {
	body := `<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body><soap:Fault><soap:Code><soap:Value>soap:Sender</soap:Value></soap:Code>
<soap:Reason><soap:Text>invalid password: Hunter2-Secret is too short</soap:Text></soap:Reason>
<soap:Detail><Error xmlns="urn:zimbra"><Code>account.INVALID_PASSWORD</Code></Error></soap:Detail></soap:Fault></soap:Body></soap:Envelope>`
	btKind(t, zimbraResult(500, []byte(body), []string{"Hunter2-Secret"}), Rejected, "too_short", "Hunter2-Secret")
}

// FuzzZimbraFault: any answer is read without panicking; a success is
// only ever a ChangePasswordResponse.
func FuzzZimbraFault(f *testing.F) {
	f.Add(500, []byte(`<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body><soap:Fault><soap:Code><soap:Value>soap:Sender</soap:Value></soap:Code><soap:Reason><soap:Text>authentication failed for [a]</soap:Text></soap:Reason><soap:Detail><Error xmlns="urn:zimbra"><Code>account.AUTH_FAILED</Code></Error></soap:Detail></soap:Fault></soap:Body></soap:Envelope>`))
	f.Add(200, []byte(`<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body><ChangePasswordResponse xmlns="urn:zimbraAccount"><authToken>x</authToken></ChangePasswordResponse></soap:Body></soap:Envelope>`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		err := zimbraResult(status, body, []string{"S3cret-Old", "S3cret-New"})
		if err == nil && !strings.Contains(string(body), "ChangePasswordResponse") {
			t.Fatalf("success without a ChangePasswordResponse")
		}
		if err != nil && (strings.Contains(err.Error(), "S3cret-Old") || strings.Contains(err.Error(), "S3cret-New")) {
			t.Fatalf("the error carries a password: %v", err)
		}
	})
}
