//go:build integration

package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/testkit/mailstack"
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
	s, err := loadStack(mailstack.EnvPath())
	if err == nil {
		err = s.Up("IMAP", "IMAPS", "POP3", "POP3S", "SUBMISSION", "SUBMISSIONS", "LDAP", "LDAPS")
		if err != nil {
			skipReason = fmt.Sprintf("the mail stack in %s is not running (%v): run `scripts/mailstack start --with-roundcube` (check with `scripts/mailstack status`)", mailstack.Dir(), err)
		}
	} else {
		skipReason = fmt.Sprintf("the mail stack is not set up (%v): run `scripts/mailstack start --with-roundcube` first, or `make test-integration`", err)
	}
	if skipReason == "" {
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
type mailStack struct{ *mailstack.Stack }

func loadStack(path string) (*mailStack, error) {
	st, err := mailstack.Load(path)
	if err != nil {
		return nil, err
	}
	return &mailStack{st}, nil
}

// ep is an endpoint of the stack for user.
func (s *mailStack) ep(proto endpoint.Protocol, sec endpoint.Security, port, user string) endpoint.Endpoint {
	return endpoint.Endpoint{
		Protocol: proto, Host: s.Get("MAILSTACK_HOST"), Port: s.Port(port),
		Security: sec, Username: user,
	}
}

// url is a credsync verify URL: scheme://user@host:port.
func (s *mailStack) url(scheme, user, port string) string {
	return scheme + "://" + strings.ReplaceAll(user, "@", "%40") + "@" + s.Addr(port)
}

// resetLDAPPassword sets user's password as the directory's administrator,
// so that a test leaves the stack as it found it whatever happened.
func (s *mailStack) resetLDAPPassword(t *testing.T, user, password string) {
	t.Helper()
	if err := s.SetPassword(user, password); err != nil {
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
	r := runCredsync(t, 30*time.Second, password+"\n", append([]string{"verify", "--password-stdin", "--timeout", "10s"}, args...)...)
	if strings.Contains(r.stdout+r.stderr, password) {
		t.Errorf("credsync printed the password: %q %q", r.stdout, r.stderr)
	}
	return r
}

// runCredsync runs the credsync binary with args and stdin, for at most
// timeout, and returns its exit code and output.
func runCredsync(t *testing.T, timeout time.Duration, stdin string, args ...string) verifyResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, credsyncBin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("credsync %s: %v", args[0], err)
	}
	return verifyResult{code: code, stdout: out.String(), stderr: errOut.String()}
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

// settle waits until count(lines since m) reaches want or wait passes, then
// waits a little more so that a surplus line would show, and returns the
// final count. Daemons write their logs asynchronously.
func settle(t *testing.T, m mailstack.LogMark, want int, wait time.Duration, count func([]string) int) int {
	t.Helper()
	lines, err := m.Wait(want, wait, 500*time.Millisecond, count)
	if err != nil {
		t.Fatal(err)
	}
	return count(lines)
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
