package verify_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/verify"
)

// Login returns once the authentication is answered: the goodbye (LOGOUT,
// QUIT) is on the wire by then, but its answer, one more round trip, is
// read after Login has returned. The servers here never answer it.
func TestLoginDoesNotWaitForTheGoodbyeAnswer(t *testing.T) {
	pki := newFakePKI(t)
	for _, tc := range []struct {
		name  string
		proto endpoint.Protocol
		sec   endpoint.Security
		fake  func(*fakeConn)
		verb  string
	}{
		{"imaps", endpoint.IMAP, endpoint.TLS, imapFake{}.handle, "LOGOUT"},
		{"imap starttls", endpoint.IMAP, endpoint.STARTTLS, imapFake{}.handle, "LOGOUT"},
		{"pop3s", endpoint.POP3, endpoint.TLS, pop3Fake{capa: pop3Capa}.handle, "QUIT"},
		{"pop3 stls", endpoint.POP3, endpoint.STARTTLS, pop3Fake{capa: append([]string{"STLS"}, pop3Capa...)}.handle, "QUIT"},
		{"smtps", endpoint.SMTP, endpoint.TLS, smtpFake{}.handle, "QUIT"},
		{"submission starttls", endpoint.SMTP, endpoint.STARTTLS, smtpFake{}.handle, "QUIT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startFake(t, pki.server, tc.sec == endpoint.TLS, tc.fake)
			srv.holdGoodbyes(t)
			ep := mkEndpoint(t, tc.proto, srv.addr, tc.sec, "alice")
			start := time.Now()
			res := verify.Login(testCtx(t, 10*time.Second), ep, "pw", pki.trust)
			elapsed := time.Since(start)
			wantOutcome(t, res, verify.OK)
			if elapsed > 800*time.Millisecond { // the old code waited goodbyeWait (1 s)
				t.Errorf("Login took %v: it waited for the answer to %s", elapsed, tc.verb)
			}
			if n := len(srv.gotCreds()); n != 1 {
				t.Errorf("%d authentication attempts, want 1", n)
			}
			sent := func() bool {
				return slices.ContainsFunc(srv.gotLines(), func(l string) bool { return strings.HasSuffix(strings.ToUpper(l), tc.verb) })
			}
			for deadline := time.Now().Add(2 * time.Second); !sent(); time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("the server never got %s; it got %q", tc.verb, srv.gotLines())
				}
			}
		})
	}
}

// A server that answers the goodbye gets it answered and the connection
// closed by the client, as before.
func TestLoginGoodbyeIsAnswered(t *testing.T) {
	pki := newFakePKI(t)
	srv := startFake(t, pki.server, false, smtpFake{}.handle)
	ep := mkEndpoint(t, endpoint.SMTP, srv.addr, endpoint.STARTTLS, "alice")
	wantOutcome(t, verify.Login(testCtx(t, 10*time.Second), ep, "pw", pki.trust), verify.OK)
	for deadline := time.Now().Add(2 * time.Second); !slices.Contains(srv.gotLines(), "QUIT"); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no QUIT; lines %q", srv.gotLines())
		}
	}
}
