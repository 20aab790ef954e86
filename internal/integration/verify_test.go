//go:build integration

package integration

import (
	"strings"
	"testing"
)

// TestVerifyCLI runs `credsync verify` against Dovecot and Postfix.
func TestVerifyCLI(t *testing.T) {
	s := needStack(t)
	alice, alicePW := s.Get("MAILSTACK_FILE_USER"), s.Get("MAILSTACK_FILE_PASSWORD")
	niccolo, niccoloPW := s.Get("MAILSTACK_UTF8_USER"), s.Get("MAILSTACK_UTF8_PASSWORD")
	ca := []string{"--ca-file", s.Get("MAILSTACK_CA")}
	type want struct {
		code      int
		incoming  string // outcome; "" = no incoming line expected
		outgoing  string
		detailIn  string // substring of the incoming line
		detailOut string
	}
	for _, tc := range []struct {
		name     string
		password string
		args     []string
		want     want
	}{
		{"IMAP STARTTLS + submission STARTTLS", alicePW,
			append([]string{"--incoming", s.url("imap", alice, "IMAP"), "--outgoing", s.url("smtp", alice, "SUBMISSION")}, ca...),
			want{code: 0, incoming: "ok", outgoing: "ok"}},
		{"IMAPS + submissions", alicePW,
			append([]string{"--incoming", s.url("imaps", alice, "IMAPS"), "--outgoing", s.url("smtps", alice, "SUBMISSIONS")}, ca...),
			want{code: 0, incoming: "ok", outgoing: "ok"}},
		{"POP3 STLS", alicePW, append([]string{"--incoming", s.url("pop3", alice, "POP3")}, ca...),
			want{code: 0, incoming: "ok"}},
		{"POP3S", alicePW, append([]string{"--incoming", s.url("pop3s", alice, "POP3S")}, ca...),
			want{code: 0, incoming: "ok"}},
		{"a password that is not ASCII, IMAP STARTTLS + submission STARTTLS", niccoloPW,
			append([]string{"--incoming", s.url("imap", niccolo, "IMAP"), "--outgoing", s.url("smtp", niccolo, "SUBMISSION")}, ca...),
			want{code: 0, incoming: "ok", outgoing: "ok"}},
		{"a password that is not ASCII, POP3S", niccoloPW, append([]string{"--incoming", s.url("pop3s", niccolo, "POP3S")}, ca...),
			want{code: 0, incoming: "ok"}},
		{"LDAP user through Dovecot's auth bind", s.Password("dave"),
			append([]string{"--incoming", s.url("imaps", "dave", "IMAPS"), "--outgoing", s.url("smtp", "dave@example.test", "SUBMISSION")}, ca...),
			want{code: 0, incoming: "ok", outgoing: "ok"}},

		{"wrong password IMAP + submission", "Wrong-Pass1!",
			append([]string{"--incoming", s.url("imap", alice, "IMAP"), "--outgoing", s.url("smtp", alice, "SUBMISSION")}, ca...),
			want{code: 1, incoming: "auth_failed", outgoing: "auth_failed", detailIn: "AUTHENTICATIONFAILED", detailOut: "535"}},
		{"wrong password POP3S + submissions", "Wrong-Pass1!",
			append([]string{"--incoming", s.url("pop3s", alice, "POP3S"), "--outgoing", s.url("smtps", alice, "SUBMISSIONS")}, ca...),
			want{code: 1, incoming: "auth_failed", outgoing: "auth_failed"}},
		{"wrong password that is not ASCII, IMAPS + submissions", "Perché-No-2026!",
			append([]string{"--incoming", s.url("imaps", niccolo, "IMAPS"), "--outgoing", s.url("smtps", niccolo, "SUBMISSIONS")}, ca...),
			want{code: 1, incoming: "auth_failed", outgoing: "auth_failed", detailIn: "AUTHENTICATIONFAILED", detailOut: "535"}},
		{"wrong password POP3 STLS", "Wrong-Pass1!", append([]string{"--incoming", s.url("pop3", alice, "POP3")}, ca...),
			want{code: 1, incoming: "auth_failed"}},

		{"untrusted certificate, implicit TLS", alicePW,
			[]string{"--incoming", s.url("imaps", alice, "IMAPS"), "--outgoing", s.url("smtps", alice, "SUBMISSIONS")},
			want{code: 1, incoming: "tls_error", outgoing: "tls_error", detailIn: "certificate"}},
		{"untrusted certificate, STARTTLS", alicePW,
			[]string{"--incoming", s.url("imap", alice, "IMAP"), "--outgoing", s.url("smtp", alice, "SUBMISSION")},
			want{code: 1, incoming: "tls_error", outgoing: "tls_error"}},
		{"untrusted certificate, POP3 STLS", alicePW, []string{"--incoming", s.url("pop3", alice, "POP3")},
			want{code: 1, incoming: "tls_error"}},

		{"STARTTLS required but not offered", alicePW, append([]string{"--outgoing", s.url("smtp", alice, "SMTP_NOTLS")}, ca...),
			want{code: 1, outgoing: "tls_error", detailOut: "STARTTLS"}},
		{"plaintext refused by submission", alicePW, []string{"--outgoing", s.url("smtp+insecure", alice, "SUBMISSION")},
			want{code: 1, outgoing: "refused_plaintext"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runVerify(t, tc.password, tc.args...)
			if r.code != tc.want.code {
				t.Errorf("exit status %d, want %d\nstdout: %s\nstderr: %s", r.code, tc.want.code, r.stdout, r.stderr)
			}
			checkSide(t, r, "incoming", tc.want.incoming, tc.want.detailIn)
			checkSide(t, r, "outgoing", tc.want.outgoing, tc.want.detailOut)
		})
	}
}

