//go:build e2e && integration && !windows

package e2e

// End-to-end tests against the real mail stack (scripts/mailstack: Dovecot,
// Postfix and OpenLDAP on 127.0.0.1), run only with both build tags and the
// stack up:
//
//	scripts/mailstack start
//	go test -tags 'e2e integration' -run Stack ./internal/e2e/
//
// or `make test-e2e-stack`, which starts and stops the stack and sets
// CREDSYNC_E2E_STACK=required (then a stack that is not up fails the tests
// instead of skipping them). MAILSTACK_DIR names the stack's state
// directory (default /tmp/credsync-mailstack).

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/credsync/credsync/internal/testkit/mailstack"
	"github.com/credsync/credsync/internal/testkit/tbharness"
)

// needMailStack loads the stack's env file and checks that its ports
// answer; it skips the test otherwise (fails with CREDSYNC_E2E_STACK=required).
func needMailStack(t *testing.T) *mailstack.Stack {
	t.Helper()
	s, err := mailstack.Load(mailstack.EnvPath())
	if err == nil {
		if upErr := s.Up("IMAPS", "SUBMISSION", "LDAP"); upErr != nil {
			err = fmt.Errorf("the mail stack in %s is not running: %w", mailstack.Dir(), upErr)
		}
	}
	if err != nil {
		msg := fmt.Sprintf("%v: run `scripts/mailstack start` first, or `make test-e2e-stack`", err)
		if os.Getenv("CREDSYNC_E2E_STACK") == "required" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return s
}

// ldapURL is the ldap back-end's URL for the stack's directory
// (internal/provider/ldap.go: StartTLS, bind DN template with %n).
func ldapURL(st *mailstack.Stack) string {
	return "ldap://" + st.Addr("LDAP") + "/uid=%n," + st.Get("MAILSTACK_LDAP_PEOPLE")
}

func markLog(t *testing.T, path string) mailstack.LogMark {
	t.Helper()
	m, err := mailstack.MarkLog(path)
	if err != nil {
		t.Fatalf("log file: %v", err)
	}
	return m
}

// logLines returns the complete lines written since m.
func logLines(t *testing.T, m mailstack.LogMark) []string {
	t.Helper()
	lines, err := m.Lines()
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

// waitLines waits (up to wait) until count(lines since m) reaches want, a
// little more for a surplus line, and returns the lines.
func waitLines(t *testing.T, m mailstack.LogMark, want int, wait time.Duration, count func([]string) int) []string {
	t.Helper()
	lines, err := m.Wait(want, wait, 300*time.Millisecond, count)
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

func countMatching(re *regexp.Regexp) func([]string) int {
	return func(lines []string) int {
		n := 0
		for _, l := range lines {
			if re.MatchString(l) {
				n++
			}
		}
		return n
	}
}

// slapdBinds counts the binds as dn in slapd's `-d stats` log that
// succeeded (RESULT err=0) and that failed (any other err).
func slapdBinds(lines []string, dn string) (ok, failed int) {
	pending := map[string]bool{} // "conn=… op=…" of a BIND as dn
	bind := regexp.MustCompile(`(conn=\d+ op=\d+) BIND dn="([^"]*)" method=`)
	result := regexp.MustCompile(`(conn=\d+ op=\d+) RESULT tag=97 err=(\d+)`)
	for _, l := range lines {
		if m := bind.FindStringSubmatch(l); m != nil && strings.EqualFold(m[2], dn) {
			pending[m[1]] = true
		} else if m := result.FindStringSubmatch(l); m != nil && pending[m[1]] {
			delete(pending, m[1])
			if m[2] == "0" {
				ok++
			} else {
				failed++
			}
		}
	}
	return ok, failed
}

// TestStack: a password change through the popup with the ldap back-end
// against the real stack, on Thunderbird 153 and 140.
func TestStack(t *testing.T) {
	st := needMailStack(t)
	for _, name := range []string{"153", "140"} {
		t.Run(name, func(t *testing.T) {
			e := newEnvWithCAs(t, thunderbird(t, name), "stack-"+name, [][]byte{st.CAPEM})
			start := time.Now()
			t.Run("ldap_change", func(t *testing.T) { e.testStackLDAPChange(t, st) })
			t.Logf("Thunderbird %s: start %s, scenarios %s", name,
				e.tb.StartDuration.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		})
	}
}

// The user of an IMAP+SMTP account on the real Dovecot and Postfix, whose
// password lives in OpenLDAP (Dovecot checks it with an LDAP bind, so a
// change applies to IMAP and SMTP at once), changes it in the popup with
// the ldap back-end (RFC 3062 Password Modify over StartTLS). Both saved
// logins then hold the new password, and Thunderbird itself logs in to
// Dovecot and Postfix with it, unasked: the servers' logs show the
// successful logins (a real server cannot tell which password it got).
// The user's password is restored afterwards.
func (e *env) testStackLDAPChange(t *testing.T, st *mailstack.Stack) {
	const user = "dave"
	login := user + "@" + st.Get("MAILSTACK_DOMAIN")
	old := st.Get("MAILSTACK_PASSWORD_" + user)
	if old == "" {
		t.Fatalf("no password for %s in the stack's env file", user)
	}
	// Each Thunderbird its own new password; the old one whatever an
	// earlier run left.
	new := "Dave-e2e-" + e.name + "-pw!"
	if err := st.SetPassword(user, old); err != nil {
		t.Fatalf("setting %s's password: %v", user, err)
	}
	t.Cleanup(func() {
		if err := st.SetPassword(user, old); err != nil {
			t.Errorf("restoring %s's password: %v", user, err)
		}
	})
	host := st.Host()
	s := e.newScenarioWith(t, tbharness.AccountSpec{
		Type: "imap",
		Incoming: tbharness.ServerSpec{Host: host, Port: st.Port("IMAPS"), SocketType: tbharness.SocketSSL,
			AuthMethod: tbharness.AuthPasswordCleartext, Username: login, Password: old},
		SMTP: &tbharness.ServerSpec{Host: host, Port: st.Port("SUBMISSION"), SocketType: tbharness.SocketSTARTTLS,
			AuthMethod: tbharness.AuthPasswordCleartext, Username: login, Password: old},
		Email: login,
	}, old, new, "ldap", ldapURL(st))

	slapdBefore := markLog(t, st.Get("MAILSTACK_SLAPD_LOG"))
	o := s.change()
	s.wantSuccess(o, true)
	if ok, _ := slapdBinds(logLines(t, slapdBefore), st.UserDN(user)); ok == 0 {
		t.Errorf("slapd logged no successful bind as %s during the change", st.UserDN(user))
	}
	origin := "imap://" + host
	s.wantLogin(origin, login, new)
	s.wantLogin("smtp://"+host, login, new)
	s.wantOneLogin(origin, login)
	s.wantOneLogin("smtp://"+host, login)
	s.noPrompts()

	// Thunderbird's own logins, after the change: IMAP (verifyLogon) to
	// Dovecot, then SMTP (its SMTP client: AUTH, QUIT) to Postfix.
	dovecot := markLog(t, st.Get("MAILSTACK_DOVECOT_LOG"))
	postfix := markLog(t, st.Get("MAILSTACK_POSTFIX_LOG"))
	slapd := markLog(t, st.Get("MAILSTACK_SLAPD_LOG"))
	if err := e.tb.ClearPrompts(s.ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r, err := e.tb.VerifyIncoming(s.ctx, s.acct.Key, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.TimedOut || r.Code != 0 {
		t.Errorf("Thunderbird's IMAP login to Dovecot: %+v", r)
	}
	if r, err = e.tb.SMTPLogon(s.ctx, s.acct.SMTPKey, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if r.TimedOut || r.Code != 0 {
		t.Errorf("Thunderbird's SMTP login to Postfix: %+v", r)
	}
	imapOK := regexp.MustCompile(`imap-login: Info: Login: user=<` + regexp.QuoteMeta(login) + `>, method=`)
	dovecotFailed := regexp.MustCompile(`auth failed.*user=<` + regexp.QuoteMeta(login) + `>|(?i)\(` + regexp.QuoteMeta(login) + `,[^)]*\).*(mismatch|invalid credentials)`)
	// A session whose AUTH succeeded (auth=1; a failed one is auth=0/1).
	smtpOK := regexp.MustCompile(`postfix/submission/smtpd\[\d+\]: disconnect from .* auth=1 .*quit=1`)
	smtpFailed := regexp.MustCompile(`postfix/submission/smtpd\[\d+\]: (disconnect from .* auth=\d+/\d+|warning: .*SASL .* authentication failed)`)

	dl := waitLines(t, dovecot, 1, 20*time.Second, countMatching(imapOK))
	if n := countMatching(imapOK)(dl); n < 1 {
		t.Errorf("Dovecot logged no successful IMAP login for %s after the change:\n%s", login, strings.Join(dl, "\n"))
	}
	if n := countMatching(dovecotFailed)(dl); n != 0 {
		t.Errorf("Dovecot logged %d failed logins for %s:\n%s", n, login, strings.Join(dl, "\n"))
	}
	pl := waitLines(t, postfix, 1, 20*time.Second, countMatching(smtpOK))
	if n := countMatching(smtpOK)(pl); n != 1 {
		t.Errorf("Postfix logged %d submission sessions with a successful AUTH after the change, want 1:\n%s", n, strings.Join(pl, "\n"))
	}
	if n := countMatching(smtpFailed)(pl); n != 0 {
		t.Errorf("Postfix logged %d failed authentications:\n%s", n, strings.Join(pl, "\n"))
	}
	// Dovecot checks every login (IMAP, and SMTP through Postfix's SASL) by
	// binding as the user: at least two successful binds, none refused.
	// (Thunderbird may open a second IMAP connection after verifyLogon.)
	ok, failed := slapdBinds(logLines(t, slapd), st.UserDN(user))
	if ok < 2 || failed != 0 {
		t.Errorf("slapd: %d successful and %d failed binds as %s after the change, want at least 2 and 0", ok, failed, st.UserDN(user))
	}
	if !t.Failed() {
		t.Logf("Thunderbird logged in to Dovecot and Postfix with the new password in %s (logs: %d IMAP logins, %d SMTP sessions, %d LDAP binds)",
			time.Since(start).Round(time.Millisecond), countMatching(imapOK)(dl), countMatching(smtpOK)(pl), ok)
	}
	s.noPrompts()

	// The new password is the directory's: a bind with it works.
	if err := st.Bind(st.UserDN(user), new, func(*ldap.Conn) error { return nil }); err != nil {
		t.Errorf("binding as %s with the new password: %v", user, err)
	}
}
