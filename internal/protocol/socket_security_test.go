package protocol

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/code"
	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/flow"
	"github.com/credsync/credsync/internal/wire"
)

// socketFuzzHost is one host per fuzzing process, listening for socket
// requests on a loopback TCP listener, whose extension lists one password
// account (alice on 127.0.0.1) with servers that refuse connections: a
// request that matches it runs the real sync flow, which fails fast and
// stores nothing.
type socketFuzzHost struct {
	addr   string
	log    *syncBuffer
	stores chan string
}

var (
	socketFuzzOnce sync.Once
	socketFuzz     *socketFuzzHost
	socketFuzzErr  error
)

func startSocketFuzzHost() (*socketFuzzHost, error) {
	socketFuzzOnce.Do(func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			socketFuzzErr = err
			return
		}
		dead, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			socketFuzzErr = err
			return
		}
		deadAddr := dead.Addr().String()
		dead.Close()
		fh := &socketFuzzHost{addr: ln.Addr().String(), log: &syncBuffer{}, stores: make(chan string, 1024)}
		h := &Host{Version: "fuzz", Log: log.New(fh.log, "", 0), ListenDelay: time.Millisecond,
			Listen: func() (net.Listener, string, error) { return ln, fh.addr, nil }, verifyTimeout: 2 * time.Second}
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		go h.Serve(context.Background(), inR, outW)
		ext := wire.NewWriter(inW)
		send := func(v any) { b, _ := json.Marshal(v); ext.Write(b) }
		in, out := onHost(srv("imap", deadAddr, "alice"), "127.0.0.1"), onHost(srv("smtp", deadAddr, "alice"), "127.0.0.1")
		in["saved"], out["saved"] = nil, nil
		account := acct("account1", "Alice", in, out)
		go func() {
			r := wire.NewReader(outR, 0)
			for {
				body, err := r.Read()
				if err != nil {
					return
				}
				m := gjson.ParseBytes(body)
				switch m.Get("type").String() {
				case "accounts":
					send(map[string]any{"id": m.Get("id").String(), "status": "ok", "result": map[string]any{"accounts": []any{account}}})
				case "store":
					fh.stores <- m.Raw
					send(map[string]any{"id": m.Get("id").String(), "status": "error", "code": "store_failed", "message": "fuzz"})
				}
			}
		}()
		send(map[string]any{"id": "hello", "type": "hello"}) // the session's first message starts the listener
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) && !strings.Contains(fh.log.String(), "listening") {
			time.Sleep(time.Millisecond)
		}
		socketFuzz = fh
	})
	return socketFuzz, socketFuzzErr
}

// knownCodes are the error codes the host sends (internal/code).
var knownCodes = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range code.Host {
		m[string(c)] = true
	}
	return m
}()

