package provider

import (
	"cmp"
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/credsync/credsync/internal/endpoint"
	sim "github.com/credsync/credsync/internal/testkit/simulators/directadmin"
)

const (
	daUser = "ufficio@studio.it"
	daOld  = "Old-da-pass-1"
	daNew  = "New&DA=pass 2026"
)

func daStart(t *testing.T, opts sim.Options) *sim.Server {
	opts.Users = defaultUsers(opts.Users, daUser, daOld)
	return closeAtEnd(t, sim.Start(opts))
}

func daChange(s *sim.Server, url, user, current, next string) error {
	return simChange(directadmin{}, s.CAPool, url, user, current, next)
}

func TestDirectAdminChange(t *testing.T) {
	s := daStart(t, sim.Options{})
	btKind(t, daChange(s, s.URL, daUser, daOld, daNew), "", "")
	if s.Password(daUser) != daNew {
		t.Fatalf("the server has %q", s.Password(daUser))
	}
}

func TestDirectAdminFailures(t *testing.T) {
	cases := []failureCase[sim.Options, sim.Fault]{
		{name: "wrong current password", current: "Sbagliata-9", kind: WrongCurrent},
		{name: "not secure enough", opts: sim.Options{MinLength: 24}, kind: Rejected, rule: "too_short"},
		{name: "blacklisted", opts: sim.Options{Blacklisted: true}, kind: Locked},
		{name: "lost after sending, applied", fault: sim.DropAfterChange, kind: OutcomeUnknown, changed: true},
		{name: "lost after sending, not applied", fault: sim.DropBeforeChange, kind: OutcomeUnknown},
		{name: "HTML instead of the API answer", fault: sim.Garbage, kind: OutcomeUnknown, changed: true},
		{name: "server error", fault: sim.ServerError, kind: OutcomeUnknown},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := daStart(t, c.opts)
			s.SetFault(c.fault)
			current := cmp.Or(c.current, daOld)
			btKind(t, daChange(s, s.URL, daUser, current, daNew), c.kind, c.rule, current, daNew)
			if changed := s.Password(daUser) == daNew; changed != c.changed {
				t.Fatalf("changed = %v; want %v", changed, c.changed)
			}
		})
	}
}

func TestDirectAdminUnreachable(t *testing.T) {
	err := directadmin{}.Change(context.Background(), Request{Username: daUser, Current: daOld, New: daNew, URL: "https://" + btDeadAddr(t) + "/"})
	btKind(t, err, Unreachable, "", daOld, daNew)
	s := daStart(t, sim.Options{})
	btKind(t, daChange(s, s.URL+"CMD_NOTHING", daUser, daOld, daNew), Unreachable, "")
}

func TestDirectAdminRefusesBeforeSending(t *testing.T) {
	s := daStart(t, sim.Options{})
	btKind(t, daChange(s, s.URL, "ufficio", daOld, daNew), Rejected, "", daOld, daNew)
	btKind(t, daChange(s, "http://127.0.0.1:2222/", daUser, daOld, daNew), Unreachable, "")
	if s.Calls() != 0 {
		t.Fatalf("%d calls reached the server", s.Calls())
	}
}

func TestDirectAdminDefaultURL(t *testing.T) {
	u, err := directadminURL(Request{Incoming: endpoint.Endpoint{Host: "mail.studio.it"}})
	if err != nil || u.String() != "https://mail.studio.it:2222/CMD_CHANGE_EMAIL_PASSWORD" {
		t.Fatalf("directadminURL() = %v, %v", u, err)
	}
}

func TestDirectAdminParse(t *testing.T) {
	for body, want := range map[string]string{
		"error=0&text=Password+Changed&details=":                      "ok",
		"error=1&text=Unable&details=<b>Passwords</b> do not match\n": "failed: unable passwords do not match",
		"text=Password+Changed":                                       "bad",
		"error=2":                                                     "bad",
		"error=0&error=1":                                             "bad",
		"<html><body>Password Changed</body></html>":                  "bad",
		"error=%zz":                                                   "bad",
	} {
		failed, text, ok := directadminParse([]byte(body))
		got := "bad"
		switch {
		case ok && !failed:
			got = "ok"
		case ok:
			got = "failed: " + text
		}
		if got != want {
			t.Errorf("directadminParse(%q) = %q; want %q", body, got, want)
		}
	}
}

// FuzzDirectAdminReply: any answer is read without panicking; success
// needs error=0, and no password comes back in an error.
func FuzzDirectAdminReply(f *testing.F) {
	f.Add(200, []byte("error=0&text=Password%20Changed&details="))
	f.Add(200, []byte("error=1&text=Unable%20to%20change%20the%20password&details=old%20password%20is%20incorrect"))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		err := directadminResult(status, body, []string{"S3cret-Old", "S3cret-New"})
		if err == nil {
			if v, perr := url.ParseQuery(strings.TrimSpace(string(body))); perr != nil || strings.TrimSpace(v.Get("error")) != "0" {
				t.Fatalf("success from %q", body)
			}
		}
		if err != nil && (strings.Contains(err.Error(), "S3cret-Old") || strings.Contains(err.Error(), "S3cret-New")) {
			t.Fatalf("the error carries a password: %v", err)
		}
	})
}
