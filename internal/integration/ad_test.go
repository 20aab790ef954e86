//go:build integration

package integration

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/go-ldap/ldap/v3"

	"github.com/credsync/credsync/internal/provider"
	"github.com/credsync/credsync/internal/testkit/mailstack"
)

// sambaDC is the Samba AD domain controller of `scripts/mailstack start
// --with-samba`.
type sambaDC struct {
	*mailStack
	realm, domain string
}

// needSamba skips t unless the stack runs Samba. The AD tests need only
// Samba and the stack's CA, so they also run when the rest of the stack is
// down.
func needSamba(t *testing.T) *sambaDC {
	t.Helper()
	s := stack
	if s == nil {
		var err error
		if s, err = loadStack(mailstack.EnvPath()); err != nil {
			t.Skip(skipReason)
		}
	}
	if s.Get("MAILSTACK_SAMBA") != "1" {
		t.Skip("the mail stack runs without Samba AD: start it with `scripts/mailstack start --with-samba`")
	}
	if err := s.Up("SAMBA_LDAPS", "SAMBA_LDAP", "KDC", "KPASSWD"); err != nil {
		t.Skipf("Samba AD is not running (%v): run `scripts/mailstack start --with-samba`", err)
	}
	return &sambaDC{mailStack: s, realm: s.Get("MAILSTACK_SAMBA_REALM"), domain: s.Get("MAILSTACK_SAMBA_DNS_DOMAIN")}
}

func (s *sambaDC) password(user string) string { return s.Get("MAILSTACK_SAMBA_PASSWORD_" + user) }

func (s *sambaDC) upn(user string) string { return user + "@" + s.domain }

func (s *sambaDC) tlsConfig() *tls.Config {
	return &tls.Config{ServerName: s.Get("MAILSTACK_HOST"), RootCAs: s.Roots}
}

// bind logs in to the directory over LDAPS as user; nil means the password
// works.
func (s *sambaDC) bind(user, password string) error {
	conn, err := ldap.DialURL("ldaps://"+s.Addr("SAMBA_LDAPS"), ldap.DialWithTLSConfig(s.tlsConfig()),
		ldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetTimeout(10 * time.Second)
	return conn.Bind(user, password)
}

// expectPassword checks that password works for user and, when old is not
// empty, that old no longer does.
func (s *sambaDC) expectPassword(t *testing.T, user, password, old string) {
	t.Helper()
	if err := s.bind(s.upn(user), password); err != nil {
		t.Errorf("bind as %s with the password it should have: %v", user, err)
	}
	if old == "" {
		return
	}
	if err := s.bind(s.upn(user), old); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		t.Errorf("bind as %s with its previous password = %v, want invalid credentials", user, err)
	}
}

// admin modifies user's account as the domain administrator, over LDAPS.
func (s *sambaDC) admin(t *testing.T, user string, modify func(*ldap.ModifyRequest)) {
	t.Helper()
	s.adminModify(t, "CN="+user+",CN=Users,"+s.Get("MAILSTACK_SAMBA_BASE"), modify)
}

// minPwdAge sets the domain's minimum password age; t's cleanup sets it
// back to 0 (the stack's setting).
func (s *sambaDC) minPwdAge(t *testing.T, age time.Duration) {
	t.Helper()
	set := func(d time.Duration) func(*ldap.ModifyRequest) {
		// A negative count of 100 ns intervals.
		return func(m *ldap.ModifyRequest) { m.Replace("minPwdAge", []string{strconv.FormatInt(-int64(d/100), 10)}) }
	}
	t.Cleanup(func() { s.adminModify(t, s.Get("MAILSTACK_SAMBA_BASE"), set(0)) })
	s.adminModify(t, s.Get("MAILSTACK_SAMBA_BASE"), set(age))
}

