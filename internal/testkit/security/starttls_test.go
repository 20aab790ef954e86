package security

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/testkit/sandbox"
	"github.com/credsync/credsync/internal/verify"
)

// stripMode is what the man in the middle does to STARTTLS.
type stripMode int

const (
	// hideSTARTTLS removes STARTTLS (STLS) from the server's capabilities
	// (IMAP CAPABILITY, SMTP EHLO, POP3 CAPA) and passes everything else
	// through, the STARTTLS command and the TLS session included.
	hideSTARTTLS stripMode = iota
	// refuseSTARTTLS leaves the capabilities alone but answers the
	// client's STARTTLS (STLS) itself with a refusal, never passing it on,
	// and keeps relaying in clear text: the downgrade an attacker needs to
	// read the credentials.
	refuseSTARTTLS
	// hideAndRefuse does both.
	hideAndRefuse
)

func (m stripMode) hides() bool   { return m != refuseSTARTTLS }
func (m stripMode) refuses() bool { return m != hideSTARTTLS }

// stripProxy is a loopback man in the middle in front of a STARTTLS
// server. It records every byte the client sent before TLS began
// (plaintext) and after (opaque).
type stripProxy struct {
	proto  endpoint.Protocol
	mode   stripMode
	target string
	ln     net.Listener

	mu        sync.Mutex
	plaintext bytes.Buffer // client → server before any TLS
	conns     int
	wg        sync.WaitGroup
}

func startStripProxy(t *testing.T, proto endpoint.Protocol, mode stripMode, target string) *stripProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stripProxy{proto: proto, mode: mode, target: target, ln: ln}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns++
			p.mu.Unlock()
			p.wg.Go(func() { p.serve(c) })
		}
	})
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *stripProxy) addr() string { return p.ln.Addr().String() }

func (p *stripProxy) recorded() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]byte(nil), p.plaintext.Bytes()...)
}