// TestVerifyRefusedPlaintext: Dovecot refuses to authenticate without TLS a
// client that is not on its own address, and credsync sends no password
// (Dovecot never checks one).
// (From 127.0.0.1 itself Dovecot counts the connection as secured and
// accepts plaintext, so the test connects through a relay from 127.0.0.2.)
func TestVerifyRefusedPlaintext(t *testing.T) {
	s := needStack(t)
	alice, alicePW := s.Get("MAILSTACK_FILE_USER"), s.Get("MAILSTACK_FILE_PASSWORD")
	user := strings.ReplaceAll(alice, "@", "%40")
	for _, tc := range []struct{ scheme, port string }{{"imap+insecure", "IMAP"}, {"pop3+insecure", "POP3"}} {
		t.Run(tc.scheme, func(t *testing.T) {
			relay := nonLocalRelay(t, s.Addr(tc.port))
			mark := markLog(t, s.Get("MAILSTACK_DOVECOT_LOG"))
			r := runVerify(t, alicePW, "--incoming", tc.scheme+"://"+user+"@"+relay)
			if r.code != 1 {
				t.Errorf("exit status %d, want 1\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
			}
			checkSide(t, r, "incoming", "refused_plaintext", "")
			if n := settle(t, mark, 0, 0, countPassdbLookups(alice)); n != 0 {
				t.Errorf("Dovecot checked a password %d times, want never:\n%s", n, strings.Join(logLines(t, mark), "\n"))
			}
			// The relay really made Dovecot see a non-local client.
			var seen bool
			for _, l := range logLines(t, mark) {
				seen = seen || strings.Contains(l, "rip=127.0.0.2")
			}
			if !seen {
				t.Errorf("Dovecot did not log a connection from 127.0.0.2:\n%s", strings.Join(logLines(t, mark), "\n"))
			}
		})
	}
}

func checkSide(t *testing.T, r verifyResult, side, outcome, detail string) {
	t.Helper()
	line := r.line(side)
	switch {
	case outcome == "" && line != "":
		t.Errorf("unexpected %q", line)
	case outcome == "":
	case r.outcome(side) != outcome:
		t.Errorf("%s: got %q, want %s\nstdout: %s\nstderr: %s", side, line, outcome, r.stdout, r.stderr)
	case detail != "" && !strings.Contains(line, detail):
		t.Errorf("%s: %q does not mention %q", side, line, detail)
	}
}