func (s *sambaDC) adminModify(t *testing.T, dn string, modify func(*ldap.ModifyRequest)) {
	t.Helper()
	conn, err := ldap.DialURL("ldaps://"+s.Addr("SAMBA_LDAPS"), ldap.DialWithTLSConfig(s.tlsConfig()),
		ldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
	if err != nil {
		t.Fatalf("admin connection: %v", err)
	}
	defer conn.Close()
	conn.SetTimeout(10 * time.Second)
	if err := conn.Bind(s.Get("MAILSTACK_SAMBA_ADMIN"), s.Get("MAILSTACK_SAMBA_ADMIN_PASSWORD")); err != nil {
		t.Fatalf("admin bind: %v", err)
	}
	req := ldap.NewModifyRequest(dn, nil)
	modify(req)
	if err := conn.Modify(req); err != nil {
		t.Fatalf("modifying %s as administrator: %v", dn, err)
	}
}

// reset sets user's password as the administrator (a reset: no history or
// age check) and clears "must change at next logon", so that a test leaves
// the domain as it found it. It is what `samba-tool user setpassword` does,
// without a password on a command line.
func (s *sambaDC) reset(t *testing.T, user, password string) {
	t.Helper()
	s.admin(t, user, func(m *ldap.ModifyRequest) {
		m.Replace("unicodePwd", []string{unicodePwd(password)})
		m.Replace("pwdLastSet", []string{"-1"})
	})
}

// mustChange sets "must change the password at next logon" on user.
func (s *sambaDC) mustChange(t *testing.T, user string) {
	t.Helper()
	s.admin(t, user, func(m *ldap.ModifyRequest) { m.Replace("pwdLastSet", []string{"0"}) })
}

func unicodePwd(pw string) string {
	u := utf16.Encode([]rune(`"` + pw + `"`))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return string(b)
}

// newPassword is a fresh password that meets the domain's complexity rules
// and is in no account's history, even when the tests run again against the
// same domain.
func newPassword(t *testing.T, tag string) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "Cs-" + tag + "-" + hex.EncodeToString(b) + "-9x"
}

// TestADBackend changes adam's password with the ad back-end (unicodePwd
// delete+add, bound as the user) and checks it by binding to the domain.
func TestADBackend(t *testing.T) {
	s := needSamba(t)
	const user = "adam"
	original := s.password(user)
	t.Cleanup(func() { s.reset(t, user, original) })
	backend := lookup(t, "ad")
	ldaps := "ldaps://" + s.Addr("SAMBA_LDAPS")
	startTLS := "ldap://" + s.Addr("SAMBA_LDAP")
	req := func(url, username, current, next string) provider.Request {
		return provider.Request{Username: username, Current: current, New: next, URL: url, Roots: s.Roots}
	}
	next, third := newPassword(t, "Next"), newPassword(t, "Third")

	t.Run("refusals change nothing", func(t *testing.T) {
		expectKind(t, change(backend, req(ldaps, s.upn(user), "Wrong-Pass-1!", next)), provider.WrongCurrent, "data 52e")
		expectRule(t, change(backend, req(ldaps, s.upn(user), original, "Sh0rt!")), provider.Rejected, "too_short", "0000052D")
		expectKind(t, change(backend, req(ldaps, s.upn(user), original, "alllowercaseletters")), provider.Rejected, "complexity")
		expectKind(t, change(backend, provider.Request{Username: s.upn(user), Current: original, New: next, URL: ldaps, Roots: x509.NewCertPool()}), provider.Unreachable, "TLS")
		expectKind(t, change(backend, req("ldaps://"+closedAddr(t), s.upn(user), original, next)), provider.Unreachable, "cannot connect")
		s.expectPassword(t, user, original, "")
	})
	t.Run("change over LDAPS", func(t *testing.T) {
		if err := change(backend, req(ldaps, s.upn(user), original, next)); err != nil {
			t.Fatalf("change: %v", err)
		}
		s.expectPassword(t, user, next, original)
	})
	t.Run("a password from the history", func(t *testing.T) {
		expectKind(t, change(backend, req(ldaps, s.upn(user), next, original)), provider.RecentlyUsed, "history")
		s.expectPassword(t, user, next, "")
	})
	t.Run("minimum password age", func(t *testing.T) {
		s.minPwdAge(t, 24*time.Hour)
		expectKind(t, change(backend, req(ldaps, s.upn(user), next, third)), provider.TooRecent, "too young")
	})
	t.Run("change over StartTLS with a upn template", func(t *testing.T) {
		url := startTLS + "?upn=%n@" + s.realm // AD matches UPNs case-insensitively
		if err := change(backend, req(url, user, next, third)); err != nil {
			t.Fatalf("change: %v", err)
		}
		s.expectPassword(t, user, third, next)
	})
	t.Run("must change at next logon", func(t *testing.T) {
		s.mustChange(t, user)
		expectKind(t, change(backend, req(ldaps, s.upn(user), third, next)), provider.PasswordExpired, "773")
	})
}

