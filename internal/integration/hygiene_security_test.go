//go:build integration

package integration

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/testkit/security"
)

// runChange runs `credsync change` with the current and the new password
// on standard input.
func runChange(t *testing.T, current, next string, args ...string) verifyResult {
	t.Helper()
	return runCredsync(t, 60*time.Second, current+"\n"+next+"\n", append([]string{"change", "--password-stdin", "--timeout", "20s"}, args...)...)
}

// TestCanaryHygieneRealStack runs the canary password through the real
// servers — failed logins to Dovecot (IMAP, POP3) and Postfix, a change in
// the directory with the ldap back-end, logins with it, a change through
// Roundcube — then looks for it, in every encoding, in everything the
// stack logged ($MAILSTACK_DIR/logs: Dovecot, Postfix, slapd with -d stats,
// Roundcube and PHP) and in credsync's own output. The servers' logs are
// expected to hold user names and failures, never a password.
func TestCanaryHygieneRealStack(t *testing.T) {
	s := needStack(t)
	canary := security.Canary
	ca := []string{"--ca-file", s.Get("MAILSTACK_CA")}
	alice := s.Get("MAILSTACK_FILE_USER")
	dovecot := markLog(t, s.Get("MAILSTACK_DOVECOT_LOG"))
	var outputs []security.Finding
	keep := func(what string, r verifyResult) {
		outputs = append(outputs, security.ScanBytes(what, []byte(r.stdout+r.stderr), canary)...)
	}

	// Refused logins: the servers log the failures.
	r := runVerify(t, canary, append([]string{"--incoming", s.url("imaps", alice, "IMAPS"), "--outgoing", s.url("smtp", alice, "SUBMISSION")}, ca...)...)
	if r.code != 1 || r.outcome("incoming") != "auth_failed" || r.outcome("outgoing") != "auth_failed" {
		t.Fatalf("credsync verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	keep("credsync verify", r)
	r = runVerify(t, canary, append([]string{"--incoming", s.url("pop3s", alice, "POP3S"), "--outgoing", s.url("smtps", alice, "SUBMISSIONS")}, ca...)...)
	keep("credsync verify", r)

	// A change in the directory, then logins with the canary.
	const bob = "bob"
	original := s.Password(bob)
	t.Cleanup(func() { s.resetLDAPPassword(t, bob, original) })
	bobURLs := []string{"--incoming", s.url("imaps", bob+"@example.test", "IMAPS"), "--outgoing", s.url("smtp", bob+"@example.test", "SUBMISSION")}
	r = runChange(t, original, canary, append(append([]string{"--backend", "ldap",
		"--backend-url", "ldaps://" + s.Addr("LDAPS") + "/uid=%n," + s.Get("MAILSTACK_LDAP_PEOPLE")}, bobURLs...), ca...)...)
	if r.code != 0 {
		t.Fatalf("credsync change (ldap): exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	keep("credsync change", r)
	r = runVerify(t, canary, append(bobURLs, ca...)...)
	if r.code != 0 {
		t.Fatalf("credsync verify with the new password: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	keep("credsync verify", r)
	r = runChange(t, canary+"-wrong", canary+"-2", append(append([]string{"--backend", "ldap",
		"--backend-url", "ldaps://" + s.Addr("LDAPS") + "/uid=%n," + s.Get("MAILSTACK_LDAP_PEOPLE")}, bobURLs...), ca...)...)
	if r.code != 1 {
		t.Fatalf("credsync change with a wrong current password: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	keep("credsync change", r)

	// Through Roundcube, whose logs are a web application's.
	if url := s.Get("MAILSTACK_ROUNDCUBE_URL"); url != "" {
		const carol = "carol"
		orig := s.Password(carol)
		t.Cleanup(func() { s.resetLDAPPassword(t, carol, orig) })
		r = runChange(t, orig, canary, append([]string{"--backend", "roundcube", "--backend-url", url,
			"--incoming", s.url("imaps", carol+"@example.test", "IMAPS"), "--outgoing", s.url("smtp", carol+"@example.test", "SUBMISSION")}, ca...)...)
		if r.code != 0 {
			t.Fatalf("credsync change (roundcube): exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		keep("credsync change", r)
	}

	// The scans. The servers did log these flows (not a vacuous scan).
	failures := func(lines []string) int {
		return countLoginFailures("imap-login", alice)(lines) + countLoginFailures("pop3-login", alice)(lines)
	}
	if n := settle(t, dovecot, 2, 5*time.Second, failures); n < 2 {
		t.Errorf("Dovecot logged %d failed logins of %s; the scan would prove little", n, alice)
	}
	logs := filepath.Join(s.Get("MAILSTACK_DIR"), "logs")
	found, err := security.Scan([]string{logs}, canary, security.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append(outputs, found...) {
		t.Errorf("the canary password reached %s (as %s)", f.Where, f.Form)
	}
}