func (p *stripProxy) serve(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer server.Close()
	deadline := time.Now().Add(10 * time.Second)
	client.SetDeadline(deadline)
	server.SetDeadline(deadline)

	var (
		wmu      sync.Mutex // writes to the client
		tlsSoon  = make(chan struct{})
		greeted  = make(chan struct{})
		tlsOnce  sync.Once
		greetOne sync.Once
	)
	toClient := func(b []byte) {
		wmu.Lock()
		defer wmu.Unlock()
		client.Write(b)
	}
	var done sync.WaitGroup
	// Server → client: filter capabilities line by line until TLS.
	done.Go(func() {
		defer client.(*net.TCPConn).CloseWrite()
		r := bufio.NewReader(server)
		var smtpReply []string
		for {
			select {
			case <-tlsSoon:
				// The reply to STARTTLS, then the TLS session: relay as is.
				if n := r.Buffered(); n > 0 {
					b, _ := r.Peek(n)
					toClient(b)
					r.Discard(n)
				}
				io.Copy(writerFunc(func(b []byte) (int, error) { toClient(b); return len(b), nil }), server)
				return
			default:
			}
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			greetOne.Do(func() { close(greeted) })
			if !p.mode.hides() {
				toClient([]byte(line))
				continue
			}
			switch p.proto {
			case endpoint.IMAP:
				if strings.Contains(strings.ToUpper(line), "CAPABILITY") {
					line = removeWord(line, "STARTTLS")
				}
				toClient([]byte(line))
			case endpoint.POP3:
				if strings.EqualFold(strings.TrimSpace(line), "STLS") {
					continue
				}
				toClient([]byte(line))
			case endpoint.SMTP:
				// Multi-line replies: "250-X" … "250 Y". Drop STARTTLS and
				// re-mark the last line.
				smtpReply = append(smtpReply, strings.TrimRight(line, "\r\n"))
				if len(line) >= 4 && line[3] == '-' {
					continue
				}
				var kept []string
				for _, l := range smtpReply {
					if len(l) >= 4 && strings.EqualFold(strings.TrimSpace(l[4:]), "STARTTLS") {
						continue
					}
					kept = append(kept, l)
				}
				smtpReply = nil
				var b strings.Builder
				for i, l := range kept {
					sep := "-"
					if i == len(kept)-1 {
						sep = " "
					}
					if len(l) >= 4 {
						l = l[:3] + sep + l[4:]
					}
					b.WriteString(l + "\r\n")
				}
				toClient([]byte(b.String()))
			}
		}
	})
	// Client → server: record, and refuse or pass STARTTLS.
	done.Go(func() {
		defer server.(*net.TCPConn).CloseWrite()
		r := bufio.NewReader(client)
		for {
			line, err := r.ReadString('\n')
			p.mu.Lock()
			p.plaintext.WriteString(line)
			p.mu.Unlock()
			if err != nil {
				return
			}
			fields := strings.Fields(strings.ToUpper(line))
			verb := ""
			switch {
			case p.proto == endpoint.IMAP && len(fields) >= 2:
				verb = fields[1]
			case len(fields) >= 1:
				verb = fields[0]
			}
			if verb != "STARTTLS" && verb != "STLS" {
				server.Write([]byte(line))
				continue
			}
			if p.mode.refuses() {
				select {
				case <-greeted:
				case <-time.After(5 * time.Second):
				}
				switch p.proto {
				case endpoint.IMAP:
					toClient([]byte(strings.Fields(line)[0] + " BAD STARTTLS not available\r\n"))
				case endpoint.SMTP:
					toClient([]byte("502 5.5.1 STARTTLS not available\r\n"))
				case endpoint.POP3:
					toClient([]byte("-ERR unknown command\r\n"))
				}
				continue
			}
			tlsOnce.Do(func() { close(tlsSoon) })
			server.Write([]byte(line))
			if n := r.Buffered(); n > 0 {
				b, _ := r.Peek(n)
				server.Write(b)
				r.Discard(n)
			}
			io.Copy(server, client) // TLS: opaque from here on
			return
		}
	})
	done.Wait()
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// removeWord removes the word w (case-insensitive) from a line of words.
func removeWord(line, w string) string {
	end := line[len(strings.TrimRight(line, "\r\n")):]
	var kept []string
	for _, f := range strings.Fields(line) {
		if !strings.EqualFold(strings.Trim(f, "[]"), w) {
			kept = append(kept, f)
		} else if strings.HasSuffix(f, "]") {
			kept = append(kept, "]")
		}
	}
	return strings.Join(kept, " ") + end
}

// TestSTARTTLSStrippedByAProxy puts a man in the middle between credsync
// and the sandbox's STARTTLS servers (IMAP, POP3, SMTP submission) that
// hides STARTTLS from the capabilities, refuses the command, or both. The
// credentials never cross the proxy in clear text: the login either
// happens inside a TLS session verified end to end with the real server
// (the proxy only hid the capability; credsync asked for STARTTLS anyway)
// or does not happen at all and the result is tls_error.
func TestSTARTTLSStrippedByAProxy(t *testing.T) {
	sb, err := sandbox.Start(sandbox.Options{Users: map[string]string{"alice": Canary}})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	servers := map[endpoint.Protocol]string{endpoint.IMAP: sb.IMAP, endpoint.POP3: sb.POP3, endpoint.SMTP: sb.Submission}
	for _, proto := range []endpoint.Protocol{endpoint.IMAP, endpoint.POP3, endpoint.SMTP} {
		for _, mode := range []stripMode{hideSTARTTLS, refuseSTARTTLS, hideAndRefuse} {
			name := string(proto) + map[stripMode]string{hideSTARTTLS: "/hidden", refuseSTARTTLS: "/refused", hideAndRefuse: "/hidden+refused"}[mode]
			t.Run(name, func(t *testing.T) {
				proxy := startStripProxy(t, proto, mode, servers[proto])
				host, port, _ := net.SplitHostPort(proxy.addr())
				p, _ := strconv.Atoi(port)
				ep := endpoint.Endpoint{Protocol: proto, Host: host, Port: p, Security: endpoint.STARTTLS,
					AuthMethod: endpoint.AuthPasswordCleartext, Username: "alice"}
				mark := len(sb.Logins())
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				res := verify.Login(ctx, ep, Canary, verify.Trust{Roots: sb.CAPool})
				logins := sb.Logins()[mark:]
				plain := proxy.recorded()
				t.Logf("outcome %s (%s); client sent in clear: %q", res.Outcome, res.Detail, plain)

				for _, f := range ScanBytes("proxy", plain, Canary) {
					t.Errorf("the password crossed the proxy in clear text (%s)", f.Form)
				}
				for _, line := range strings.Split(string(plain), "\n") {
					fields := strings.Fields(strings.ToUpper(line))
					for _, f := range fields[:min(2, len(fields))] {
						if f == "LOGIN" || f == "AUTHENTICATE" || f == "AUTH" || f == "USER" || f == "PASS" {
							t.Errorf("the client sent %q in clear text", line)
						}
					}
				}
				switch {
				case res.Outcome == verify.TLSError:
					if len(logins) != 0 {
						t.Errorf("the server saw %d logins after a tls_error", len(logins))
					}
				case res.Outcome == verify.OK && mode == hideSTARTTLS:
					// STARTTLS went through the proxy: the login happened in
					// TLS, with the real server, verified.
					if len(logins) != 1 || !logins[0].OK {
						t.Errorf("outcome ok but the server saw %+v", logins)
					}
				default:
					t.Errorf("outcome %s (%s), want tls_error (or ok over TLS when STARTTLS was only hidden)", res.Outcome, res.Detail)
				}
				if mode.refuses() && res.Outcome != verify.TLSError {
					t.Errorf("STARTTLS refused: outcome %s, want tls_error", res.Outcome)
				}
				proxy.mu.Lock()
				conns := proxy.conns
				proxy.mu.Unlock()
				if conns != 1 {
					t.Errorf("%d connections through the proxy, want 1 (no retry, no fallback)", conns)
				}
			})
		}
	}
}