// TestKpasswdBackend changes kate's password with the kpasswd back-end
// (RFC 3244 against Samba's KDC) and checks it by binding to the domain.
func TestKpasswdBackend(t *testing.T) {
	s := needSamba(t)
	const user = "kate"
	original := s.password(user)
	t.Cleanup(func() { s.reset(t, user, original) })
	backend := lookup(t, "kpasswd")
	url := "kpasswd://" + s.Addr("KPASSWD") + "?kdc=" + s.Addr("KDC") + "&realm=" + s.realm
	req := func(url, username, current, next string) provider.Request {
		return provider.Request{Username: username, Current: current, New: next, URL: url}
	}
	next, third := newPassword(t, "Next"), newPassword(t, "Third")

	t.Run("refusals change nothing", func(t *testing.T) {
		expectKind(t, change(backend, req(url, user, "Wrong-Pass-1!", next)), provider.WrongCurrent, "PREAUTH_FAILED")
		expectRule(t, change(backend, req(url, user, original, "Sh0rt!")), provider.Rejected, "too_short", "at least 7 characters")
		expectKind(t, change(backend, req(url, user, original, "alllowercaseletters")), provider.Rejected, "complexity")
		expectKind(t, change(backend, req(url, "nobody", original, next)), provider.Rejected, "does not know")
		expectKind(t, change(backend, req("kpasswd://"+closedAddr(t)+"?kdc="+s.Addr("KDC")+"&realm="+s.realm, user, original, next)), provider.Unreachable, "cannot send")
		expectKind(t, change(backend, req("kpasswd://"+s.Addr("KPASSWD")+"?kdc="+closedAddr(t)+"&realm="+s.realm, user, original, next)), provider.Unreachable, "KDC")
		s.expectPassword(t, user, original, "")
	})
	t.Run("change", func(t *testing.T) {
		if err := change(backend, req(url, user, original, next)); err != nil {
			t.Fatalf("change: %v", err)
		}
		s.expectPassword(t, user, next, original)
	})
	t.Run("a password from the history", func(t *testing.T) {
		expectKind(t, change(backend, req(url, user, next, original)), provider.RecentlyUsed, "history")
		s.expectPassword(t, user, next, "")
	})
	t.Run("minimum password age", func(t *testing.T) {
		// Samba's kpasswd does not say which: "… may not be permitted on
		// this account, or the minimum password age may not have elapsed".
		s.minPwdAge(t, 24*time.Hour)
		expectKind(t, change(backend, req(url, user, next, third)), provider.Rejected, "minimum password age")
	})
	t.Run("realm from the user name's domain", func(t *testing.T) {
		// kate@credsync.test → kate@CREDSYNC.TEST
		url := "kpasswd://" + s.Addr("KPASSWD") + "?kdc=" + s.Addr("KDC")
		if err := change(backend, req(url, s.upn(user), next, third)); err != nil {
			t.Fatalf("change: %v", err)
		}
		s.expectPassword(t, user, third, next)
	})
	t.Run("must change at next logon", func(t *testing.T) {
		// An LDAP bind is refused (data 773), but Kerberos may change it.
		s.mustChange(t, user)
		if err := s.bind(s.upn(user), third); err == nil {
			t.Fatal("bind works although the password must change")
		}
		if err := change(backend, req(url, user, third, next+"x")); err != nil {
			t.Fatalf("change: %v", err)
		}
		s.expectPassword(t, user, next+"x", third)
	})
}

func expectRule(t *testing.T, err error, want provider.Kind, rule, detail string) {
	t.Helper()
	expectKind(t, err, want, detail)
	var pe *provider.Error
	if errors.As(err, &pe) && pe.Rule != rule {
		t.Errorf("Change() = %v with rule %q, want rule %q", err, pe.Rule, rule)
	}
}
