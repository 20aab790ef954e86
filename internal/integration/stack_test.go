//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/credsync/credsync/internal/endpoint"
)

// stack is the running mail stack, from $MAILSTACK_DIR/env; nil with
// skipReason when it is not up.
var (
	stack       *mailStack
	skipReason  string
	credsyncBin string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir := os.Getenv("MAILSTACK_DIR")
	if dir == "" {
		dir = "/tmp/credsync-mailstack"
	}
	s, err := loadStack(filepath.Join(dir, "env"))
	switch {
	case err != nil:
		skipReason = fmt.Sprintf("the mail stack is not set up (%v): run `scripts/mailstack start --with-roundcube` first, or `make test-integration`", err)
	case !s.up():
		skipReason = fmt.Sprintf("the mail stack in %s is not running: run `scripts/mailstack start --with-roundcube` (check with `scripts/mailstack status`)", dir)
	default:
		stack = s
	}
	if stack != nil {
		tmp, err := os.MkdirTemp("", "credsync-integration-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(tmp)
		credsyncBin = filepath.Join(tmp, "credsync")
		build := exec.Command("go", "build", "-o", credsyncBin, "github.com/credsync/credsync/cmd/credsync")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building credsync:", err)
			return 1
		}
	}
	return m.Run()
}

// needStack skips t when the stack is not running.
func needStack(t *testing.T) *mailStack {
	t.Helper()
	if stack == nil {
		t.Skip(skipReason)
	}
	return stack
}

// mailStack is what scripts/mailstack wrote to its env file.
type mailStack struct {
	env   map[string]string
	roots *x509.CertPool
}

func loadStack(path string) (*mailStack, error) {
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
	pem, err := os.ReadFile(s.get("MAILSTACK_CA"))
	if err != nil {
		return nil, err
	}
	s.roots = x509.NewCertPool()
	if !s.roots.AppendCertsFromPEM(pem) {
		return nil, errors.New("no certificate in " + s.get("MAILSTACK_CA"))
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

// up reports whether every core port answers.
func (s *mailStack) up() bool {
	for _, name := range []string{"IMAP", "IMAPS", "POP3", "POP3S", "SUBMISSION", "SUBMISSIONS", "LDAP", "LDAPS"} {
		c, err := net.DialTimeout("tcp", s.addr(name), time.Second)
		if err != nil {
			return false
		}
		c.Close()
	}
	return true
}

// password is the stack's initial password of an LDAP user (bob, carol, dave).
func (s *mailStack) password(user string) string { return s.env["MAILSTACK_PASSWORD_"+user] }

func (s *mailStack) userDN(user string) string {
	return "uid=" + user + "," + s.get("MAILSTACK_LDAP_PEOPLE")
}

// ep is an endpoint of the stack for user.
func (s *mailStack) ep(proto endpoint.Protocol, sec endpoint.Security, port, user string) endpoint.Endpoint {
	return endpoint.Endpoint{
		Protocol: proto, Host: s.get("MAILSTACK_HOST"), Port: s.port(port),
		Security: sec, Username: user,
	}
}

// url is a credsync verify URL: scheme://user@host:port.
func (s *mailStack) url(scheme, user, port string) string {
	return scheme + "://" + strings.ReplaceAll(user, "@", "%40") + "@" + s.addr(port)
}

// resetLDAPPassword sets user's password as the directory's administrator,
// so that a test leaves the stack as it found it whatever happened.
func (s *mailStack) resetLDAPPassword(t *testing.T, user, password string) {
	t.Helper()
	conn, err := ldap.DialURL("ldap://"+s.addr("LDAP"), ldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
	if err != nil {
		t.Errorf("restoring %s's password: %v", user, err)
		return
	}
	defer conn.Close()
	conn.SetTimeout(10 * time.Second)
	if err := conn.StartTLS(&tls.Config{ServerName: s.get("MAILSTACK_HOST"), RootCAs: s.roots}); err != nil {
		t.Errorf("restoring %s's password: StartTLS: %v", user, err)
		return
	}
	if err := conn.Bind(s.get("MAILSTACK_LDAP_ADMIN_DN"), s.get("MAILSTACK_LDAP_ADMIN_PASSWORD")); err != nil {
		t.Errorf("restoring %s's password: admin bind: %v", user, err)
		return
	}
	if _, err := conn.PasswordModify(ldap.NewPasswordModifyRequest(s.userDN(user), "", password)); err != nil {
		t.Errorf("restoring %s's password: %v", user, err)
	}
}

// verifyResult is one run of `credsync verify`.
type verifyResult struct {
	code           int
	stdout, stderr string
}

// line returns the output line for side ("incoming" or "outgoing").
func (r verifyResult) line(side string) string {
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(l, side+": ") {
			return l
		}
	}
	return ""
}

// outcome is the stable word after "side: ".
func (r verifyResult) outcome(side string) string {
	rest := strings.TrimPrefix(r.line(side), side+": ")
	word, _, _ := strings.Cut(rest, ":")
	return word
}

// runVerify runs the credsync binary as a user would, the password on
// standard input.
func runVerify(t *testing.T, password string, args ...string) verifyResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, credsyncBin, append([]string{"verify", "--password-stdin", "--timeout", "10s"}, args...)...)
	cmd.Stdin = strings.NewReader(password + "\n")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("credsync verify: %v", err)
	}
	r := verifyResult{code: code, stdout: out.String(), stderr: errOut.String()}
	if strings.Contains(r.stdout+r.stderr, password) {
		t.Errorf("credsync printed the password: %q %q", r.stdout, r.stderr)
	}
	return r
}

// logMark remembers where a log file ended.
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
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	} else {
		return nil
	}
	return strings.Split(string(b), "\n")
}

// settle waits until count(lines since m) reaches want or wait passes, then
// waits a little more so that a surplus line would show, and returns the
// final count. Daemons write their logs asynchronously.
func settle(t *testing.T, m logMark, want int, wait time.Duration, count func([]string) int) int {
	t.Helper()
	deadline := time.Now().Add(wait)
	for count(m.lines(t)) < want && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	return count(m.lines(t))
}

// nonLocalRelay forwards connections to target from the source address
// 127.0.0.2. Dovecot counts a client whose address equals the server's as
// secured and then allows plaintext authentication; through the relay it
// sees a client from another address, as on a real network, and refuses.
// The relay listens on 127.0.0.1 like everything else.
func nonLocalRelay(t *testing.T, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := d.Dial("tcp", target)
			if err != nil {
				t.Errorf("relay: %v", err)
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, up)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(up, c); _ = up.(*net.TCPConn).CloseWrite() })
			wg.Go(func() { _, _ = io.Copy(c, up); _ = c.(*net.TCPConn).CloseWrite() })
		}
	})
	return ln.Addr().String()
}

// closedAddr is a 127.0.0.1 address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
