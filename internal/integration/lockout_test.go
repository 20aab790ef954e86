//go:build integration

package integration

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/testkit/mailstack"
)

// TestOneAttemptPerProtocol: a wrong password costs exactly one failed
// authentication per protocol in the servers' own logs (what lockout
// policies count), and network or TLS errors cost none.
func TestOneAttemptPerProtocol(t *testing.T) {
	s := needStack(t)
	alice := s.Get("MAILSTACK_FILE_USER")
	ca := []string{"--ca-file", s.Get("MAILSTACK_CA")}
	const wrong = "Wrong-Pass1!"
	logs := func(t *testing.T) (dovecot, postfix, slapd mailstack.LogMark) {
		return markLog(t, s.Get("MAILSTACK_DOVECOT_LOG")), markLog(t, s.Get("MAILSTACK_POSTFIX_LOG")), markLog(t, s.Get("MAILSTACK_SLAPD_LOG"))
	}
	expectOne := func(t *testing.T, r verifyResult, dovecot, postfix mailstack.LogMark, login, user, service string) {
		t.Helper()
		if r.code != 1 || r.outcome("incoming") != "auth_failed" || r.outcome("outgoing") != "auth_failed" {
			t.Fatalf("credsync verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if n := settle(t, dovecot, 1, 5*time.Second, countLoginFailures(login, user)); n != 1 {
			t.Errorf("Dovecot %s logged %d failed authentication attempts, want 1:\n%s", login, n, strings.Join(logLines(t, dovecot), "\n"))
		}
		if n := settle(t, postfix, 1, 5*time.Second, countSASLFailures(service, user)); n != 1 {
			t.Errorf("Postfix %s logged %d failed SASL authentications, want 1:\n%s", service, n, strings.Join(logLines(t, postfix), "\n"))
		}
	}

	t.Run("IMAP STARTTLS and submission", func(t *testing.T) {
		dovecot, postfix, _ := logs(t)
		r := runVerify(t, wrong, append([]string{"--incoming", s.url("imap", alice, "IMAP"), "--outgoing", s.url("smtp", alice, "SUBMISSION")}, ca...)...)
		expectOne(t, r, dovecot, postfix, "imap-login", alice, "submission")
	})
	t.Run("POP3S and submissions", func(t *testing.T) {
		dovecot, postfix, _ := logs(t)
		r := runVerify(t, wrong, append([]string{"--incoming", s.url("pop3s", alice, "POP3S"), "--outgoing", s.url("smtps", alice, "SUBMISSIONS")}, ca...)...)
		expectOne(t, r, dovecot, postfix, "pop3-login", alice, "submissions")
	})
	t.Run("LDAP user: one failed bind per protocol in the directory", func(t *testing.T) {
		dovecot, postfix, slapd := logs(t)
		r := runVerify(t, wrong, append([]string{"--incoming", s.url("imaps", "dave@example.test", "IMAPS"), "--outgoing", s.url("smtp", "dave@example.test", "SUBMISSION")}, ca...)...)
		expectOne(t, r, dovecot, postfix, "imap-login", "dave@example.test", "submission")
		if n := settle(t, slapd, 2, 5*time.Second, countFailedBinds(s.UserDN("dave"))); n != 2 {
			t.Errorf("slapd logged %d failed binds as dave, want 2 (IMAP + SMTP):\n%s", n, strings.Join(logLines(t, slapd), "\n"))
		}
	})
	t.Run("network and TLS errors cost nothing", func(t *testing.T) {
		dovecot, postfix, slapd := logs(t)
		r := runVerify(t, wrong, append([]string{"--incoming", "imaps://alice@" + closedAddr(t), "--outgoing", "smtps://alice@" + closedAddr(t)}, ca...)...)
		if r.code != 1 || r.outcome("incoming") != "network_error" || r.outcome("outgoing") != "network_error" {
			t.Errorf("closed ports: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		// No --ca-file: the stack's certificate is not trusted.
		r = runVerify(t, wrong, "--incoming", s.url("imaps", alice, "IMAPS"), "--outgoing", s.url("smtp", alice, "SUBMISSION"))
		if r.code != 1 || r.outcome("incoming") != "tls_error" || r.outcome("outgoing") != "tls_error" {
			t.Errorf("untrusted certificate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		r = runVerify(t, wrong, "--incoming", s.url("pop3", alice, "POP3"))
		if r.code != 1 || r.outcome("incoming") != "tls_error" {
			t.Errorf("untrusted certificate (POP3): exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		all := func(lines []string) int {
			return countLoginFailures("imap-login", "")(lines) + countLoginFailures("pop3-login", "")(lines) + countDovecotAuthLines(lines)
		}
		if n := settle(t, dovecot, 0, 0, all); n != 0 {
			t.Errorf("Dovecot logged %d authentication events:\n%s", n, strings.Join(logLines(t, dovecot), "\n"))
		}
		if n := countSASLFailures("", "")(logLines(t, postfix)); n != 0 {
			t.Errorf("Postfix logged %d SASL failures:\n%s", n, strings.Join(logLines(t, postfix), "\n"))
		}
		if n := countFailedBinds("")(logLines(t, slapd)); n != 0 {
			t.Errorf("slapd logged %d failed binds:\n%s", n, strings.Join(logLines(t, slapd), "\n"))
		}
	})
}

// loginFailure matches Dovecot's login-process summary of a connection:
// "imap-login: Info: Disconnected: Connection closed (auth failed, 1
// attempts in 0 secs): user=<alice@example.test>, method=PLAIN, …".
var loginFailure = regexp.MustCompile(`^.*? ([a-z0-9]+-login): .*\(auth failed, (\d+) attempts.*? user=<([^>]*)>`)

// countLoginFailures sums the failed attempts the login process (imap-login,
// pop3-login) reports for user ("" = anyone).
func countLoginFailures(login, user string) func([]string) int {
	return func(lines []string) int {
		n := 0
		for _, l := range lines {
			m := loginFailure.FindStringSubmatch(l)
			if m == nil || m[1] != login || user != "" && m[3] != user {
				continue
			}
			k, _ := strconv.Atoi(m[2])
			n += k
		}
		return n
	}
}

// countPassdbLookups counts the times Dovecot checked a password of user: a
// passdb verdict of the auth process or a successful login. (A refused
// plaintext USER in POP3 shows as "auth failed, 1 attempts" in the login
// process's summary although no password was sent or checked.)
func countPassdbLookups(user string) func([]string) int {
	return func(lines []string) int {
		n := 0
		for _, l := range lines {
			if strings.Contains(l, "Login: user=<"+user+">") || strings.Contains(l, " auth: ") && strings.Contains(l, "("+user+",") {
				n++
			}
		}
		return n
	}
}

// countDovecotAuthLines counts the auth process's passdb verdicts.
func countDovecotAuthLines(lines []string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l, " auth: ") && (strings.Contains(l, "Password mismatch") || strings.Contains(l, "unknown user")) {
			n++
		}
	}
	return n
}

// countSASLFailures counts Postfix's "warning: …: SASL PLAIN authentication
// failed: …, sasl_username=alice@example.test" lines of service
// ("submission", "submissions"; "" = any) for user ("" = anyone).
func countSASLFailures(service, user string) func([]string) int {
	return func(lines []string) int {
		n := 0
		for _, l := range lines {
			if !strings.Contains(l, "SASL ") || !strings.Contains(l, "authentication failed") {
				continue
			}
			if service != "" && !strings.Contains(l, " postfix/"+service+"/smtpd[") {
				continue
			}
			if user != "" && !strings.HasSuffix(l, "sasl_username="+user) {
				continue
			}
			n++
		}
		return n
	}
}

var (
	slapdBind   = regexp.MustCompile(`\b(conn=\d+ op=\d+) BIND dn="([^"]*)" method=`)
	slapdResult = regexp.MustCompile(`\b(conn=\d+ op=\d+) RESULT tag=97 err=49\b`)
)

// countFailedBinds counts binds as dn ("" = any) that slapd answered with
// invalidCredentials (49), from its `-d stats` log.
func countFailedBinds(dn string) func([]string) int {
	return func(lines []string) int {
		binds := map[string]string{}
		n := 0
		for _, l := range lines {
			if m := slapdBind.FindStringSubmatch(l); m != nil {
				binds[m[1]] = m[2]
			} else if m := slapdResult.FindStringSubmatch(l); m != nil {
				if d, ok := binds[m[1]]; ok && (dn == "" || strings.EqualFold(d, dn)) {
					n++
				}
			}
		}
		return n
	}
}
