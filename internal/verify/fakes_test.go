package verify_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/verify"
)

// Tests against hand-rolled servers that misbehave.

var pop3Capa = []string{"USER", "UIDL", "RESP-CODES"}

// starttlsFakes are fakes on a cleartext port whose STARTTLS is refused or
// not offered at all: a downgrade.
func TestLoginSTARTTLSDowngrade(t *testing.T) {
	pki := newFakePKI(t)
	cases := []struct {
		name  string
		proto endpoint.Protocol
		fake  func(*fakeConn)
	}{
		{"imap refuses STARTTLS", endpoint.IMAP, imapFake{starttls: "NO STARTTLS not supported"}.handle},
		{"imap BAD STARTTLS", endpoint.IMAP, imapFake{starttls: "BAD unknown command"}.handle},
		{"smtp no STARTTLS", endpoint.SMTP, smtpFake{noTLS: true}.handle},
		{"pop3 no STLS in CAPA", endpoint.POP3, pop3Fake{capa: pop3Capa}.handle},
		{"pop3 no CAPA, STLS refused", endpoint.POP3, pop3Fake{stls: "-ERR not supported"}.handle},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startFake(t, pki.server, false, tc.fake)
			ep := mkEndpoint(t, tc.proto, srv.addr, endpoint.STARTTLS, "alice")
			res := verify.Login(testCtx(t, 5*time.Second), ep, "secret", pki.trust)
			wantOutcome(t, res, verify.TLSError)
			if c := srv.gotCreds(); len(c) != 0 {
				t.Fatalf("credentials sent without TLS: %q", c)
			}
			for _, l := range srv.gotLines() {
				if u := strings.ToUpper(l); strings.Contains(u, "LOGIN") || strings.HasPrefix(u, "AUTH") || strings.HasPrefix(u, "USER") || strings.Contains(l, "secret") {
					t.Fatalf("client sent %q without TLS", l)
				}
			}
			t.Logf("detail: %s", res.Detail)
		})
	}
}

func TestLoginSilentServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn // only the accept goroutine appends
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // never answer
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range held {
			c.Close()
		}
	})
	const deadline = 300 * time.Millisecond
	for _, proto := range []endpoint.Protocol{endpoint.IMAP, endpoint.POP3, endpoint.SMTP} {
		for _, sec := range []endpoint.Security{endpoint.TLS, endpoint.STARTTLS, endpoint.Plain} {
			t.Run(fmt.Sprintf("%s/socketType=%d", proto, sec), func(t *testing.T) {
				t.Parallel()
				ep := mkEndpoint(t, proto, ln.Addr().String(), sec, "alice")
				ctx, cancel := context.WithTimeout(context.Background(), deadline)
				defer cancel()
				start := time.Now()
				res := verify.Login(ctx, ep, "pw", verify.Trust{})
				elapsed := time.Since(start)
				wantOutcome(t, res, verify.NetworkError)
				if !errors.Is(res.Err, context.DeadlineExceeded) {
					t.Errorf("Err = %v, want it to wrap context.DeadlineExceeded", res.Err)
				}
				if elapsed < deadline || elapsed > deadline+time.Second {
					t.Errorf("returned after %v, want about %v", elapsed, deadline)
				}
			})
		}
	}
}

func TestLoginResetMidAuth(t *testing.T) {
	pki := newFakePKI(t)
	reset := func(string, string) string { return "" }
	cases := []struct {
		proto endpoint.Protocol
		fake  func(*fakeConn)
	}{
		{endpoint.IMAP, imapFake{login: reset}.handle},
		{endpoint.SMTP, smtpFake{auth: reset}.handle},
		{endpoint.POP3, pop3Fake{capa: pop3Capa, pass: reset}.handle},
	}
	for _, tc := range cases {
		t.Run(string(tc.proto), func(t *testing.T) {
			srv := startFake(t, pki.server, true, tc.fake)
			ep := mkEndpoint(t, tc.proto, srv.addr, endpoint.TLS, "alice")
			res := verify.Login(testCtx(t, 5*time.Second), ep, "pw", pki.trust)
			wantOutcome(t, res, verify.NetworkError)
			if c := srv.gotCreds(); len(c) != 1 || c[0] != "alice:pw" {
				t.Fatalf("server saw %q, want exactly one attempt", c)
			}
			if n := srv.acceptedConns(); n != 1 {
				t.Fatalf("%d connections, want 1 (no retry)", n)
			}
			t.Logf("detail: %s", res.Detail)
		})
	}
}

