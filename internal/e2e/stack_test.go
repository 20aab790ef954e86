//go:build e2e && integration

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
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/credsync/credsync/internal/tbharness"
)

// mailStack is what scripts/mailstack wrote to $MAILSTACK_DIR/env.
type mailStack struct {
	env   map[string]string
	caPEM []byte
	roots *x509.CertPool
}

// needMailStack loads the stack's env file and checks that its ports
// answer; it skips the test otherwise (fails with CREDSYNC_E2E_STACK=required).
func needMailStack(t *testing.T) *mailStack {
	t.Helper()
	dir := os.Getenv("MAILSTACK_DIR")
	if dir == "" {
		dir = "/tmp/credsync-mailstack"
	}
	s, err := loadMailStack(filepath.Join(dir, "env"))
	if err == nil && !s.up() {
		err = fmt.Errorf("the mail stack in %s is not running", dir)
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

func loadMailStack(path string) (*mailStack, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s: bad line %q", path, line)
		}
		if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = v[1 : len(v)-1]
		}
		env[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	s := &mailStack{env: env}
	if s.caPEM, err = os.ReadFile(s.get("MAILSTACK_CA")); err != nil {
		return nil, err
	}
	s.roots = x509.NewCertPool()
	if !s.roots.AppendCertsFromPEM(s.caPEM) {
		return nil, errors.New("no certificate in " + s.get("MAILSTACK_CA"))
	}
	if h := s.get("MAILSTACK_HOST"); h != "127.0.0.1" {
		return nil, fmt.Errorf("the stack listens on %q, not 127.0.0.1", h)
	}
	return s, nil
}

func (s *mailStack) get(key string) string { return s.env[key] }

func (s *mailStack) port(name string) int {
	p, _ := strconv.Atoi(s.env["MAILSTACK_"+name+"_PORT"])
	return p
}

func (s *mailStack) addr(name string) string {
	return net.JoinHostPort(s.get("MAILSTACK_HOST"), strconv.Itoa(s.port(name)))
}

func (s *mailStack) up() bool {
	for _, name := range []string{"IMAPS", "SUBMISSION", "LDAP"} {
		c, err := net.DialTimeout("tcp", s.addr(name), time.Second)
		if err != nil {
			return false
		}
		c.Close()
	}
	return true
}

func (s *mailStack) userDN(user string) string {
	return "uid=" + user + "," + s.get("MAILSTACK_LDAP_PEOPLE")
}

// ldapURL is the ldap back-end's URL for the stack's directory
// (internal/provider/ldap.go: StartTLS, bind DN template with %n).
func (s *mailStack) ldapURL() string {
	return "ldap://" + s.addr("LDAP") + "/uid=%n," + s.get("MAILSTACK_LDAP_PEOPLE")
}

// setLDAPPassword sets user's password as the directory's administrator
// (RFC 3062 without the old password), as internal/integration does.
func (s *mailStack) setLDAPPassword(user, password string) error {
	conn, err := ldap.DialURL("ldap://"+s.addr("LDAP"), ldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetTimeout(10 * time.Second)
	if err := conn.StartTLS(&tls.Config{ServerName: s.get("MAILSTACK_HOST"), RootCAs: s.roots, MinVersion: tls.VersionTLS12}); err != nil {
		return fmt.Errorf("StartTLS: %w", err)
	}
	if err := conn.Bind(s.get("MAILSTACK_LDAP_ADMIN_DN"), s.get("MAILSTACK_LDAP_ADMIN_PASSWORD")); err != nil {
		return fmt.Errorf("admin bind: %w", err)
	}
	_, err = conn.PasswordModify(ldap.NewPasswordModifyRequest(s.userDN(user), "", password))
	return err
}

// logMark remembers where a daemon's log ended.
type logMark struct {
	path   string
	offset int64
}

func markLog(t *testing.T, path string) logMark {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("log file: %v", err)
	}
	return logMark{path: path, offset: st.Size()}
}

// lines returns the complete lines written since the mark.
func (m logMark) lines(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(m.path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(m.offset, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.LastIndexByte(s, '\n')
	if i < 0 {
		return nil
	}
	return strings.Split(s[:i], "\n")
}

// waitLines waits (up to wait) until count(lines since m) reaches want, a
// little more for a surplus line, and returns the lines.
func waitLines(t *testing.T, m logMark, want int, wait time.Duration, count func([]string) int) []string {
	t.Helper()
	deadline := time.Now().Add(wait)
	for count(m.lines(t)) < want && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	return m.lines(t)
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
			e := newEnvWithCAs(t, thunderbird(t, name), "stack-"+name, [][]byte{st.caPEM})
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
func (e *env) testStackLDAPChange(t *testing.T, st *mailStack) {
	const user = "dave"
	login := user + "@" + st.get("MAILSTACK_DOMAIN")
	old := st.get("MAILSTACK_PASSWORD_" + user)
	if old == "" {
		t.Fatalf("no password for %s in the stack's env file", user)
	}
	// Each Thunderbird its own new password; the old one whatever an
	// earlier run left.
	new := "Dave-e2e-" + e.name + "-pw!"
	if err := st.setLDAPPassword(user, old); err != nil {
		t.Fatalf("setting %s's password: %v", user, err)
	}
	t.Cleanup(func() {
		if err := st.setLDAPPassword(user, old); err != nil {
			t.Errorf("restoring %s's password: %v", user, err)
		}
	})
	host := st.get("MAILSTACK_HOST")
	s := e.newScenarioWith(t, tbharness.AccountSpec{
		Type: "imap",
		Incoming: tbharness.ServerSpec{Host: host, Port: st.port("IMAPS"), SocketType: tbharness.SocketSSL,
			AuthMethod: tbharness.AuthPasswordCleartext, Username: login, Password: old},
		SMTP: &tbharness.ServerSpec{Host: host, Port: st.port("SUBMISSION"), SocketType: tbharness.SocketSTARTTLS,
			AuthMethod: tbharness.AuthPasswordCleartext, Username: login, Password: old},
		Email: login,
	}, old, new, "ldap", st.ldapURL())

	slapdBefore := markLog(t, st.get("MAILSTACK_SLAPD_LOG"))
	o := s.change()
	s.wantSuccess(o, true)
	if ok, _ := slapdBinds(slapdBefore.lines(t), st.userDN(user)); ok == 0 {
		t.Errorf("slapd logged no successful bind as %s during the change", st.userDN(user))
	}
	origin := "imap://" + host
	s.wantLogin(origin, login, new)
	s.wantLogin("smtp://"+host, login, new)
	s.wantOneLogin(origin, login)
	s.wantOneLogin("smtp://"+host, login)
	s.noPrompts()

	// Thunderbird's own logins, after the change: IMAP (verifyLogon) to
	// Dovecot, then SMTP (its SMTP client: AUTH, QUIT) to Postfix.
	dovecot := markLog(t, st.get("MAILSTACK_DOVECOT_LOG"))
	postfix := markLog(t, st.get("MAILSTACK_POSTFIX_LOG"))
	slapd := markLog(t, st.get("MAILSTACK_SLAPD_LOG"))
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
	ok, failed := slapdBinds(slapd.lines(t), st.userDN(user))
	if ok < 2 || failed != 0 {
		t.Errorf("slapd: %d successful and %d failed binds as %s after the change, want at least 2 and 0", ok, failed, st.userDN(user))
	}
	if !t.Failed() {
		t.Logf("Thunderbird logged in to Dovecot and Postfix with the new password in %s (logs: %d IMAP logins, %d SMTP sessions, %d LDAP binds)",
			time.Since(start).Round(time.Millisecond), countMatching(imapOK)(dl), countMatching(smtpOK)(pl), ok)
	}
	s.noPrompts()

	// The new password is the directory's: a bind with it works.
	c, cancel := context.WithTimeout(s.ctx, 15*time.Second)
	defer cancel()
	if err := ldapBind(c, st, st.userDN(user), new); err != nil {
		t.Errorf("binding as %s with the new password: %v", user, err)
	}
}

func ldapBind(ctx context.Context, st *mailStack, dn, password string) error {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if dl, ok := ctx.Deadline(); ok {
		d.Deadline = dl
	}
	conn, err := ldap.DialURL("ldap://"+st.addr("LDAP"), ldap.DialWithDialer(d))
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.StartTLS(&tls.Config{ServerName: st.get("MAILSTACK_HOST"), RootCAs: st.roots, MinVersion: tls.VersionTLS12}); err != nil {
		return err
	}
	return conn.Bind(dn, password)
}
