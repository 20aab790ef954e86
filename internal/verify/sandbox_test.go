package verify_test

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/testkit/sandbox"
	"github.com/credsync/credsync/internal/verify"
)

// Tests against the in-process sandbox servers: one per protocol and
// security mode.

func TestLoginRightPassword(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{Users: map[string]string{"alice": "correct horse"}})
	for _, se := range sandboxEndpoints {
		t.Run(se.name, func(t *testing.T) {
			before := len(sb.Logins())
			ep := mkEndpoint(t, se.proto, se.addr(sb), se.sec, "alice")
			res := verify.Login(testCtx(t, 5*time.Second), ep, "correct horse", verify.Trust{Roots: sb.CAPool})
			wantOutcome(t, res, verify.OK)
			logins := sb.Logins()[before:]
			if len(logins) != 1 || !logins[0].OK || logins[0].Protocol != string(se.proto) || logins[0].Username != "alice" {
				t.Fatalf("server saw %+v, want one successful %s login", logins, se.proto)
			}
		})
	}
}

func TestLoginHostNameLocalhost(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{Users: map[string]string{"alice": "pw"}})
	ep := mkEndpoint(t, endpoint.IMAP, sb.IMAPS, endpoint.TLS, "alice")
	ep.Host = "localhost"
	wantOutcome(t, verify.Login(testCtx(t, 5*time.Second), ep, "pw", verify.Trust{Roots: sb.CAPool}), verify.OK)
}

func TestLoginWrongPasswordOneAttempt(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{Users: map[string]string{"alice": "right"}})
	details := map[endpoint.Protocol]string{
		endpoint.IMAP: "NO [AUTHENTICATIONFAILED] Authentication failed",
		endpoint.POP3: "-ERR [AUTH] Authentication failed.",
		endpoint.SMTP: "535 5.7.8 Authentication failed",
	}
	for _, se := range sandboxEndpoints {
		t.Run(se.name, func(t *testing.T) {
			before := len(sb.Logins())
			ep := mkEndpoint(t, se.proto, se.addr(sb), se.sec, "alice")
			res := verify.Login(testCtx(t, 5*time.Second), ep, "wrong-pw", verify.Trust{Roots: sb.CAPool})
			wantOutcome(t, res, verify.AuthFailed)
			if res.Detail != details[se.proto] {
				t.Errorf("Detail = %q, want %q", res.Detail, details[se.proto])
			}
			if logins := sb.Logins()[before:]; len(logins) != 1 || logins[0].OK || logins[0].Password != "wrong-pw" {
				t.Fatalf("server saw %+v, want exactly one failed attempt", logins)
			}
		})
	}
}

func TestLoginUntrustedCA(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{Users: map[string]string{"alice": "pw"}})
	other := newTestCA(t)
	for _, se := range sandboxEndpoints {
		t.Run(se.name, func(t *testing.T) {
			ep := mkEndpoint(t, se.proto, se.addr(sb), se.sec, "alice")
			res := verify.Login(testCtx(t, 5*time.Second), ep, "pw", verify.Trust{Roots: other.pool})
			wantOutcome(t, res, verify.TLSError)
			var uae x509.UnknownAuthorityError
			if !errors.As(res.Err, &uae) {
				t.Errorf("Err = %v, want an x509.UnknownAuthorityError", res.Err)
			}
			if !strings.Contains(res.Detail, "unknown authority") {
				t.Errorf("Detail = %q", res.Detail)
			}
		})
	}
	if l := sb.Logins(); len(l) != 0 {
		t.Fatalf("server saw credentials: %d attempts", len(l))
	}
}

func TestLoginWrongHostName(t *testing.T) {
	ca := newTestCA(t)
	cert, _ := ca.issue(t, leafSpec{dns: []string{"mail.example.test"}})
	sb := startSandbox(t, sandbox.Options{Users: map[string]string{"alice": "pw"}, Certificate: &cert})
	for _, se := range sandboxEndpoints {
		t.Run(se.name, func(t *testing.T) {
			ep := mkEndpoint(t, se.proto, se.addr(sb), se.sec, "alice")
			res := verify.Login(testCtx(t, 5*time.Second), ep, "pw", verify.Trust{Roots: ca.pool})
			wantOutcome(t, res, verify.TLSError)
			var he x509.HostnameError
			if !errors.As(res.Err, &he) {
				t.Errorf("Err = %v, want an x509.HostnameError", res.Err)
			}
		})
	}
	if l := sb.Logins(); len(l) != 0 {
		t.Fatalf("server saw credentials: %d attempts", len(l))
	}
}

func TestLoginPlainRefused(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{Users: map[string]string{"alice": "pw"}})
	for _, tc := range []struct {
		proto endpoint.Protocol
		addr  string
	}{{endpoint.IMAP, sb.IMAP}, {endpoint.POP3, sb.POP3}, {endpoint.SMTP, sb.Submission}} {
		t.Run(string(tc.proto), func(t *testing.T) {
			ep := mkEndpoint(t, tc.proto, tc.addr, endpoint.Plain, "alice")
			res := verify.Login(testCtx(t, 5*time.Second), ep, "pw", verify.Trust{Roots: sb.CAPool})
			wantOutcome(t, res, verify.RefusedPlaintext)
		})
	}
	if l := sb.Logins(); len(l) != 0 {
		t.Fatalf("the password was sent in plaintext: %d attempts", len(l))
	}
}