// The account is configured without TLS and the server insists on it.
func TestLoginRefusedPlaintextFakes(t *testing.T) {
	cases := []struct {
		name  string
		proto endpoint.Protocol
		fake  func(*fakeConn)
		creds int // attempts the server sees (the refusal may come after)
	}{
		{"imap LOGINDISABLED", endpoint.IMAP, imapFake{caps: "IMAP4rev1 STARTTLS LOGINDISABLED"}.handle, 0},
		{"imap PRIVACYREQUIRED", endpoint.IMAP, imapFake{login: func(string, string) string {
			return "NO [PRIVACYREQUIRED] TLS required"
		}}.handle, 1},
		{"smtp 530", endpoint.SMTP, smtpFake{auth: func(string, string) string {
			return "530 5.7.0 Must issue a STARTTLS command first"
		}}.handle, 1},
		{"smtp 538", endpoint.SMTP, smtpFake{auth: func(string, string) string {
			return "538 5.7.11 Encryption required for requested authentication mechanism"
		}}.handle, 1},
		{"smtp no AUTH", endpoint.SMTP, smtpFake{exts: []string{"SIZE 1000"}}.handle, 0},
		{"pop3 USER refused", endpoint.POP3, pop3Fake{capa: []string{"STLS"}, user: "-ERR [AUTH] Plaintext authentication disallowed"}.handle, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startFake(t, nil, false, tc.fake)
			ep := mkEndpoint(t, tc.proto, srv.addr, endpoint.Plain, "alice")
			res := verify.Login(testCtx(t, 5*time.Second), ep, "pw", verify.Trust{})
			wantOutcome(t, res, verify.RefusedPlaintext)
			if c := srv.gotCreds(); len(c) != tc.creds {
				t.Fatalf("server saw %q, want %d attempts", c, tc.creds)
			}
		})
	}
}

func TestLoginNotPasswordAccount(t *testing.T) {
	// A dial would show up as an accepted connection before the sentinel.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, m := range []endpoint.AuthMethod{endpoint.AuthOAuth2, endpoint.AuthGSSAPI, endpoint.AuthNTLM, endpoint.AuthExternal, endpoint.AuthPasswordEncrypted, endpoint.AuthNone, endpoint.AuthSecure} {
		ep := mkEndpoint(t, endpoint.IMAP, ln.Addr().String(), endpoint.TLS, "alice")
		ep.AuthMethod = m
		res := verify.Login(testCtx(t, time.Second), ep, "pw", verify.Trust{})
		wantOutcome(t, res, verify.NotPasswordAccount)
		if res.Err == nil || res.Detail == "" {
			t.Errorf("Result = %+v, want an error and a detail", res)
		}
	}
	sentinel, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer sentinel.Close()
	first, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if first.RemoteAddr().String() != sentinel.LocalAddr().String() {
		t.Fatalf("Login dialed the server for an account without password")
	}
}

