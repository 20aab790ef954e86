//go:build integration

package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/credsync/credsync/internal/provider"
	"github.com/credsync/credsync/internal/testkit/mailstack"
)

// expiryRun is one `credsync expiry` run: its state line parsed.
type expiryRun struct {
	verifyResult
	state, source string
	at            time.Time
}

// runExpiry runs `credsync expiry` as a user would, the password on
// standard input.
func runExpiry(t *testing.T, password string, args ...string) expiryRun {
	t.Helper()
	r := runCredsync(t, 30*time.Second, password+"\n", append([]string{"expiry", "--password-stdin", "--timeout", "15s"}, args...)...)
	if strings.Contains(r.stdout+r.stderr, password) {
		t.Errorf("credsync printed the password: %q %q", r.stdout, r.stderr)
	}
	x := expiryRun{verifyResult: r}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) == 2 && strings.HasPrefix(lines[1], "source: ") {
		x.state, x.source = lines[0], strings.TrimPrefix(lines[1], "source: ")
		if at, ok := strings.CutPrefix(x.state, "expires: "); ok {
			x.state = "expires"
			var err error
			if x.at, err = time.Parse(time.RFC3339, at); err != nil || !strings.HasSuffix(at, "Z") {
				t.Errorf("expires: %q is not RFC 3339 UTC", at)
			}
		}
	}
	return x
}

// expect checks the state, the source and, for "expires", the date
// (within an hour: the stack was set up minutes ago).
func (x expiryRun) expect(t *testing.T, state, source string, in time.Duration) {
	t.Helper()
	if x.code != 0 || x.state != state || x.source != source {
		t.Fatalf("credsync expiry: exit %d, state %q, source %q; want 0, %q, %q\n%s%s", x.code, x.state, x.source, state, source, x.stdout, x.stderr)
	}
	if state == "expires" {
		if want := time.Now().Add(in); x.at.Sub(want).Abs() > time.Hour {
			t.Errorf("expires %v, want about %v", x.at, want)
		}
	}
}

// countBinds counts slapd's binds as dn, failed or not.
func countBinds(dn string) func([]string) int {
	return func(lines []string) int {
		n := 0
		for _, l := range lines {
			if m := slapdBind.FindStringSubmatch(l); m != nil && strings.EqualFold(m[2], dn) {
				n++
			}
		}
		return n
	}
}

// countSambaAuth counts Samba's authentications of user (its name before
// the @, any case) in samba.log (log level auth_audit:3): "Auth: [LDAP,simple
// bind/TLS] user [CREDSYNC]\[ellen@credsync.test] … status [NT_STATUS_OK]";
// kind "LDAP" counts LDAP binds, "" every kind (Kerberos included).
func countSambaAuth(kind, user string) func([]string) int {
	return func(lines []string) int {
		n := 0
		for _, l := range lines {
			i := strings.Index(l, "Auth: [")
			if i < 0 || kind != "" && !strings.HasPrefix(l[i+len("Auth: ["):], kind+",") {
				continue
			}
			if strings.Contains(strings.ToLower(l), `\[`+strings.ToLower(user)+"@") || strings.Contains(strings.ToLower(l), `\[`+strings.ToLower(user)+"]") {
				n++
			}
		}
		return n
	}
}