func TestLoginPlainAllowed(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{Users: map[string]string{"alice": "pw"}, AllowInsecureAuth: true})
	for _, tc := range []struct {
		proto endpoint.Protocol
		addr  string
	}{{endpoint.IMAP, sb.IMAP}, {endpoint.POP3, sb.POP3}, {endpoint.SMTP, sb.Submission}} {
		t.Run(string(tc.proto), func(t *testing.T) {
			ep := mkEndpoint(t, tc.proto, tc.addr, endpoint.Plain, "alice")
			wantOutcome(t, verify.Login(testCtx(t, 5*time.Second), ep, "pw", verify.Trust{}), verify.OK)
		})
	}
}

// A password with non-ASCII, quotes, backslashes and spaces, over 300 bytes:
// an IMAP literal, base64 in SMTP PLAIN, the rest of the line in POP3 PASS.
func TestLoginUnusualPassword(t *testing.T) {
	pw := `pä"ss\wö rd 'x' \\" ` + strings.Repeat("€ß\"\\ ", 40)
	if len(pw) < 300 {
		t.Fatalf("test password is only %d bytes", len(pw))
	}
	sb := startSandbox(t, sandbox.Options{Users: map[string]string{"zoë@example.test": pw}})
	for _, se := range sandboxEndpoints {
		t.Run(se.name, func(t *testing.T) {
			before := len(sb.Logins())
			ep := mkEndpoint(t, se.proto, se.addr(sb), se.sec, "zoë@example.test")
			res := verify.Login(testCtx(t, 5*time.Second), ep, pw, verify.Trust{Roots: sb.CAPool})
			wantOutcome(t, res, verify.OK)
			if l := sb.Logins()[before:]; len(l) != 1 || l[0].Password != pw {
				t.Fatalf("server did not receive the password intact")
			}
		})
	}
}

func TestLoginPOP3RefusesCRLF(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{Users: map[string]string{"alice": "pw"}})
	for _, pw := range []string{"pw\r\nDELE 1", "pw\nx", "pw\rx"} {
		ep := mkEndpoint(t, endpoint.POP3, sb.POP3S, endpoint.TLS, "alice")
		res := verify.Login(testCtx(t, 5*time.Second), ep, pw, verify.Trust{Roots: sb.CAPool})
		wantOutcome(t, res, verify.ProtocolError)
		if strings.Contains(res.Detail, "pw") || !strings.Contains(res.Detail, "CR, LF or NUL") {
			t.Errorf("Detail = %q", res.Detail)
		}
	}
	ep := mkEndpoint(t, endpoint.IMAP, sb.IMAPS, endpoint.TLS, "alice")
	wantOutcome(t, verify.Login(testCtx(t, 5*time.Second), ep, "p\x00w", verify.Trust{Roots: sb.CAPool}), verify.ProtocolError)
	if l := sb.Logins(); len(l) != 0 {
		t.Fatalf("server saw %d attempts", len(l))
	}
}

func TestLoginConnectionRefused(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{})
	addr := sb.IMAPS
	sb.Close()
	ep := mkEndpoint(t, endpoint.IMAP, addr, endpoint.TLS, "alice")
	res := verify.Login(testCtx(t, 5*time.Second), ep, "pw", verify.Trust{Roots: sb.CAPool})
	wantOutcome(t, res, verify.NetworkError)
}

func TestLoginNoDeadline(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{Users: map[string]string{"alice": "pw"}})
	ep := mkEndpoint(t, endpoint.SMTP, sb.Submission, endpoint.STARTTLS, "alice")
	wantOutcome(t, verify.Login(context.Background(), ep, "pw", verify.Trust{Roots: sb.CAPool}), verify.OK)
}

func TestLoginInvalidEndpoint(t *testing.T) {
	ep := endpoint.Endpoint{Protocol: endpoint.IMAP, Host: "127.0.0.1", Port: 0, Security: endpoint.TLS, Username: "a"}
	wantOutcome(t, verify.Login(testCtx(t, time.Second), ep, "pw", verify.Trust{}), verify.ProtocolError)
}

// TestLoginExpiredPassword: the sandbox's expired user (Options.Expired)
// is password_expired on every protocol with the right password, one
// attempt each, and auth_failed with a wrong one; a change clears it.
func TestLoginExpiredPassword(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{Users: map[string]string{"alice": "right-pw"}, Expired: []string{"alice"}})
	details := map[endpoint.Protocol]string{
		endpoint.IMAP: "NO [EXPIRED] Password expired: change it",
		endpoint.POP3: "-ERR [AUTH] Password expired.",
		endpoint.SMTP: "432 4.7.12 A password transition is needed",
	}
	for _, se := range sandboxEndpoints {
		t.Run(se.name, func(t *testing.T) {
			before := len(sb.Logins())
			ep := mkEndpoint(t, se.proto, se.addr(sb), se.sec, "alice")
			res := verify.Login(testCtx(t, 5*time.Second), ep, "right-pw", verify.Trust{Roots: sb.CAPool})
			wantOutcome(t, res, verify.PasswordExpired)
			if res.Detail != details[se.proto] {
				t.Errorf("Detail = %q, want %q", res.Detail, details[se.proto])
			}
			if logins := sb.Logins()[before:]; len(logins) != 1 || logins[0].OK {
				t.Fatalf("server saw %+v, want exactly one attempt, not accepted", logins)
			}
			wantOutcome(t, verify.Login(testCtx(t, 5*time.Second), ep, "wrong-pw", verify.Trust{Roots: sb.CAPool}), verify.AuthFailed)
		})
	}
	sb.SetExpired("alice", false)
	ep := mkEndpoint(t, endpoint.IMAP, sb.IMAPS, endpoint.TLS, "alice")
	wantOutcome(t, verify.Login(testCtx(t, 5*time.Second), ep, "right-pw", verify.Trust{Roots: sb.CAPool}), verify.OK)
}