// A strict LOGIN-only server: no initial response allowed, challenges whose
// text is not "Password:".
func TestLoginSMTPLoginOnly(t *testing.T) {
	pki := newFakePKI(t)
	b64 := base64.StdEncoding.EncodeToString
	for _, challenges := range [][2]string{{"Username:", "Password:"}, {"User Name", "Pass Word"}, {"", ""}} {
		t.Run(challenges[0], func(t *testing.T) {
			strict := func(fc *fakeConn, line string) bool {
				if strings.ToUpper(line) != "AUTH LOGIN" {
					fc.send("535 5.7.3 initial response not accepted")
					return true
				}
				fc.send("334 " + b64([]byte(challenges[0])))
				u, ok := fc.recv()
				if !ok {
					return false
				}
				fc.send("334 " + b64([]byte(challenges[1])))
				p, ok := fc.recv()
				if !ok {
					return false
				}
				user, _ := base64.StdEncoding.DecodeString(u)
				pass, _ := base64.StdEncoding.DecodeString(p)
				fc.cred(string(user), string(pass))
				if string(user) == "alice" && string(pass) == "s3cret pw" {
					fc.send("235 2.7.0 ok")
				} else {
					fc.send("535 5.7.8 no")
				}
				return true
			}
			srv := startFake(t, pki.server, true, smtpFake{exts: []string{"AUTH LOGIN"}, authCmd: strict}.handle)
			ep := mkEndpoint(t, endpoint.SMTP, srv.addr, endpoint.TLS, "alice")
			res := verify.Login(testCtx(t, 5*time.Second), ep, "s3cret pw", pki.trust)
			wantOutcome(t, res, verify.OK)
			if c := srv.gotCreds(); len(c) != 1 {
				t.Fatalf("server saw %q", c)
			}
		})
	}
}

// replyPassword is long enough to be masked (redact.MinRunes), so that the
// server's own text is shown in the detail: with a shorter one it is
// withheld once the password was sent (echo_test.go).
const replyPassword = "Reply-pw-1"

func TestLoginSMTPReplies(t *testing.T) {
	pki := newFakePKI(t)
	cases := []struct {
		reply string
		want  verify.Outcome
	}{
		{"535 5.7.8 Authentication credentials invalid", verify.AuthFailed},
		{"535 Authentication failed", verify.AuthFailed},
		{"534 5.7.9 Application-specific password required", verify.AuthFailed},
		{"432 4.7.12 A password transition is needed", verify.PasswordExpired},
		{"535 5.7.12 Password expired", verify.PasswordExpired},
		{"535 5.7.8 Authentication failed: password expired", verify.PasswordExpired},
		{"454 4.7.0 Temporary authentication failure: password must be changed", verify.PasswordExpired},
		{"535 5.7.8 Authentication failed: expired", verify.AuthFailed},
		{"454 4.7.0 Temporary authentication failure", verify.Temporary},
		{"421 4.7.0 Try again later", verify.Temporary},
		{"504 5.5.4 Unrecognized authentication type", verify.ProtocolError},
		{"530 5.7.0 Must issue a STARTTLS command first", verify.TLSError},
		{"550 5.7.1 Relaying denied", verify.ProtocolError},
	}
	for _, tc := range cases {
		t.Run(tc.reply, func(t *testing.T) {
			srv := startFake(t, pki.server, true, smtpFake{auth: func(string, string) string { return tc.reply }}.handle)
			ep := mkEndpoint(t, endpoint.SMTP, srv.addr, endpoint.TLS, "alice")
			res := verify.Login(testCtx(t, 5*time.Second), ep, replyPassword, pki.trust)
			wantOutcome(t, res, tc.want)
			if res.Detail != tc.reply {
				t.Errorf("Detail = %q, want the server's reply %q", res.Detail, tc.reply)
			}
			if c := srv.gotCreds(); len(c) != 1 {
				t.Fatalf("server saw %d attempts, want 1", len(c))
			}
		})
	}
}