// FuzzSocketRequest sends one arbitrary frame to the local socket of a
// running host: exactly one reply comes, a JSON object with a known code
// or a result, never carrying the request's password; nothing panics
// (a recovered panic would log a stack); nothing is stored.
func FuzzSocketRequest(f *testing.F) {
	// Seed corpus: testdata/fuzz/FuzzSocketRequest.
	f.Fuzz(func(t *testing.T, body []byte) {
		fh, err := startSocketFuzzHost()
		if err != nil {
			t.Fatal(err)
		}
		conn, err := net.Dial("tcp", fh.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		if len(body) > socketMaxIncoming+16 {
			body = body[:socketMaxIncoming+16]
		}
		if err := wire.NewWriter(conn).Write(body); err != nil {
			t.Fatal(err)
		}
		reply, err := wire.NewReader(conn, 0).Read()
		if err != nil {
			t.Fatalf("no reply to %q: %v\n%s", body, err, fh.log.String())
		}
		if !utf8.Valid(reply) || !gjson.ValidBytes(reply) {
			t.Fatalf("the reply is not JSON: %q", reply)
		}
		m := gjson.ParseBytes(reply)
		if id := m.Get("id"); id.Type != gjson.String && id.Type != gjson.Null {
			t.Fatalf("reply id %s", id.Raw)
		}
		switch m.Get("status").String() {
		case "ok":
			if !m.Get("result.accounts").IsArray() {
				t.Fatalf("ok reply without accounts: %s", reply)
			}
			for _, a := range m.Get("result.accounts").Array() {
				if a.Get("stored").Bool() {
					t.Fatalf("stored through a dead server: %s", reply)
				}
				if c := a.Get("code").String(); !knownCodes[c] {
					t.Fatalf("account code %q: %s", c, reply)
				}
			}
		case "error":
			if !knownCodes[m.Get("code").String()] || m.Get("message").String() == "" {
				t.Fatalf("error reply %s", reply)
			}
		default:
			t.Fatalf("reply without status: %s", reply)
		}
		if pw := gjson.GetBytes(body, "password"); pw.Type == gjson.String && len(pw.String()) >= 6 &&
			strings.Contains(string(reply), pw.String()) && !echoedElsewhere(gjson.ParseBytes(body), pw.String()) {
			t.Fatalf("the reply carries the password: %s", reply)
		}
		if strings.Contains(fh.log.String(), "goroutine ") {
			t.Fatalf("a handler panicked:\n%s", fh.log.String())
		}
		select {
		case <-fh.stores:
			t.Fatalf("%q made the host ask the extension to store", body)
		default:
		}
	})
}

// FuzzAccountsReply answers the host's accounts request with an arbitrary
// result (a protocol-2 accounts reply) and plans every account's change
// from what was decoded: entries are dropped or kept whole, a kept server
// is usable (valid endpoint of the right protocol, origin, consistent
// saved) or carries its problem, and planning never panics, touches only
// listed accounts, and puts the planned account first.
func FuzzAccountsReply(f *testing.F) {
	// Seed corpus: testdata/fuzz/FuzzAccountsReply.
	f.Fuzz(func(t *testing.T, result []byte, salt string) {
		if !gjson.ValidBytes(result) {
			return
		}
		s := &session{pending: map[string]chan gjson.Result{}, out: wire.NewWriter(io.Discard), log: log.New(io.Discard, "", 0)}
		go func() {
			for {
				s.mu.Lock()
				_, asked := s.pending["host-1"]
				s.mu.Unlock()
				if asked {
					s.deliver(gjson.Parse(`{"id":"host-1","status":"ok","result":` + string(result) + `}`))
					return
				}
				time.Sleep(50 * time.Microsecond)
			}
		}()
		accounts, err := s.Accounts(context.Background(), salt)
		if err != nil {
			return
		}
		ids := map[string]bool{}
		for _, a := range accounts {
			if a.ID == "" || len(a.ID) > 128 || len(a.Name) > maxName+len("…") || a.Incoming == nil {
				t.Fatalf("account %+v", a)
			}
			ids[a.ID] = true
			for _, sv := range []*flow.Server{a.Incoming, a.Outgoing} {
				if sv == nil || sv.Problem != "" {
					continue
				}
				if sv.Validate() != nil || sv.Origin == "" ||
					sv.Saved.Exists && (!sv.Saved.Known || len(sv.Saved.Fingerprint) != 64) || !sv.Saved.Exists && sv.Saved.Fingerprint != "" {
					t.Fatalf("usable server %+v", sv)
				}
			}
			if a.Incoming.Problem == "" && a.Incoming.Protocol != endpoint.IMAP && a.Incoming.Protocol != endpoint.POP3 ||
				a.Outgoing != nil && a.Outgoing.Problem == "" && a.Outgoing.Protocol != endpoint.SMTP {
				t.Fatalf("server of the wrong protocol in %+v", a)
			}
		}
		previews, err := (&flow.Engine{Thunderbird: listed(accounts)}).Previews(context.Background())
		if err != nil || len(previews) != len(accounts) {
			t.Fatalf("Previews() = %d, %v for %d accounts", len(previews), err, len(accounts))
		}
		for i, p := range previews {
			if p.ID != accounts[i].ID || p.PasswordBased != (len(p.Touches) > 0) || p.PasswordBased && p.Touches[0].ID != p.ID {
				t.Fatalf("preview %+v of %+v", p, accounts[i])
			}
			for _, tc := range p.Touches {
				if !ids[tc.ID] || len(tc.Sides) == 0 {
					t.Fatalf("preview %+v touches %+v", p, tc)
				}
			}
		}
	})
}

// listed is a flow.Thunderbird that lists fixed accounts and stores nothing.
type listed []flow.Account

func (l listed) Accounts(context.Context, string) ([]flow.Account, error) { return l, nil }
func (listed) ReadLogin(context.Context, flow.Login) (string, error) {
	return "", errors.New("not here")
}
func (listed) Store(context.Context, string, []flow.Write) ([]flow.Written, error) {
	return nil, errors.New("not here")
}

// echoedElsewhere: s is part of a member or value of msg other than the
// top-level password (which a reply may legitimately quote as that).
func echoedElsewhere(msg gjson.Result, s string) bool {
	found := false
	var walk func(v gjson.Result, top bool)
	walk = func(v gjson.Result, top bool) {
		v.ForEach(func(k, e gjson.Result) bool {
			if strings.Contains(k.String(), s) || e.Type == gjson.String && !(top && k.String() == "password") && strings.Contains(e.String(), s) {
				found = true
			}
			if e.IsObject() || e.IsArray() {
				walk(e, false)
			}
			return !found
		})
	}
	walk(msg, true)
	return found
}
