package bench

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// DefaultMailstackEnv is where scripts/mailstack writes its environment
// when MAILSTACK_DIR is not set.
const DefaultMailstackEnv = "/tmp/credsync-mailstack/env"

// MailstackEnvPath is $MAILSTACK_DIR/env, or DefaultMailstackEnv.
func MailstackEnvPath() string {
	if d := os.Getenv("MAILSTACK_DIR"); d != "" {
		return filepath.Join(d, "env")
	}
	return DefaultMailstackEnv
}

// ErrNoMailstack means the real mail stack is not up; its rows are skipped.
var ErrNoMailstack = errors.New("the mail stack is not up")

// readEnv parses scripts/mailstack's KEY=VALUE file (values optionally in
// single quotes).
func readEnv(path string) (map[string]string, error) {
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
			continue
		}
		if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = v[1 : len(v)-1]
		}
		env[k] = v
	}
	return env, sc.Err()
}

// StartMailstack connects to the real Dovecot/Postfix/slapd stack described
// by the env file at path and creates a throw-away LDAP user for the run
// (removed by Close), so that other users of the stack are not disturbed.
// It returns an error wrapping ErrNoMailstack when the stack is not up.
func StartMailstack(path string) (*Servers, error) {
	env, err := readEnv(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: no %s", ErrNoMailstack, path)
	}
	if err != nil {
		return nil, err
	}
	need := func(k string) (string, error) {
		if v := env[k]; v != "" {
			return v, nil
		}
		return "", fmt.Errorf("%s has no %s", path, k)
	}
	var missing []error
	get := func(k string) string {
		v, err := need(k)
		if err != nil {
			missing = append(missing, err)
		}
		return v
	}
	host := get("MAILSTACK_HOST")
	ca := get("MAILSTACK_CA")
	people := get("MAILSTACK_LDAP_PEOPLE")
	adminDN := get("MAILSTACK_LDAP_ADMIN_DN")
	adminPW := get("MAILSTACK_LDAP_ADMIN_PASSWORD")
	domain := get("MAILSTACK_DOMAIN")
	ports := map[string]string{}
	for key, name := range map[string]string{
		"imaps": "IMAPS", "imap": "IMAP", "pop3s": "POP3S", "pop3": "POP3",
		"smtps": "SUBMISSIONS", "submission": "SUBMISSION", "ldap": "LDAP",
	} {
		ports[key] = get("MAILSTACK_" + name + "_PORT")
	}
	if err := errors.Join(missing...); err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("MAILSTACK_HOST %q is not a loopback address", host)
	}
	addr := map[string]string{}
	for key, port := range ports {
		addr[key] = net.JoinHostPort(host, port)
		c, err := net.DialTimeout("tcp", addr[key], 2*time.Second)
		if err != nil {
			return nil, fmt.Errorf("%w: %s is in %s but %s does not answer (%v)", ErrNoMailstack, key, path, addr[key], err)
		}
		c.Close()
	}
	pem, err := os.ReadFile(ca)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", ca)
	}

	b := make([]byte, 4)
	rand.Read(b)
	uid := "bench" + hex.EncodeToString(b)
	pw := randomPassword()
	admin := &ldapAdmin{addr: addr["ldap"], host: host, roots: roots, dn: adminDN, password: adminPW}
	userDN := "uid=" + uid + "," + people
	if err := admin.addUser(userDN, uid, uid+"@"+domain, pw); err != nil {
		return nil, fmt.Errorf("creating the throw-away LDAP user %s: %w", userDN, err)
	}
	ldapAddr := addr["ldap"]
	delete(addr, "ldap")
	return &Servers{
		Name:  "mailstack",
		Note:  "scripts/mailstack: Dovecot (IMAP, POP3), Postfix (submission, SASL through Dovecot), slapd",
		Roots: roots, CAPEM: pem, User: uid + "@" + domain, Password: pw, Addr: addr,
		Backend: "ldap", BackendAddr: ldapAddr,
		BackendURL:   func(a string) string { return "ldap://" + a + "/uid=%n," + people },
		BackendFloor: 5, BackendSteps: "TCP · StartTLS · TLS 1.3 · Bind · Password Modify",
		close: func() { _ = admin.delete(userDN) },
	}, nil
}

// ldapAdmin manages the throw-away user as the directory's administrator.
type ldapAdmin struct {
	addr, host   string
	roots        *x509.CertPool
	dn, password string
}

func (a *ldapAdmin) do(f func(*ldap.Conn) error) error {
	c, err := ldap.DialURL("ldap://"+a.addr, ldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetTimeout(10 * time.Second)
	if err := c.StartTLS(&tls.Config{ServerName: a.host, RootCAs: a.roots, MinVersion: tls.VersionTLS12}); err != nil {
		return err
	}
	if err := c.Bind(a.dn, a.password); err != nil {
		return err
	}
	return f(c)
}

func (a *ldapAdmin) addUser(dn, uid, mail, password string) error {
	return a.do(func(c *ldap.Conn) error {
		req := ldap.NewAddRequest(dn, nil)
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
		_, err := c.PasswordModify(ldap.NewPasswordModifyRequest(dn, "", password))
		return err
	})
}

func (a *ldapAdmin) delete(dn string) error {
	return a.do(func(c *ldap.Conn) error { return c.Del(ldap.NewDelRequest(dn, nil)) })
}
