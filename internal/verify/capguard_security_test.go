package verify_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/testkit/sandbox"
	"github.com/credsync/credsync/internal/verify"
)

// secIMAPServer greets with greeting and then answers each command line
// with answer(tag, verb); implicit TLS when cfg is set. STARTTLS is
// answered OK and upgraded with starttls (when set).
func secIMAPServer(t *testing.T, cfg, starttls *tls.Config, greeting string, answer func(tag, verb string) string) string {
	var ln net.Listener
	var err error
	if cfg != nil {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", cfg)
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				io.WriteString(c, greeting)
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					f := strings.Fields(line)
					if len(f) < 2 {
						return
					}
					if strings.EqualFold(f[1], "STARTTLS") && starttls != nil {
						io.WriteString(c, f[0]+" OK begin TLS\r\n")
						tc := tls.Server(c, starttls)
						if tc.Handshake() != nil {
							return
						}
						c, r = tc, bufio.NewReader(tc)
						continue
					}
					io.WriteString(c, answer(f[0], strings.ToUpper(f[1])))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// A capability list with a parenthesis makes go-imap v2 (beta.8) loop
// forever without reading. Login refuses such a line before the library
// parses it — from a server without TLS, from a man in the middle before
// STARTTLS, from a server with implicit TLS — and returns at once; where
// the guard cannot look (inside TLS after STARTTLS) Login still returns
// by its deadline.
func TestLoginMalformedCapabilities(t *testing.T) {
	sb, err := sandbox.Start(sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	ok := func(tag, verb string) string {
		if verb == "CAPABILITY" {
			return "* CAPABILITY IMAP4rev1\r\n" + tag + " OK done\r\n"
		}
		return tag + " OK done\r\n"
	}
	evilAnswer := func(tag, verb string) string { return tag + " OK [CAPABILITY IMAP4rev1 (] logged in\r\n" }
	const deadline = 700 * time.Millisecond
	for _, c := range []struct {
		name      string
		sec       endpoint.Security
		greeting  string
		answer    func(tag, verb string) string
		atOnce    bool // refused before the deadline
		tlsServer bool
	}{
		{"greeting code, no TLS", endpoint.Plain, "* OK [CAPABILITY IMAP4rev1 (] hi\r\n", ok, true, false},
		{"untagged CAPABILITY, no TLS", endpoint.Plain, "* CAPABILITY IMAP4rev1 (x)\r\n* OK hi\r\n", ok, true, false},
		{"ENABLED, no TLS", endpoint.Plain, "* OK hi\r\n* ENABLED (\r\n", ok, true, false},
		{"before STARTTLS", endpoint.STARTTLS, "* OK [CAPABILITY(IMA LOGINDISABLED]\r\n", ok, true, false},
		{"implicit TLS", endpoint.TLS, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN (] hi\r\n", ok, true, true},
		{"LOGIN answer, implicit TLS", endpoint.TLS, "* OK [CAPABILITY IMAP4rev1] hi\r\n", evilAnswer, true, true},
		{"after STARTTLS", endpoint.STARTTLS, "* OK [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n", evilAnswer, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var cfg *tls.Config
			if c.tlsServer {
				cfg = sb.ServerTLSConfig()
			}
			addr := secIMAPServer(t, cfg, sb.ServerTLSConfig(), c.greeting, c.answer)
			ep := mkEndpoint(t, endpoint.IMAP, addr, c.sec, "alice")
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			res := verify.Login(ctx, ep, "pw-Secret-1", verify.Trust{Roots: sb.CAPool})
			took := time.Since(start)
			t.Logf("%s after %s: %s", res.Outcome, took.Round(time.Millisecond), res.Detail)
			if res.Outcome == verify.OK {
				t.Fatal("ok from a server that sent garbage")
			}
			if c.atOnce && took >= deadline {
				t.Fatalf("took %s: the malformed list reached the library", took)
			}
			if took > deadline+1500*time.Millisecond {
				t.Fatalf("Login returned after %s with a %s deadline", took, deadline)
			}
		})
	}
}
