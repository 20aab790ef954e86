package protocol

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/audit"
	"github.com/credsync/credsync/internal/localsock"
	"github.com/credsync/credsync/internal/testkit/sandbox"
	"github.com/credsync/credsync/internal/verify"
	"github.com/credsync/credsync/internal/wire"
)

// thunderbird plays the extension for a host that also listens on the
// local socket: it answers the host's accounts and store requests by
// itself and keeps every other message.
type thunderbird struct {
	t      *testing.T
	in     *io.PipeWriter
	out    *wire.Writer
	logBuf *syncBuffer

	mu       sync.Mutex
	accounts any // the accounts reply: a list, or a full reply map
	stores   []gjson.Result
	others   []gjson.Result
	replies  chan gjson.Result
	listens  atomic.Int32
	served   chan error
	closedIn bool
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// privateRuntimeDir points XDG_RUNTIME_DIR at a fresh short directory.
func privateRuntimeDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "ps")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	t.Setenv("XDG_RUNTIME_DIR", d)
	return d
}

func startThunderbird(t *testing.T, h *Host, accounts any) *thunderbird {
	t.Helper()
	privateRuntimeDir(t)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	tb := &thunderbird{t: t, in: inW, out: wire.NewWriter(inW), logBuf: &syncBuffer{}, accounts: accounts,
		replies: make(chan gjson.Result, 16), served: make(chan error, 1)}
	h.Log = log.New(tb.logBuf, "", 0)
	if h.Listen == nil {
		h.Listen = func() (net.Listener, string, error) {
			tb.listens.Add(1)
			return localsock.Listen()
		}
	}
	if h.ListenDelay == 0 {
		h.ListenDelay = 10 * time.Millisecond
	}
	go func() {
		tb.served <- h.Serve(context.Background(), inR, outW)
		outW.Close()
	}()
	go tb.read(outR)
	t.Cleanup(func() {
		tb.close()
		if err := tb.wait(); err != nil {
			t.Errorf("Serve() = %v", err)
		}
	})
	return tb
}

func (tb *thunderbird) close() {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if !tb.closedIn {
		tb.closedIn = true
		tb.in.Close()
	}
}

func (tb *thunderbird) wait() error {
	select {
	case err := <-tb.served:
		tb.served <- err
		return err
	case <-time.After(10 * time.Second):
		return errors.New("Serve() did not return after its input closed")
	}
}

func (tb *thunderbird) read(r io.Reader) {
	frames := wire.NewReader(r, 0)
	for {
		body, err := frames.Read()
		if err != nil {
			close(tb.replies)
			return
		}
		m := gjson.ParseBytes(body)
		switch m.Get("type").String() {
		case "accounts":
			tb.mu.Lock()
			reply, ok := tb.accounts.(map[string]any)
			if !ok {
				reply = map[string]any{"status": "ok", "result": map[string]any{"accounts": tb.accounts}}
			}
			tb.mu.Unlock()
			tb.send(withID(reply, m.Get("id").String()))
		case "store":
			tb.mu.Lock()
			tb.stores = append(tb.stores, m)
			tb.mu.Unlock()
			tb.send(map[string]any{"id": m.Get("id").String(), "status": "ok", "result": map[string]any{}})
		default:
			if m.Get("status").Exists() {
				tb.replies <- m
				continue
			}
			tb.mu.Lock()
			tb.others = append(tb.others, m)
			tb.mu.Unlock()
		}
	}
}

func withID(m map[string]any, id string) map[string]any {
	c := map[string]any{"id": id}
	for k, v := range m {
		c[k] = v
	}
	return c
}

func (tb *thunderbird) send(v any) {
	b, _ := json.Marshal(v)
	tb.out.Write(b)
}

// request sends a request on the port and waits for its reply.
func (tb *thunderbird) request(req map[string]any) gjson.Result {
	tb.t.Helper()
	tb.send(req)
	select {
	case m := <-tb.replies:
		return m
	case <-time.After(20 * time.Second):
		tb.t.Fatal("no reply from the host")
	}
	return gjson.Result{}
}