// TestExpiryLDAP reads the expiry of OpenLDAP users under the cn=expiry
// policy (ppolicy, pwdMaxAge 90 days, pwdExpireWarning 14 days) with
// `credsync expiry`, and counts the binds in slapd's log: one per check.
func TestExpiryLDAP(t *testing.T) {
	s := needStack(t)
	if s.Get("MAILSTACK_LDAP_EXPIRY_USERS") == "" {
		t.Skip("the mail stack predates the expiry users: restart it with scripts/mailstack start")
	}
	backendURL := "ldap://" + s.Addr("LDAP") + "/uid=%n," + s.Get("MAILSTACK_LDAP_PEOPLE")
	check := func(t *testing.T, user, password string) expiryRun {
		t.Helper()
		slapd := markLog(t, s.Get("MAILSTACK_SLAPD_LOG"))
		x := runExpiry(t, password, "--incoming", s.url("imaps", user+"@example.test", "IMAPS"),
			"--backend", "ldap", "--backend-url", backendURL, "--ca-file", s.Get("MAILSTACK_CA"))
		if n := settle(t, slapd, 1, 5*time.Second, countBinds(s.UserDN(user))); n != 1 {
			t.Errorf("slapd logged %d binds as %s for one check, want 1:\n%s", n, user, strings.Join(logLines(t, slapd), "\n"))
		}
		return x
	}
	t.Run("inside the warning window", func(t *testing.T) {
		check(t, "erin", s.Password("erin")).expect(t, "expires", "ppolicy timeBeforeExpiration", 5*24*time.Hour)
	})
	t.Run("outside it: pwdChangedTime + pwdMaxAge", func(t *testing.T) {
		check(t, "fay", s.Password("fay")).expect(t, "expires", "pwdChangedTime + pwdMaxAge", 80*24*time.Hour)
	})
	t.Run("expired", func(t *testing.T) {
		check(t, "gus", s.Password("gus")).expect(t, "expired", "ppolicy passwordExpired", 0)
	})
	t.Run("the default policy is not readable: unknown", func(t *testing.T) {
		x := check(t, "carol", s.Password("carol"))
		x.expect(t, "unknown", "none", 0)
		if !strings.Contains(x.stderr, "pwdPolicySubentry") {
			t.Errorf("no reason on stderr: %q", x.stderr)
		}
	})
	t.Run("wrong password: exit 1, one failed bind", func(t *testing.T) {
		slapd := markLog(t, s.Get("MAILSTACK_SLAPD_LOG"))
		x := check(t, "erin", "Wrong-Pass1!")
		if x.code != 1 || x.stdout != "" || !strings.Contains(x.stderr, "wrong_current_password") {
			t.Errorf("credsync expiry: exit %d\n%s%s", x.code, x.stdout, x.stderr)
		}
		if n := settle(t, slapd, 1, 5*time.Second, countFailedBinds(s.UserDN("erin"))); n != 1 {
			t.Errorf("slapd logged %d failed binds, want 1", n)
		}
	})
	t.Run("Dovecot's auth bind says only that the login failed", func(t *testing.T) {
		// Dovecot (passdb ldap, auth_bind) answers a ppolicy-expired
		// password like a wrong one; only the expiry check tells them apart.
		r := runVerify(t, s.Password("gus"), "--incoming", s.url("imaps", "gus@example.test", "IMAPS"), "--ca-file", s.Get("MAILSTACK_CA"))
		if r.code != 1 || r.outcome("incoming") != "auth_failed" {
			t.Errorf("credsync verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
}

// TestExpiredLDAPPasswordChange: under ppolicy without grace logins, the
// bind with an expired password is refused (49, passwordExpired), yet
// slapd 2.5 leaves that connection bound as the user for a password change:
// the ldap back-end changes the expired password with one bind.
func TestExpiredLDAPPasswordChange(t *testing.T) {
	s := needStack(t)
	if s.Get("MAILSTACK_LDAP_EXPIRY_USERS") == "" {
		t.Skip("the mail stack predates the expiry users: restart it with scripts/mailstack start")
	}
	const user = "gus"
	original := s.Password(user)
	t.Cleanup(func() { restoreLDAPExpired(t, s, user, original) })
	backend := lookup(t, "ldap")
	url := "ldap://" + s.Addr("LDAP") + "/uid=%n," + s.Get("MAILSTACK_LDAP_PEOPLE")
	next := "Gus-New-Pass-2"
	slapd := markLog(t, s.Get("MAILSTACK_SLAPD_LOG"))
	if err := change(backend, provider.Request{Username: user, Current: original, New: next, URL: url, Roots: s.Roots}); err != nil {
		t.Fatalf("change of an expired password: %v", err)
	}
	if n := settle(t, slapd, 1, 5*time.Second, countBinds(s.UserDN(user))); n != 1 {
		t.Errorf("slapd logged %d binds as %s for the change, want 1", n, user)
	}
	if err := s.Bind(s.UserDN(user), next, func(*ldap.Conn) error { return nil }); err != nil {
		t.Errorf("bind with the new password: %v", err)
	}
	x := runExpiry(t, next, "--incoming", s.url("imaps", user+"@example.test", "IMAPS"),
		"--backend", "ldap", "--backend-url", url, "--ca-file", s.Get("MAILSTACK_CA"))
	x.expect(t, "expires", "pwdChangedTime + pwdMaxAge", 90*24*time.Hour)
}

// restoreLDAPExpired sets user's password back as the administrator, and
// its pwdChangedTime to what the stack gave it (an operational attribute:
// the relax control).
func restoreLDAPExpired(t *testing.T, s *mailStack, user, password string) {
	t.Helper()
	s.resetLDAPPassword(t, user, password)
	days, _ := strconv.Atoi(s.Get("MAILSTACK_PWD_AGE_DAYS_" + user))
	err := s.Admin(func(c *ldap.Conn) error {
		m := ldap.NewModifyRequest(s.UserDN(user), []ldap.Control{ldap.NewControlString("1.3.6.1.4.1.4203.666.5.12", true, "")})
		m.Replace("pwdChangedTime", []string{time.Now().UTC().Add(-time.Duration(days) * 24 * time.Hour).Format("20060102150405Z")})
		return c.Modify(m)
	})
	if err != nil {
		t.Errorf("restoring %s's pwdChangedTime: %v", user, err)
	}
}

// TestExpiryAD reads the expiry of Samba AD users with the ad back-end and
// the kpasswd back-end given the directory (ldap=), and counts Samba's
// authentications: one LDAP bind per check, nothing else.
func TestExpiryAD(t *testing.T) {
	s := needSamba(t)
	if s.Get("MAILSTACK_SAMBA_EXPIRY_USERS") == "" {
		t.Skip("the mail stack predates the expiry users: restart it with scripts/mailstack start --with-samba")
	}
	maxAge, _ := strconv.Atoi(s.Get("MAILSTACK_SAMBA_MAX_PWD_AGE_DAYS"))
	adURL := "ldaps://" + s.Addr("SAMBA_LDAPS")
	kpasswdURL := "kpasswd://" + s.Addr("KPASSWD") + "?kdc=" + s.Addr("KDC") + "&realm=" + s.realm + "&ldap=" + adURL
	check := func(t *testing.T, backend, url, user, password string) expiryRun {
		t.Helper()
		samba := markLog(t, s.Get("MAILSTACK_SAMBA_LOG"))
		x := runExpiry(t, password, "--incoming", s.url("imaps", s.upn(user), "IMAPS"),
			"--backend", backend, "--backend-url", url, "--ca-file", s.Get("MAILSTACK_CA"))
		if n := settle(t, samba, 1, 5*time.Second, countSambaAuth("", user)); n != 1 {
			t.Errorf("Samba logged %d authentications of %s for one check, want 1 (an LDAP bind):\n%s", n, user, strings.Join(logLines(t, samba), "\n"))
		} else if n := countSambaAuth("LDAP", user)(logLines(t, samba)); n != 1 {
			t.Errorf("Samba's one authentication of %s was not an LDAP bind", user)
		}
		return x
	}
	t.Run("expires in 3 days (fine-grained policy)", func(t *testing.T) {
		check(t, "ad", adURL, "ellen", s.password("ellen")).expect(t, "expires", "msDS-UserPasswordExpiryTimeComputed", 3*24*time.Hour)
	})
	t.Run("the domain's maximum age", func(t *testing.T) {
		check(t, "ad", adURL, "kate", s.password("kate")).expect(t, "expires", "msDS-UserPasswordExpiryTimeComputed", time.Duration(maxAge)*24*time.Hour)
	})
	t.Run("expired: bind data 532", func(t *testing.T) {
		check(t, "ad", adURL, "edgar", s.password("edgar")).expect(t, "expired", "bind: AD data 532", 0)
	})
	t.Run("kpasswd with the directory's URL", func(t *testing.T) {
		check(t, "kpasswd", kpasswdURL, "ellen", s.password("ellen")).expect(t, "expires", "msDS-UserPasswordExpiryTimeComputed", 3*24*time.Hour)
	})
	t.Run("kpasswd without it: unknown, nothing asked", func(t *testing.T) {
		samba := markLog(t, s.Get("MAILSTACK_SAMBA_LOG"))
		x := runExpiry(t, s.password("ellen"), "--incoming", s.url("imaps", s.upn("ellen"), "IMAPS"),
			"--backend", "kpasswd", "--backend-url", "kpasswd://"+s.Addr("KPASSWD")+"?kdc="+s.Addr("KDC")+"&realm="+s.realm)
		x.expect(t, "unknown", "none", 0)
		if n := settle(t, samba, 0, 0, countSambaAuth("", "ellen")); n != 0 {
			t.Errorf("Samba logged %d authentications", n)
		}
	})
	t.Run("wrong password: exit 1, one failed bind", func(t *testing.T) {
		x := check(t, "ad", adURL, "ellen", "Wrong-Pass-1!")
		if x.code != 1 || x.stdout != "" || !strings.Contains(x.stderr, "wrong_current_password") {
			t.Errorf("credsync expiry: exit %d\n%s%s", x.code, x.stdout, x.stderr)
		}
	})
}

// TestExpiredADPasswordChange: Active Directory refuses an LDAP bind with
// an expired password (data 532), so the ad back-end cannot change it
// (password_expired); Kerberos accepts the expired password for a change
// (RFC 3244), so the kpasswd back-end does.
func TestExpiredADPasswordChange(t *testing.T) {
	s := needSamba(t)
	if s.Get("MAILSTACK_SAMBA_EXPIRY_USERS") == "" {
		t.Skip("the mail stack predates the expiry users: restart it with scripts/mailstack start --with-samba")
	}
	const user = "edgar"
	original := s.password(user)
	t.Cleanup(func() {
		s.reset(t, user, original)
		backdate(t, user, s.Get("MAILSTACK_SAMBA_EXPIRED_DAYS"))
	})
	next := newPassword(t, "Expired")
	t.Run("ad: refused, password_expired", func(t *testing.T) {
		err := change(lookup(t, "ad"), provider.Request{Username: s.upn(user), Current: original, New: next, URL: "ldaps://" + s.Addr("SAMBA_LDAPS"), Roots: s.Roots})
		expectKind(t, err, provider.PasswordExpired, "kpasswd")
		if err := s.bind(s.upn(user), original); err == nil || !strings.Contains(err.Error(), "data 532") {
			t.Errorf("bind with the expired password = %v, want data 532 (nothing changed)", err)
		}
	})
	t.Run("kpasswd: changed with the expired password", func(t *testing.T) {
		url := "kpasswd://" + s.Addr("KPASSWD") + "?kdc=" + s.Addr("KDC") + "&realm=" + s.realm
		if err := change(lookup(t, "kpasswd"), provider.Request{Username: user, Current: original, New: next, URL: url}); err != nil {
			t.Fatalf("kpasswd change of an expired password: %v", err)
		}
		s.expectPassword(t, user, next, original)
		maxAge, _ := strconv.Atoi(s.Get("MAILSTACK_SAMBA_MAX_PWD_AGE_DAYS"))
		x := runExpiry(t, next, "--incoming", s.url("imaps", s.upn(user), "IMAPS"),
			"--backend", "ad", "--backend-url", "ldaps://"+s.Addr("SAMBA_LDAPS"), "--ca-file", s.Get("MAILSTACK_CA"))
		x.expect(t, "expires", "msDS-UserPasswordExpiryTimeComputed", time.Duration(maxAge)*24*time.Hour)
	})
}

// backdate sets a Samba user's pwdLastSet days back again, as the stack
// made it (scripts/mailstack samba-backdate).
func backdate(t *testing.T, user, days string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	script, err := filepath.Abs("../../scripts/mailstack")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, script, "samba-backdate", user, days)
	cmd.Env = append(os.Environ(), "MAILSTACK_DIR="+mailstack.Dir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("scripts/mailstack samba-backdate %s %s: %v\n%s", user, days, err, out)
	}
}
