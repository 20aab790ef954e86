//go:build !windows

package bench

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"github.com/go-ldap/ldap/v3"

	"github.com/credsync/credsync/internal/testkit/mailstack"
)

// ErrNoMailstack means the real mail stack is not up; its rows are skipped.
var ErrNoMailstack = errors.New("the mail stack is not up")

// StartMailstack connects to the real Dovecot/Postfix/slapd stack described
// by the env file at path and creates a throw-away LDAP user for the run
// (removed by Close), so that other users of the stack are not disturbed.
// It returns an error wrapping ErrNoMailstack when the stack is not up.
func StartMailstack(path string) (*Servers, error) {
	st, err := mailstack.Load(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: no %s", ErrNoMailstack, path)
	}
	if err != nil {
		return nil, err
	}
	var missing []error
	get := func(k string) string {
		v := st.Get(k)
		if v == "" {
			missing = append(missing, fmt.Errorf("%s has no %s", path, k))
		}
		return v
	}
	people := get("MAILSTACK_LDAP_PEOPLE")
	domain := get("MAILSTACK_DOMAIN")
	get("MAILSTACK_LDAP_ADMIN_DN") // Admin's
	get("MAILSTACK_LDAP_ADMIN_PASSWORD")
	names := map[string]string{
		"imaps": "IMAPS", "imap": "IMAP", "pop3s": "POP3S", "pop3": "POP3",
		"smtps": "SUBMISSIONS", "submission": "SUBMISSION", "ldap": "LDAP",
	}
	if err := errors.Join(missing...); err != nil {
		return nil, err
	}
	addr := map[string]string{}
	for key, name := range names {
		if err := st.Up(name); err != nil {
			return nil, fmt.Errorf("%w: %s is in %s but %v", ErrNoMailstack, key, path, err)
		}
		addr[key] = st.Addr(name)
	}

	b := make([]byte, 4)
	rand.Read(b)
	uid := "bench" + hex.EncodeToString(b)
	pw := randomPassword()
	userDN := st.UserDN(uid)
	if err := addUser(st, uid, uid+"@"+domain, pw); err != nil {
		return nil, fmt.Errorf("creating the throw-away LDAP user %s: %w", userDN, err)
	}
	ldapAddr := addr["ldap"]
	delete(addr, "ldap")
	return &Servers{
		Name:  "mailstack",
		Note:  "scripts/mailstack: Dovecot (IMAP, POP3), Postfix (submission, SASL through Dovecot), slapd",
		Roots: st.Roots, CAPEM: st.CAPEM, User: uid + "@" + domain, Password: pw, Addr: addr,
		Backend: "ldap", BackendAddr: ldapAddr,
		BackendURL:   func(a string) string { return "ldap://" + a + "/uid=%n," + people },
		BackendFloor: 5, BackendSteps: "TCP · StartTLS · TLS 1.3 · Bind · Password Modify",
		close: func() {
			_ = st.Admin(func(c *ldap.Conn) error { return c.Del(ldap.NewDelRequest(userDN, nil)) })
		},
	}, nil
}

// addUser adds the throw-away user as the directory's administrator.
func addUser(st *mailstack.Stack, uid, mail, password string) error {
	return st.Admin(func(c *ldap.Conn) error {
		req := ldap.NewAddRequest(st.UserDN(uid), nil)
		req.Attribute("objectClass", []string{"inetOrgPerson"})
		req.Attribute("uid", []string{uid})
		req.Attribute("cn", []string{uid})
		req.Attribute("sn", []string{"credsync bench"})
		req.Attribute("mail", []string{mail})
		if err := c.Add(req); err != nil {
			return err
		}
		// Set through the exop so that slapd stores it hashed, as it will
		// store the passwords the flow sets.
		_, err := c.PasswordModify(ldap.NewPasswordModifyRequest(st.UserDN(uid), "", password))
		return err
	})
}