// open sends the extension's first request and waits for the socket.
func (tb *thunderbird) open() {
	tb.t.Helper()
	if r := tb.request(map[string]any{"id": "1", "type": "hello"}); r.Get("status").String() != "ok" {
		tb.t.Fatalf("hello = %s", r.Raw)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := localsock.Dial(context.Background())
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			tb.t.Fatalf("the host does not listen: %v\n%s", err, tb.logBuf)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (tb *thunderbird) storeRequests() []gjson.Result {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]gjson.Result(nil), tb.stores...)
}

// socketCall sends requests over one socket connection and returns the replies.
func socketCall(t *testing.T, reqs ...any) []gjson.Result {
	t.Helper()
	c, err := localsock.Dial(context.Background())
	if err != nil {
		t.Fatalf("Dial() = %v", err)
	}
	defer c.Close()
	w, r := wire.NewWriter(c), wire.NewReader(c, 0)
	var replies []gjson.Result
	for _, req := range reqs {
		b, ok := req.([]byte)
		if !ok {
			b, _ = json.Marshal(req)
		}
		if err := w.Write(b); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		body, err := r.Read()
		if err != nil {
			t.Fatalf("reading the reply: %v", err)
		}
		replies = append(replies, gjson.ParseBytes(body))
	}
	return replies
}

func listed(id, name string, incoming, outgoing map[string]any, passwordBased bool) map[string]any {
	var out any
	if outgoing != nil {
		out = outgoing
	}
	return map[string]any{"id": id, "name": name, "incoming": incoming, "outgoing": out, "passwordBased": passwordBased,
		"hasIncomingPassword": true, "hasOutgoingPassword": true}
}

// onHost is ep with the host name replaced (the sandbox listens on 127.0.0.1).
func onHost(e map[string]any, host string) map[string]any {
	e["host"] = host
	return e
}

const user = "alice@example.org"

