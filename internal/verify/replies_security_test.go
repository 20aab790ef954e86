package verify_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/verify"
)

const secFuzzUser = "alice"

// secFuzzPasswords: one that IMAP quotes, and one it sends as a literal
// (not ASCII), which may wait for the server's "+".
var secFuzzPasswords = [2]string{"Fuzz-Secret-pw1", "Fuzz-Perché-pw1"}

// secScriptServer answers one connection with script, split at NUL: the
// first part at once (the greeting), each next part after a line from the
// client; then it closes its side. It records what the client sent.
func secScriptServer(t *testing.T, script []byte) (addr string, sent func() []byte, conns func() int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got bytes.Buffer
	n := 0
	var wg, handlers sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			n++
			mu.Unlock()
			handlers.Add(1)
			wg.Go(func() {
				defer handlers.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				parts := bytes.Split(script, []byte{0})
				c.Write(parts[0])
				r := bufio.NewReader(c)
				for _, p := range parts[1:] {
					// The next part goes after a line from the client, or
					// after 20 ms when none comes (the client may wait for
					// more from the server).
					c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
					line, err := r.ReadBytes('\n')
					mu.Lock()
					got.Write(line)
					mu.Unlock()
					if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
						return
					}
					c.Write(p)
				}
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				c.(*net.TCPConn).CloseWrite()
				rest := make([]byte, 4096)
				for {
					k, err := r.Read(rest)
					mu.Lock()
					got.Write(rest[:k])
					mu.Unlock()
					if err != nil {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String(),
		func() []byte {
			// Everything the client sent: once it closed the connection.
			done := make(chan struct{})
			go func() { handlers.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
			}
			mu.Lock()
			defer mu.Unlock()
			return bytes.Clone(got.Bytes())
		},
		func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// FuzzLoginReplies runs one real login against a server that answers with
// arbitrary bytes (IMAP, POP3 or SMTP; no TLS, or STARTTLS; security's
// second bit picks the password): whatever the server says, Login returns a
// known outcome with a one-line detail that never holds the password, opens
// one connection, sends the password at most once — and says ok only after
// it did send it.
func FuzzLoginReplies(f *testing.F) {
	// Seed corpus: testdata/fuzz/FuzzLoginReplies.
	f.Fuzz(func(t *testing.T, proto, security uint8, script []byte) {
		protos := []endpoint.Protocol{endpoint.IMAP, endpoint.POP3, endpoint.SMTP}
		secs := []endpoint.Security{endpoint.Plain, endpoint.STARTTLS}
		addr, sent, conns := secScriptServer(t, script)
		ep := mkEndpoint(t, protos[int(proto)%3], addr, secs[int(security)%2], secFuzzUser)
		secFuzzPassword := secFuzzPasswords[int(security)/2%2]
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		res := verify.Login(ctx, ep, secFuzzPassword, verify.Trust{})
		if !outcomes[res.Outcome] {
			t.Fatalf("outcome %q", res.Outcome)
		}
		if strings.Contains(res.Detail, secFuzzPassword) || res.Err != nil && strings.Contains(res.Err.Error(), secFuzzPassword) {
			t.Fatalf("the result carries the password: %q", res.Detail)
		}
		if strings.ContainsAny(res.Detail, "\r\n\x00") {
			t.Fatalf("detail %q spans lines", res.Detail)
		}
		if n := conns(); n > 1 {
			t.Fatalf("%d connections: a retry", n)
		}
		wire := sent()
		times := bytes.Count(wire, []byte(secFuzzPassword)) +
			bytes.Count(wire, []byte(base64.StdEncoding.EncodeToString([]byte("\x00"+secFuzzUser+"\x00"+secFuzzPassword)))) +
			bytes.Count(wire, []byte(base64.StdEncoding.EncodeToString([]byte(secFuzzPassword))))
		if times > 1 {
			t.Fatalf("the password was sent %d times:\n%q", times, wire)
		}
		// (On STARTTLS this server never completes a TLS handshake: an ok
		// there would be wrong too.)
		if res.Outcome == verify.OK && times == 0 {
			t.Fatalf("ok without sending the password:\n%q", wire)
		}
		if ep.Security == endpoint.STARTTLS && times > 0 {
			t.Fatalf("the password went out in clear on a STARTTLS endpoint:\n%q", wire)
		}
	})
}
