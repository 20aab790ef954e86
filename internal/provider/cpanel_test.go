package provider

import (
	"cmp"
	"context"
	"strings"
	"testing"

	"github.com/credsync/credsync/internal/endpoint"
	sim "github.com/credsync/credsync/internal/testkit/simulators/cpanel"
)

const (
	cpanelUser = "info@negozio.it"
	cpanelOld  = "Old-cpanel-1"
	cpanelNew  = "New-cPanel-2026&x=1"
)

func cpanelStart(t *testing.T, opts sim.Options) *sim.Server {
	opts.Users = defaultUsers(opts.Users, cpanelUser, cpanelOld)
	return closeAtEnd(t, sim.Start(opts))
}

func cpanelChange(s *sim.Server, url, user, current, next string) error {
	return simChange(cpanel{}, s.CAPool, url, user, current, next)
}

func TestCpanelChange(t *testing.T) {
	s := cpanelStart(t, sim.Options{})
	btKind(t, cpanelChange(s, s.URL, cpanelUser, cpanelOld, cpanelNew), "", "")
	if s.Password(cpanelUser) != cpanelNew {
		t.Fatalf("the server has %q", s.Password(cpanelUser))
	}
	// The bare server address gets the UAPI path.
	btKind(t, cpanelChange(s, strings.TrimSuffix(s.URL, cpanelPath), cpanelUser, cpanelNew, cpanelOld), "", "")
}

func TestCpanelFailures(t *testing.T) {
	cases := []failureCase[sim.Options, sim.Fault]{
		{name: "wrong current password", current: "Sbagliata-9", kind: WrongCurrent},
		{name: "locked out", opts: sim.Options{Locked: []string{cpanelUser}}, kind: Locked},
		{name: "too weak", opts: sim.Options{MinStrength: 40}, kind: Rejected, rule: "too_weak"},
		{name: "lost after sending, applied", fault: sim.DropAfterChange, kind: OutcomeUnknown, changed: true},
		{name: "lost after sending, not applied", fault: sim.DropBeforeChange, kind: OutcomeUnknown},
		{name: "HTML instead of JSON", fault: sim.Garbage, kind: OutcomeUnknown, changed: true},
		{name: "server error", fault: sim.ServerError, kind: OutcomeUnknown},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := cpanelStart(t, c.opts)
			s.SetFault(c.fault)
			current := cmp.Or(c.current, cpanelOld)
			btKind(t, cpanelChange(s, s.URL, cpanelUser, current, cpanelNew), c.kind, c.rule, current, cpanelNew)
			if changed := s.Password(cpanelUser) == cpanelNew; changed != c.changed {
				t.Fatalf("changed = %v; want %v", changed, c.changed)
			}
		})
	}
}

func TestCpanelUnreachable(t *testing.T) {
	err := cpanel{}.Change(context.Background(), Request{Username: cpanelUser, Current: cpanelOld, New: cpanelNew, URL: "https://" + btDeadAddr(t) + "/"})
	btKind(t, err, Unreachable, "", cpanelOld, cpanelNew)
	s := cpanelStart(t, sim.Options{})
	btKind(t, cpanelChange(s, strings.Replace(s.URL, "passwd_pop", "nothing", 1), cpanelUser, cpanelOld, cpanelNew), Unreachable, "")
}

func TestCpanelRefusesBeforeSending(t *testing.T) {
	s := cpanelStart(t, sim.Options{})
	for _, user := range []string{"info", "info@", "@negozio.it", "a:b@negozio.it"} {
		btKind(t, cpanelChange(s, s.URL, user, cpanelOld, cpanelNew), Rejected, "", cpanelOld, cpanelNew)
	}
	btKind(t, cpanelChange(s, "http://127.0.0.1:2096/", cpanelUser, cpanelOld, cpanelNew), Unreachable, "")
	if s.Calls() != 0 {
		t.Fatalf("%d calls reached the server", s.Calls())
	}
}

func TestCpanelDefaultURL(t *testing.T) {
	u, err := cpanelURL(Request{Incoming: endpoint.Endpoint{Host: "mail.negozio.it"}})
	if err != nil || u.String() != "https://mail.negozio.it:2096/execute/Email/passwd_pop" {
		t.Fatalf("cpanelURL() = %v, %v", u, err)
	}
}

func TestCpanelParse(t *testing.T) {
	for body, want := range map[string]string{
		`{"status":1,"errors":null}`:                             "ok",
		`{"result":{"status":1,"errors":null},"module":"Email"}`: "ok",
		`{"status":"1"}`:                                         "ok",
		`{"status":0,"errors":["a","",7,"b"]}`:                   "0 [a b]",
		`{"status":0,"errors":"only one"}`:                       "0 [only one]",
		`{"status":2}`:                                           "bad",
		`{"errors":["x"]}`:                                       "bad",
		`<html>`:                                                 "bad",
		`null`:                                                   "bad",
	} {
		st, errs, ok := cpanelParse([]byte(body))
		got := "bad"
		switch {
		case ok && st == 1:
			got = "ok"
		case ok:
			got = "0 [" + strings.Join(errs, " ") + "]"
		}
		if got != want {
			t.Errorf("cpanelParse(%s) = %s; want %s", body, got, want)
		}
	}
}

// FuzzCpanelJSON: any answer is read without panicking; success needs
// status 1, and no password comes back in an error.
func FuzzCpanelJSON(f *testing.F) {
	f.Add(200, []byte(`{"status":1,"errors":null,"messages":null,"data":null,"metadata":{},"warnings":null}`))
	f.Add(200, []byte(`{"status":0,"errors":["Sorry, the password you selected cannot be used because it is too weak"]}`))
	f.Add(401, []byte(`<html><body>This account is currently locked out</body></html>`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		err := cpanelResult(status, body, []string{"S3cret-Old", "S3cret-New"})
		if err == nil && (status == 401 || !strings.Contains(string(body), "1")) {
			t.Fatalf("success from HTTP %d %q", status, body)
		}
		if err != nil && (strings.Contains(err.Error(), "S3cret-Old") || strings.Contains(err.Error(), "S3cret-New")) {
			t.Fatalf("the error carries a password: %v", err)
		}
	})
}
