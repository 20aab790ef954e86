package protocol

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/endpoint"
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
			Listen: func() (net.Listener, string, error) { return ln, fh.addr, nil }}
		h.engine.VerifyTimeout = 2 * time.Second
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		go h.Serve(context.Background(), inR, outW)
		ext := wire.NewWriter(inW)
		send := func(v any) { b, _ := json.Marshal(v); ext.Write(b) }
		account := map[string]any{"id": "account1", "name": "Alice", "passwordBased": true,
			"incoming": ep("imap", deadAddr, "alice"), "outgoing": ep("smtp", deadAddr, "alice")}
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
					fh.stores <- m.Get("password").String()
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

// knownCodes are the error codes of PROTOCOL.md's table.
var knownCodes = map[string]bool{
	"invalid_json": true, "message_too_large": true, "invalid_request": true, "unknown_type": true,
	"internal_error": true, "not_password_account": true, "busy": true, "backend_unknown": true,
	"policy_violation": true, "wrong_current_password": true, "backend_unreachable": true,
	"backend_rejected": true, "outcome_unknown": true, "verification_failed": true, "store_failed": true,
	"store_cancelled": true, "unknown_account": true, "not_changed": true, "store_unconfirmed": true,
	"page_not_recognised": true, "recently_used": true, "changed_too_recently": true, "account_locked": true,
}

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

// FuzzAccountsReply decodes an arbitrary accounts list as the extension
// would send it and matches it: malformed entries are dropped or kept with
// their problem, and every usable account has valid servers of the right
// protocols.
func FuzzAccountsReply(f *testing.F) {
	// Seed corpus: testdata/fuzz/FuzzAccountsReply.
	f.Fuzz(func(t *testing.T, list []byte, username, host string) {
		v := gjson.ParseBytes(list)
		if !v.IsArray() {
			return
		}
		var accounts []listedAccount
		for _, e := range v.Array() {
			a, ok := decodeListed(e)
			if !ok {
				continue
			}
			if a.ID == "" || len(a.ID) > 128 || len(a.Name) > maxName+len("…") {
				t.Fatalf("account %+v", a)
			}
			if a.problem == nil {
				if a.Incoming == nil || a.Incoming.Validate() != nil ||
					a.Incoming.Protocol != endpoint.IMAP && a.Incoming.Protocol != endpoint.POP3 {
					t.Fatalf("usable account with incoming %+v", a.Incoming)
				}
				if a.Outgoing != nil && (a.Outgoing.Validate() != nil || a.Outgoing.Protocol != endpoint.SMTP) {
					t.Fatalf("usable account with outgoing %+v", a.Outgoing)
				}
			} else if a.problem.Code != InvalidRequest {
				t.Fatalf("problem %+v", a.problem)
			}
			accounts = append(accounts, a)
		}
		for _, a := range matchAccounts(accounts, username, host) {
			if a.username != username || !strings.EqualFold(a.host, host) {
				t.Fatalf("%q@%q matched %q@%q", username, host, a.username, a.host)
			}
		}
	})
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
