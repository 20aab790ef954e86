//go:build integration

package integration

import (
	"bufio"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/testkit/sandbox"
)

// cutter is a TLS man in the middle in front of one of the stack's
// implicit-TLS servers that lets a login through to the real server and
// then cuts the connection before the server's verdict reaches the client:
// a network error in the middle of the authentication. It presents a
// certificate of its own CA (given to credsync with --ca-file).
type cutter struct {
	ln    net.Listener
	conns atomic.Int32
	auths atomic.Int32
	wg    sync.WaitGroup
}

func startCutter(t *testing.T, s *mailStack, serverCfg *tls.Config, target string, isAuth func(line string) bool) *cutter {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", serverCfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{ln: ln}
	upstream := &tls.Config{RootCAs: s.Roots, ServerName: s.Get("MAILSTACK_HOST"), MinVersion: tls.VersionTLS12}
	c.wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			c.conns.Add(1)
			c.wg.Go(func() {
				defer client.Close()
				server, err := tls.Dial("tcp", target, upstream)
				if err != nil {
					t.Errorf("cutter: %v", err)
					return
				}
				defer server.Close()
				deadline := time.Now().Add(15 * time.Second)
				client.SetDeadline(deadline)
				server.SetDeadline(deadline)
				var cut atomic.Bool
				done := make(chan struct{})
				go func() { // server → client, until the cut
					defer close(done)
					buf := make([]byte, 4096)
					for {
						n, err := server.Read(buf)
						if cut.Load() {
							// The verdict arrived: the client never sees it.
							client.(*tls.Conn).NetConn().(*net.TCPConn).SetLinger(0)
							client.Close()
							return
						}
						if n > 0 {
							client.Write(buf[:n])
						}
						if err != nil {
							return
						}
					}
				}()
				r := bufio.NewReader(client)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						break
					}
					if isAuth(line) {
						c.auths.Add(1)
						cut.Store(true)
					}
					server.Write([]byte(line))
				}
				<-done
			})
		}
	})
	t.Cleanup(func() { ln.Close(); c.wg.Wait() })
	return c
}

// TestNetworkErrorMidAuthIsNotRetried: the connection breaks after the
// credentials reached the real server and before its answer came back.
// credsync reports a network error and does not log in again: Dovecot and
// Postfix each see exactly one authentication (a wrong password: one
// failure in their logs, as lockout policies count), over exactly one
// connection.
func TestNetworkErrorMidAuthIsNotRetried(t *testing.T) {
	s := needStack(t)
	alice := s.Get("MAILSTACK_FILE_USER")
	pki, err := sandbox.Start(sandbox.Options{}) // for its CA and certificate only
	if err != nil {
		t.Fatal(err)
	}
	defer pki.Close()
	caFile := filepath.Join(t.TempDir(), "mitm-ca.pem")
	if err := os.WriteFile(caFile, pki.CAPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	imapAuth := func(l string) bool {
		f := strings.Fields(strings.ToUpper(l))
		return len(f) >= 2 && (f[1] == "LOGIN" || f[1] == "AUTHENTICATE")
	}
	smtpAuth := func(l string) bool { return strings.HasPrefix(strings.ToUpper(l), "AUTH ") }
	pop3Auth := func(l string) bool { return strings.HasPrefix(strings.ToUpper(l), "PASS ") }
	const wrong = "Wrong-Pass1!"
	for _, c := range []struct {
		name, scheme, port, login string
		isAuth                    func(string) bool
		incoming                  bool
	}{
		{"IMAPS", "imaps", "IMAPS", "imap-login", imapAuth, true},
		{"POP3S", "pop3s", "POP3S", "pop3-login", pop3Auth, true},
		{"SUBMISSIONS", "smtps", "SUBMISSIONS", "", smtpAuth, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cut := startCutter(t, s, pki.ServerTLSConfig(), s.Addr(c.port), c.isAuth)
			dovecot, postfix := markLog(t, s.Get("MAILSTACK_DOVECOT_LOG")), markLog(t, s.Get("MAILSTACK_POSTFIX_LOG"))
			side := "incoming"
			if !c.incoming {
				side = "outgoing"
			}
			url := c.scheme + "://" + strings.ReplaceAll(alice, "@", "%40") + "@" + cut.ln.Addr().String()
			r := runVerify(t, wrong, "--"+side, url, "--ca-file", caFile)
			if r.code != 1 || r.outcome(side) != "network_error" {
				t.Fatalf("credsync verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			if n, a := cut.conns.Load(), cut.auths.Load(); n != 1 || a != 1 {
				t.Fatalf("%d connections, %d authentications through the proxy; want 1 and 1", n, a)
			}
			if c.incoming {
				if n := settle(t, dovecot, 1, 5*time.Second, countLoginFailures(c.login, alice)); n != 1 {
					t.Errorf("Dovecot logged %d failed attempts, want 1:\n%s", n, strings.Join(logLines(t, dovecot), "\n"))
				}
			} else if n := settle(t, postfix, 1, 5*time.Second, countSASLFailures("submissions", alice)); n != 1 {
				t.Errorf("Postfix logged %d SASL failures, want 1:\n%s", n, strings.Join(logLines(t, postfix), "\n"))
			}
		})
	}
}