func TestLoginIMAPReplies(t *testing.T) {
	pki := newFakePKI(t)
	cases := []struct {
		reply string
		want  verify.Outcome
	}{
		{"NO [AUTHENTICATIONFAILED] Invalid credentials", verify.AuthFailed},
		{"NO Login failed", verify.AuthFailed},
		{"NO [EXPIRED] Password expired", verify.PasswordExpired},
		{"NO [EXPIRED] Authentication succeeded but the passphrase has lapsed", verify.PasswordExpired},
		{"NO [AUTHENTICATIONFAILED] Your password has expired", verify.PasswordExpired},
		{"NO [AUTHENTICATIONFAILED] Account expired", verify.AuthFailed},
		{"NO [CONTACTADMIN] Contact your administrator", verify.AuthFailed},
		{"NO [UNAVAILABLE] Backend down", verify.Temporary},
		{"NO [PRIVACYREQUIRED] TLS required", verify.TLSError},
		{"BAD Syntax error", verify.ProtocolError},
	}
	for _, tc := range cases {
		t.Run(tc.reply, func(t *testing.T) {
			srv := startFake(t, pki.server, true, imapFake{login: func(string, string) string { return tc.reply }}.handle)
			ep := mkEndpoint(t, endpoint.IMAP, srv.addr, endpoint.TLS, "alice")
			res := verify.Login(testCtx(t, 5*time.Second), ep, replyPassword, pki.trust)
			wantOutcome(t, res, tc.want)
			if res.Detail != tc.reply {
				t.Errorf("Detail = %q, want %q", res.Detail, tc.reply)
			}
		})
	}
}

func TestLoginPOP3Replies(t *testing.T) {
	pki := newFakePKI(t)
	cases := []struct {
		user, pass string
		want       verify.Outcome
	}{
		{"", "-ERR [AUTH] Invalid login", verify.AuthFailed},
		{"", "-ERR Invalid login", verify.AuthFailed},
		{"", "-ERR [SYS/PERM] Account disabled", verify.AuthFailed},
		{"", "-ERR [AUTH] Password expired", verify.PasswordExpired},
		{"", "-ERR [IN-USE] Mailbox locked", verify.Temporary},
		{"", "-ERR [SYS/TEMP] Try later", verify.Temporary},
		{"", "-ERR [LOGIN-DELAY] Too soon", verify.Temporary},
		{"-ERR [SYS/TEMP] Try later", "", verify.Temporary},
		{"-ERR [AUTH] No such user", "", verify.AuthFailed},
		{"-ERR Unknown command", "", verify.ProtocolError},
	}
	for _, tc := range cases {
		t.Run(tc.user+tc.pass, func(t *testing.T) {
			f := pop3Fake{capa: pop3Capa, user: tc.user}
			if tc.pass != "" {
				f.pass = func(string, string) string { return tc.pass }
			}
			srv := startFake(t, pki.server, true, f.handle)
			ep := mkEndpoint(t, endpoint.POP3, srv.addr, endpoint.TLS, "alice")
			res := verify.Login(testCtx(t, 5*time.Second), ep, replyPassword, pki.trust)
			wantOutcome(t, res, tc.want)
			if want := tc.user + tc.pass; res.Detail != want {
				t.Errorf("Detail = %q, want %q", res.Detail, want)
			}
		})
	}
}

