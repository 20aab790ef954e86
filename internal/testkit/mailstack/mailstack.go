// Package mailstack reads what scripts/mailstack writes to
// $MAILSTACK_DIR/env (where the real Dovecot, Postfix and slapd listen on
// the loopback interface, their CA, the test accounts), acts on the stack's
// directory as its administrator and follows the daemons' logs. The
// integration and end-to-end suites and the bench use it.
package mailstack

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// DefaultDir is scripts/mailstack's state directory when MAILSTACK_DIR is
// not set.
const DefaultDir = "/tmp/credsync-mailstack"

// Dir is $MAILSTACK_DIR, else DefaultDir.
func Dir() string {
	if d := os.Getenv("MAILSTACK_DIR"); d != "" {
		return d
	}
	return DefaultDir
}

// EnvPath is the env file in Dir.
func EnvPath() string { return filepath.Join(Dir(), "env") }

// Stack is one env file: the stack's addresses, CA and accounts.
type Stack struct {
	CAPEM []byte
	Roots *x509.CertPool
	env   map[string]string
}

// Load reads the env file at path (KEY=VALUE lines, values optionally in
// single quotes) and the CA it names. A missing file is an error wrapping
// os.ErrNotExist. It refuses a malformed line and a host that is not a
// loopback address: tests never reach beyond this machine.
func Load(path string) (*Stack, error) {
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
	s := &Stack{env: env}
	if ip := net.ParseIP(s.Host()); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("%s: MAILSTACK_HOST %q is not a loopback address", path, s.Host())
	}
	if s.CAPEM, err = os.ReadFile(s.Get("MAILSTACK_CA")); err != nil {
		return nil, fmt.Errorf("%s: MAILSTACK_CA: %w", path, err)
	}
	s.Roots = x509.NewCertPool()
	if !s.Roots.AppendCertsFromPEM(s.CAPEM) {
		return nil, fmt.Errorf("no certificate in %s", s.Get("MAILSTACK_CA"))
	}
	return s, nil
}

// Get is the value of key, "" when absent.
func (s *Stack) Get(key string) string { return s.env[key] }

// Host is the address every daemon listens on.
func (s *Stack) Host() string { return s.Get("MAILSTACK_HOST") }

// Port is MAILSTACK_<name>_PORT (name: IMAP, IMAPS, POP3, POP3S,
// SUBMISSION, SUBMISSIONS, LDAP, LDAPS, …); 0 when absent.
func (s *Stack) Port(name string) int {
	p, _ := strconv.Atoi(s.Get("MAILSTACK_" + name + "_PORT"))
	return p
}

// Addr is host:port of the named port.
func (s *Stack) Addr(name string) string {
	return net.JoinHostPort(s.Host(), strconv.Itoa(s.Port(name)))
}

// Up checks that every named port accepts a connection.
func (s *Stack) Up(names ...string) error {
	for _, name := range names {
		if s.Port(name) == 0 {
			return fmt.Errorf("the env file has no MAILSTACK_%s_PORT", name)
		}
		c, err := net.DialTimeout("tcp", s.Addr(name), 2*time.Second)
		if err != nil {
			return fmt.Errorf("%s (%s) does not answer: %w", name, s.Addr(name), err)
		}
		c.Close()
	}
	return nil
}

// Password is the stack's initial password of an LDAP user (bob, carol, …).
func (s *Stack) Password(user string) string { return s.Get("MAILSTACK_PASSWORD_" + user) }

// UserDN is the directory entry of uid.
func (s *Stack) UserDN(uid string) string { return "uid=" + uid + "," + s.Get("MAILSTACK_LDAP_PEOPLE") }

// Bind runs f on a connection to the directory, over StartTLS, bound as
// dn with password; a refused bind is the error.
func (s *Stack) Bind(dn, password string, f func(*ldap.Conn) error) error {
	conn, err := ldap.DialURL("ldap://"+s.Addr("LDAP"), ldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetTimeout(10 * time.Second)
	if err := conn.StartTLS(&tls.Config{ServerName: s.Host(), RootCAs: s.Roots, MinVersion: tls.VersionTLS12}); err != nil {
		return fmt.Errorf("StartTLS: %w", err)
	}
	if err := conn.Bind(dn, password); err != nil {
		return fmt.Errorf("bind as %s: %w", dn, err)
	}
	return f(conn)
}

// Admin runs f on a connection bound as the directory's administrator.
func (s *Stack) Admin(f func(*ldap.Conn) error) error {
	return s.Bind(s.Get("MAILSTACK_LDAP_ADMIN_DN"), s.Get("MAILSTACK_LDAP_ADMIN_PASSWORD"), f)
}

// SetPassword sets uid's password as the administrator (RFC 3062 without
// the old password), whatever it was.
func (s *Stack) SetPassword(uid, password string) error {
	return s.Admin(func(c *ldap.Conn) error {
		_, err := c.PasswordModify(ldap.NewPasswordModifyRequest(s.UserDN(uid), "", password))
		return err
	})
}

// LogMark remembers where a daemon's log ended.
type LogMark struct {
	path   string
	offset int64
}

// MarkLog marks the current end of the log at path.
func MarkLog(path string) (LogMark, error) {
	st, err := os.Stat(path)
	if err != nil {
		return LogMark{}, err
	}
	return LogMark{path: path, offset: st.Size()}, nil
}

// Lines returns the complete lines written since the mark.
func (m LogMark) Lines() ([]string, error) {
	f, err := os.Open(m.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(m.offset, io.SeekStart); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, '\n')
	if i < 0 {
		return nil, nil
	}
	return strings.Split(s[:i], "\n"), nil
}

// Wait polls until count(Lines()) reaches want or wait passes, then waits
// settle more, so that a surplus line would show (daemons write their logs
// asynchronously), and returns the lines.
func (m LogMark) Wait(want int, wait, settle time.Duration, count func([]string) int) ([]string, error) {
	deadline := time.Now().Add(wait)
	for {
		lines, err := m.Lines()
		if err != nil {
			return nil, err
		}
		if count(lines) >= want || !time.Now().Before(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(settle)
	return m.Lines()
}