func socketSandbox(t *testing.T, password string) (*sandbox.Sandbox, verify.Trust) {
	t.Helper()
	sb, err := sandbox.Start(sandbox.Options{Users: map[string]string{user: password, "bob": "bobs-Passw0rd"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	return sb, verify.Trust{Roots: sb.CAPool}
}

func syncReq(username, host, password string) map[string]any {
	return map[string]any{"id": "s1", "type": "sync", "match": map[string]any{"username": username, "host": host}, "password": password}
}

func TestSocketSyncStoresEveryMatchingAccount(t *testing.T) {
	const pw = "changed-Elsewhere-1"
	sb, trust := socketSandbox(t, pw)
	accounts := []any{
		listed("account1", "Alice IMAP", onHost(ep("imap", sb.IMAPS, user), "localhost"), onHost(ep("smtp", sb.SMTPS, user), "localhost"), true),
		listed("account2", "Mario Rossi", onHost(ep("pop3", sb.POP3S, user), "LOCALHOST"), onHost(ep("smtp", sb.SMTPS, user), "localhost"), true),
		listed("account3", "Bob", onHost(ep("imap", sb.IMAPS, "bob"), "localhost"), nil, true),
		listed("account4", "Alice elsewhere", onHost(ep("imap", sb.IMAPS, user), "127.0.0.1"), nil, true),
		listed("account5", "Alice OAuth", func() map[string]any {
			e := onHost(ep("imap", sb.IMAPS, user), "localhost")
			e["authMethod"] = 10
			return e
		}(), nil, false),
		listed("account6", "No auth outgoing", onHost(ep("imap", sb.IMAPS, user), "localhost"), func() map[string]any {
			e := onHost(ep("smtp", sb.SMTPS, "ignored"), "localhost")
			e["authMethod"] = 1
			return e
		}(), true),
	}
	tb := startThunderbird(t, &Host{Version: "test", Trust: trust}, accounts)
	tb.open()

	reply := socketCall(t, syncReq(user, "LocalHost", pw))[0]
	if reply.Get("id").String() != "s1" || reply.Get("status").String() != "ok" {
		t.Fatalf("reply = %s", reply.Raw)
	}
	got := map[string]string{}
	for _, a := range reply.Get("result.accounts").Array() {
		outcome := "stored"
		if !a.Get("stored").Bool() {
			outcome = a.Get("code").String()
		}
		got[a.Get("id").String()+" ("+a.Get("name").String()+")"] = outcome
	}
	want := map[string]string{
		"account1 (Alice IMAP)":       "stored",
		"account2 (Mario Rossi)":      "stored",
		"account5 (Alice OAuth)":      "not_password_account",
		"account6 (No auth outgoing)": "stored",
	}
	if len(got) != len(want) {
		t.Fatalf("accounts = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("accounts = %v, want %v", got, want)
		}
	}
	var stored []string
	for _, s := range tb.storeRequests() {
		stored = append(stored, s.Get("accountId").String()+" "+s.Get("sides").Raw)
		if s.Get("password").String() != pw {
			t.Fatal("a store request carried another password")
		}
	}
	if strings.Join(stored, ", ") != `account1 ["incoming","outgoing"], account2 ["incoming","outgoing"], account6 ["incoming"]` {
		t.Fatalf("store requests: %v", stored)
	}
	// The extension sees no progress events for socket flows.
	if len(tb.others) != 0 {
		t.Fatalf("unexpected messages to the extension: %v", tb.others)
	}
	if strings.Contains(tb.logBuf.String(), pw) {
		t.Fatal("the password reached the log")
	}
}

// A wrong password: the first account's flow fails, and the accounts
// sharing its login are not tried, so each server sees one failed login.
func TestSocketSyncWrongPasswordCostsOneLoginPerServer(t *testing.T) {
	sb, trust := socketSandbox(t, "the-Real-one-1")
	accounts := []any{
		listed("account1", "", onHost(ep("imap", sb.IMAPS, user), "localhost"), onHost(ep("smtp", sb.SMTPS, user), "localhost"), true),
		listed("account2", "", onHost(ep("pop3", sb.POP3S, user), "localhost"), nil, true),
	}
	tb := startThunderbird(t, &Host{Version: "test", Trust: trust}, accounts)
	tb.open()
	reply := socketCall(t, syncReq(user, "localhost", "a-Wrong-one-2"))[0]
	a := reply.Get("result.accounts").Array()
	if len(a) != 2 || a[0].Get("code").String() != "verification_failed" || a[0].Get("incoming.outcome").String() != "auth_failed" ||
		a[1].Get("code").String() != "verification_failed" || !strings.Contains(a[1].Get("message").String(), "not tried") {
		t.Fatalf("reply = %s", reply.Raw)
	}
	if n := len(sb.Logins()); n != 2 {
		t.Fatalf("%d logins, want one to IMAP and one to SMTP: %+v", n, sb.Logins())
	}
	if len(tb.storeRequests()) != 0 {
		t.Fatal("a refused password was stored")
	}
}

func TestSocketSyncNoMatch(t *testing.T) {
	sb, trust := socketSandbox(t, "pw-Whatever-1")
	accounts := []any{listed("account1", "", onHost(ep("imap", sb.IMAPS, user), "localhost"), nil, true)}
	tb := startThunderbird(t, &Host{Version: "test", Trust: trust}, accounts)
	tb.open()
	for _, m := range [][2]string{{"ALICE@example.org", "localhost"}, {user, "localhost.example"}, {"alice", "localhost"}} {
		reply := socketCall(t, syncReq(m[0], m[1], "pw-Whatever-1"))[0]
		if reply.Get("code").String() != "unknown_account" || reply.Get("status").String() != "error" {
			t.Fatalf("match %v: reply = %s", m, reply.Raw)
		}
	}
	if len(sb.Logins()) != 0 || len(tb.storeRequests()) != 0 {
		t.Fatal("an unmatched request reached a server or the extension")
	}
}

// The socket serves sync only: the extension's requests, and servers named
// in the request itself, are out of its reach.
func TestSocketServesOnlySync(t *testing.T) {
	sb, trust := socketSandbox(t, "pw-Whatever-1")
	// A server the request names: nothing may connect to it.
	trap, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer trap.Close()
	var trapped atomic.Int32
	go func() {
		for {
			c, err := trap.Accept()
			if err != nil {
				return
			}
			trapped.Add(1)
			c.Close()
		}
	}()
	accounts := []any{listed("account1", "", onHost(ep("imap", sb.IMAPS, user), "localhost"), nil, true)}
	tb := startThunderbird(t, &Host{Version: "test", Trust: trust}, accounts)
	tb.open()

	trapEP := ep("imap", trap.Addr().String(), user)
	replies := socketCall(t,
		map[string]any{"id": "a", "type": "change", "account": map[string]any{"id": "account1", "incoming": trapEP},
			"backend": map[string]any{"name": "sandbox", "url": sb.ChangeURL}, "current": "pw-Whatever-1", "new": "Other-pw-2"},
		map[string]any{"id": "b", "type": "verify", "incoming": trapEP, "password": "pw-Whatever-1"},
		map[string]any{"id": "c", "type": "store", "accountId": "account1", "sides": []string{"incoming"}, "password": "x"},
		map[string]any{"id": "d", "type": "accounts"},
		map[string]any{"id": "e", "type": "hello"},
		map[string]any{"id": "f", "status": "ok", "result": map[string]any{}},
		[]byte(`not json`),
		// The account and servers given here are ignored: only Thunderbird's count.
		map[string]any{"id": "g", "type": "sync", "match": map[string]any{"username": user, "host": "localhost"}, "password": "pw-Whatever-1",
			"account": map[string]any{"id": "account1", "incoming": trapEP}, "incoming": trapEP},
	)
	for i, id := range []string{"a", "b", "c", "d", "e"} {
		if r := replies[i]; r.Get("id").String() != id || r.Get("code").String() != "unknown_type" {
			t.Fatalf("socket %s request: reply %s, want unknown_type", id, r.Raw)
		}
	}
	if r := replies[5]; r.Get("code").String() != "invalid_request" {
		t.Fatalf("a reply sent to the socket: %s", r.Raw)
	}
	if r := replies[6]; r.Get("code").String() != "invalid_json" || r.Get("id").Type != gjson.Null {
		t.Fatalf("not JSON: %s", r.Raw)
	}
	if r := replies[7]; !r.Get("result.accounts.0.stored").Bool() {
		t.Fatalf("sync: %s", r.Raw)
	}
	if trapped.Load() != 0 {
		t.Fatal("the host connected to a server named by the socket request")
	}
	for _, l := range sb.Logins() {
		if l.Password != "pw-Whatever-1" {
			t.Fatal("a server saw another password")
		}
	}
	if len(tb.storeRequests()) != 1 {
		t.Fatalf("%d store requests, want the sync's only", len(tb.storeRequests()))
	}
	if len(tb.others) != 0 {
		t.Fatalf("socket requests reached the extension: %v", tb.others)
	}
}

func TestSocketBadSyncRequests(t *testing.T) {
	tb := startThunderbird(t, &Host{Version: "test"}, []any{})
	tb.open()
	cases := []struct {
		req   map[string]any
		field string
	}{
		{map[string]any{"id": "1", "type": "sync", "password": "x"}, "match"},
		{map[string]any{"id": "2", "type": "sync", "match": map[string]any{"host": "h"}, "password": "x"}, "match.username"},
		{map[string]any{"id": "3", "type": "sync", "match": map[string]any{"username": "u", "host": 7}, "password": "x"}, "match.host"},
		{map[string]any{"id": "4", "type": "sync", "match": map[string]any{"username": "u", "host": "h"}}, "password"},
		{map[string]any{"id": "5", "type": "sync", "match": map[string]any{"username": "u", "host": "h"}, "password": ""}, "password"},
	}
	for _, c := range cases {
		r := socketCall(t, c.req)[0]
		if r.Get("code").String() != "invalid_request" || r.Get("field").String() != c.field {
			t.Fatalf("%v: reply %s, want invalid_request on %s", c.req, r.Raw, c.field)
		}
	}
}

func TestSocketSyncWhenTheExtensionCannotList(t *testing.T) {
	cases := map[string]any{
		"error reply":      map[string]any{"status": "error", "code": "unknown_type", "message": "no"},
		"no accounts list": map[string]any{"status": "ok", "result": map[string]any{}},
	}
	for name, reply := range cases {
		t.Run(name, func(t *testing.T) {
			tb := startThunderbird(t, &Host{Version: "test"}, reply)
			tb.open()
			r := socketCall(t, syncReq(user, "localhost", "pw-Whatever-1"))[0]
			if r.Get("code").String() != "internal_error" || !strings.Contains(r.Get("message").String(), "did not list its accounts") {
				t.Fatalf("reply = %s", r.Raw)
			}
		})
	}
	t.Run("malformed matching entry", func(t *testing.T) {
		bad := ep("imap", "127.0.0.1:1", user)
		bad["host"], bad["port"] = "localhost", 0
		tb := startThunderbird(t, &Host{Version: "test"}, []any{listed("account1", "", bad, nil, true), "junk", map[string]any{"id": 5}})
		tb.open()
		r := socketCall(t, syncReq(user, "localhost", "pw-Whatever-1"))[0]
		if a := r.Get("result.accounts.0"); a.Get("id").String() != "account1" || a.Get("stored").Bool() || a.Get("code").String() != "invalid_request" ||
			len(r.Get("result.accounts").Array()) != 1 {
			t.Fatalf("reply = %s", r.Raw)
		}
	})
}

// The socket opens only when the session outlives ListenDelay, and closes
// with the session.
func TestSocketLifetime(t *testing.T) {
	t.Run("a probe does not listen", func(t *testing.T) {
		privateRuntimeDir(t)
		var listens atomic.Int32
		h := &Host{Version: "test", ListenDelay: time.Second, Listen: func() (net.Listener, string, error) {
			listens.Add(1)
			return localsock.Listen()
		}}
		// credsync doctor: hello, the reply, then the input ends.
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		served := make(chan error, 1)
		go func() { served <- h.Serve(context.Background(), inR, outW) }()
		inW.Write(frame(`{"id":"doctor","type":"hello"}`))
		if _, err := wire.NewReader(outR, 0).Read(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // a slow probe
		inW.Close()
		// Serve waits for its listener goroutine: what has not listened
		// by now never will.
		if err := <-served; err != nil {
			t.Fatal(err)
		}
		if listens.Load() != 0 {
			t.Fatal("a hello probe started the socket")
		}
		if _, err := os.Lstat(localsock.Path()); err == nil {
			t.Fatal("a socket exists after the probe")
		}
	})
	t.Run("the session listens, then stops", func(t *testing.T) {
		tb := startThunderbird(t, &Host{Version: "test"}, []any{})
		tb.open()
		if tb.listens.Load() != 1 {
			t.Fatalf("Listen called %d times", tb.listens.Load())
		}
		// A connection open when the session ends does not hold the host.
		idle, err := localsock.Dial(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer idle.Close()
		tb.close()
		if err := tb.wait(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(localsock.Path()); err == nil {
			t.Fatal("the socket outlived the session")
		}
		if _, err := localsock.Dial(context.Background()); !errors.Is(err, localsock.ErrNotListening) {
			t.Fatalf("Dial() after the session = %v", err)
		}
	})
	t.Run("a taken socket is tried again", func(t *testing.T) {
		tb := startThunderbird(t, &Host{Version: "test", ListenRetry: 20 * time.Millisecond}, []any{})
		// The host listens only after its first request: take the socket first.
		other, _, err := localsock.Listen()
		if err != nil {
			t.Fatal(err)
		}
		if r := tb.request(map[string]any{"id": "1", "type": "hello"}); r.Get("status").String() != "ok" {
			t.Fatal(r.Raw)
		}
		deadline := time.Now().Add(5 * time.Second)
		for tb.listens.Load() < 3 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		other.Close()
		tb.open()
		if n := strings.Count(tb.logBuf.String(), "not listening"); n != 1 {
			t.Fatalf("the same failure was logged %d times:\n%s", n, tb.logBuf)
		}
	})
}

func TestAuditLogHoldsNoPassword(t *testing.T) {
	const canary = "Canary-pw-5b8e1d"
	sb, trust := socketSandbox(t, "old-Passw0rd!")
	path := filepath.Join(t.TempDir(), "state", "audit.log")
	accounts := []any{listed("account1", "", onHost(ep("imap", sb.IMAPS, user), "localhost"), onHost(ep("smtp", sb.SMTPS, user), "localhost"), true)}
	tb := startThunderbird(t, &Host{Version: "test", Trust: trust, Audit: (&audit.Log{Path: path}).Write}, accounts)
	tb.open()
	acct := map[string]any{"id": "account1", "incoming": ep("imap", sb.IMAPS, user), "outgoing": ep("smtp", sb.SMTPS, user)}

	// change (stored), sync (refused), socket sync (stored).
	r := tb.request(map[string]any{"id": "c", "type": "change", "account": acct,
		"backend": map[string]any{"name": "sandbox", "url": sb.ChangeURL}, "current": "old-Passw0rd!", "new": canary})
	if !r.Get("result.stored").Bool() || r.Get("result.auditFailed").Exists() {
		t.Fatalf("change = %s", r.Raw)
	}
	r = tb.request(map[string]any{"id": "s", "type": "sync", "account": acct, "password": canary + "-wrong"})
	if r.Get("code").String() != "verification_failed" || r.Get("auditFailed").Exists() {
		t.Fatalf("sync = %s", r.Raw)
	}
	if r := socketCall(t, syncReq(user, "localhost", canary))[0]; !r.Get("result.accounts.0.stored").Bool() {
		t.Fatalf("socket sync = %s", r.Raw)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "Canary") {
		t.Fatalf("a password reached the audit log:\n%s", b)
	}
	recs, bad, err := audit.Tail(bytes.NewReader(b), 0)
	if err != nil || bad != 0 || len(recs) != 3 {
		t.Fatalf("%d records (%d bad, %v):\n%s", len(recs), bad, err, b)
	}
	for i, want := range []struct{ kind, outcome, login string }{
		{"change", "stored", user + "@127.0.0.1"},
		{"sync", "verification_failed", user + "@127.0.0.1"},
		{"socket-sync", "stored", user + "@localhost"},
	} {
		if r := recs[i]; r.Kind != want.kind || r.Outcome != want.outcome || r.Login != want.login || r.Account != "account1" {
			t.Fatalf("record %d = %+v, want %+v", i, r, want)
		}
	}
	if strings.Contains(tb.logBuf.String(), "Canary") {
		t.Fatal("a password reached the host's log")
	}
}

// A full disk: the flows end as they would, and every reply says the
// record is missing.
func TestAuditFailureIsReported(t *testing.T) {
	const pw = "Changed-pw-1"
	sb, trust := socketSandbox(t, pw)
	failing := func(audit.Record) error {
		return &os.PathError{Op: "write", Path: "/state/credsync/audit.log", Err: errors.New("no space left on device")}
	}
	accounts := []any{listed("account1", "", onHost(ep("imap", sb.IMAPS, user), "localhost"), nil, true)}
	tb := startThunderbird(t, &Host{Version: "test", Trust: trust, Audit: failing}, accounts)
	tb.open()
	acct := map[string]any{"id": "account1", "incoming": ep("imap", sb.IMAPS, user)}

	r := tb.request(map[string]any{"id": "ok", "type": "sync", "account": acct, "password": pw})
	if r.Get("status").String() != "ok" || !r.Get("result.stored").Bool() || !r.Get("result.auditFailed").Bool() {
		t.Fatalf("sync = %s", r.Raw)
	}
	r = tb.request(map[string]any{"id": "bad", "type": "sync", "account": acct, "password": pw + "x"})
	if r.Get("code").String() != "verification_failed" || !r.Get("auditFailed").Bool() {
		t.Fatalf("failed sync = %s", r.Raw)
	}
	r = socketCall(t, syncReq(user, "localhost", pw))[0]
	if a := r.Get("result.accounts.0"); !a.Get("stored").Bool() || !a.Get("auditFailed").Bool() {
		t.Fatalf("socket sync = %s", r.Raw)
	}
	logged := tb.logBuf.String()
	if strings.Count(logged, "could not write the audit log") != 3 || !strings.Contains(logged, "no space left on device") ||
		strings.Contains(logged, pw) {
		t.Fatalf("log:\n%s", logged)
	}
	if len(tb.storeRequests()) != 2 {
		t.Fatalf("%d stores, want 2", len(tb.storeRequests()))
	}
}