func TestLoginGreetingRefused(t *testing.T) {
	pki := newFakePKI(t)
	cases := []struct {
		name  string
		proto endpoint.Protocol
		sec   endpoint.Security
		fake  func(*fakeConn)
		want  verify.Outcome
	}{
		{"imaps BYE UNAVAILABLE", endpoint.IMAP, endpoint.TLS, imapFake{greeting: "* BYE [UNAVAILABLE] Server busy"}.handle, verify.Temporary},
		{"imap starttls BYE UNAVAILABLE", endpoint.IMAP, endpoint.STARTTLS, imapFake{greeting: "* BYE [UNAVAILABLE] Server busy"}.handle, verify.Temporary},
		{"imap starttls BYE", endpoint.IMAP, endpoint.STARTTLS, imapFake{greeting: "* BYE go away"}.handle, verify.ProtocolError},
		{"imaps PREAUTH", endpoint.IMAP, endpoint.TLS, imapFake{greeting: "* PREAUTH welcome"}.handle, verify.ProtocolError},
		{"smtps 421", endpoint.SMTP, endpoint.TLS, smtpFake{greeting: "421 4.3.2 Too many connections"}.handle, verify.Temporary},
		{"smtp starttls 421", endpoint.SMTP, endpoint.STARTTLS, smtpFake{greeting: "421 4.3.2 Too many connections"}.handle, verify.Temporary},
		{"smtp starttls 554", endpoint.SMTP, endpoint.STARTTLS, smtpFake{greeting: "554 5.7.1 No service"}.handle, verify.ProtocolError},
		{"pop3s SYS/TEMP", endpoint.POP3, endpoint.TLS, pop3Fake{greeting: "-ERR [SYS/TEMP] busy"}.handle, verify.Temporary},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startFake(t, pki.server, tc.sec == endpoint.TLS, tc.fake)
			ep := mkEndpoint(t, tc.proto, srv.addr, tc.sec, "alice")
			res := verify.Login(testCtx(t, 5*time.Second), ep, "pw", pki.trust)
			wantOutcome(t, res, tc.want)
			if len(srv.gotCreds()) != 0 {
				t.Fatal("credentials sent")
			}
			t.Logf("detail: %s", res.Detail)
		})
	}
}

// IMAP over TLS with LOGINDISABLED but AUTH=PLAIN: AUTHENTICATE PLAIN.
func TestLoginIMAPAuthenticatePlain(t *testing.T) {
	pki := newFakePKI(t)
	srv := startFake(t, pki.server, true, imapFake{caps: "IMAP4rev1 LOGINDISABLED AUTH=PLAIN"}.handle)
	ep := mkEndpoint(t, endpoint.IMAP, srv.addr, endpoint.TLS, "alice")
	wantOutcome(t, verify.Login(testCtx(t, 5*time.Second), ep, "pw", pki.trust), verify.OK)
	if c := srv.gotCreds(); len(c) != 1 || c[0] != "alice:pw" {
		t.Fatalf("server saw %q", c)
	}
	for _, l := range srv.gotLines() {
		if strings.Contains(strings.ToUpper(l), " LOGIN ") {
			t.Fatalf("client sent LOGIN despite LOGINDISABLED: %q", l)
		}
	}
}

// Where the password waits for the server's "+" (a synchronising literal,
// AUTHENTICATE without SASL-IR), a server that answers OK before asking for
// it was never sent it: that is no verification. Where it goes with the
// command, OK is OK.
func TestLoginIMAPAcceptedBeforePassword(t *testing.T) {
	pki := newFakePKI(t)
	cases := []struct {
		name, caps, user, pass string
		waits                  bool
	}{
		{"quoted", "IMAP4rev1", "alice", "secret", false},
		{"8-bit password, literal", "IMAP4rev1", "alice", "perché-1", true},
		{"8-bit password, LITERAL+", "IMAP4rev1 LITERAL+", "alice", "perché-1", false},
		{"8-bit password, LITERAL-", "IMAP4rev1 LITERAL-", "alice", "perché-1", false},
		{"8-bit password, IMAP4rev2 quotes UTF-8", "IMAP4rev2", "alice", "perché-1", false},
		{"8-bit user name, literal", "IMAP4rev1", "niccolò", "secret", true},
		{"AUTHENTICATE, SASL-IR", "IMAP4rev1 LOGINDISABLED AUTH=PLAIN SASL-IR", "alice", "secret", false},
		{"AUTHENTICATE without SASL-IR", "IMAP4rev1 LOGINDISABLED AUTH=PLAIN", "alice", "secret", true},
	}
	for _, conn := range []struct {
		name string
		sec  endpoint.Security
		caps string // added to the case's
	}{{"imaps", endpoint.TLS, ""}, {"starttls", endpoint.STARTTLS, " STARTTLS"}} {
		for _, tc := range cases {
			for _, early := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/early=%v", conn.name, tc.name, early), func(t *testing.T) {
					srv := startFake(t, pki.server, conn.sec == endpoint.TLS, imapFake{caps: tc.caps + conn.caps, early: early}.handle)
					ep := mkEndpoint(t, endpoint.IMAP, srv.addr, conn.sec, tc.user)
					res := verify.Login(testCtx(t, 5*time.Second), ep, tc.pass, pki.trust)
					creds := srv.gotCreds()
					if early && tc.waits {
						wantOutcome(t, res, verify.ProtocolError)
						if len(creds) != 0 {
							t.Fatalf("server saw %q", creds)
						}
						return
					}
					wantOutcome(t, res, verify.OK)
					if want := tc.user + ":" + tc.pass; len(creds) != 1 || creds[0] != want {
						t.Fatalf("server saw %q, want %q", creds, want)
					}
				})
			}
		}
	}
}

// The server puts the password in its reply; it must not reach Detail or Err.
func TestLoginPasswordNeverInDetail(t *testing.T) {
	pki := newFakePKI(t)
	const pw = "Tr0ub4dor&3-secret"
	echo := func(prefix string) func(string, string) string {
		return func(_, pass string) string { return prefix + " wrong password " + pass + " for you" }
	}
	cases := []struct {
		proto endpoint.Protocol
		fake  func(*fakeConn)
	}{
		{endpoint.IMAP, imapFake{login: echo("NO [AUTHENTICATIONFAILED]")}.handle},
		{endpoint.SMTP, smtpFake{auth: echo("535 5.7.8")}.handle},
		{endpoint.POP3, pop3Fake{capa: pop3Capa, pass: echo("-ERR [AUTH]")}.handle},
	}
	for _, tc := range cases {
		t.Run(string(tc.proto), func(t *testing.T) {
			srv := startFake(t, pki.server, true, tc.fake)
			ep := mkEndpoint(t, tc.proto, srv.addr, endpoint.TLS, "alice")
			res := verify.Login(testCtx(t, 5*time.Second), ep, pw, pki.trust)
			wantOutcome(t, res, verify.AuthFailed)
			if strings.Contains(res.Detail, pw) || strings.Contains(res.Err.Error(), pw) {
				t.Fatalf("password leaked: detail %q, err %q", res.Detail, res.Err)
			}
			if !strings.Contains(res.Detail, "wrong password *** for you") {
				t.Fatalf("Detail = %q, want the server's text with the password masked", res.Detail)
			}
		})
	}
}

// A POP3 server whose CAPA lacks USER without TLS (Dovecot with plaintext
// authentication disabled) must not even see USER: Dovecot logs it as a
// failed login, which counts towards a lockout.
func TestLoginPOP3PlainWithoutUSERCapability(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	seen := make(chan []string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		io.WriteString(c, "+OK ready\r\n")
		var cmds []string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				seen <- cmds
				return
			}
			verb, _, _ := strings.Cut(strings.TrimSpace(line), " ")
			cmds = append(cmds, verb)
			switch verb {
			case "CAPA":
				io.WriteString(c, "+OK\r\nSTLS\r\nUIDL\r\n.\r\n")
			case "QUIT":
				io.WriteString(c, "+OK bye\r\n")
			default:
				io.WriteString(c, "-ERR [AUTH] Plaintext authentication disallowed\r\n")
			}
		}
	}()
	ep := mkEndpoint(t, endpoint.POP3, ln.Addr().String(), endpoint.Plain, "alice")
	res := verify.Login(testCtx(t, 5*time.Second), ep, "pw", verify.Trust{})
	wantOutcome(t, res, verify.RefusedPlaintext)
	if cmds := <-seen; slices.Contains(cmds, "USER") || slices.Contains(cmds, "PASS") {
		t.Fatalf("the server saw %v", cmds)
	}
}
