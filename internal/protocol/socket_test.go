package protocol

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/audit"
	"github.com/credsync/credsync/internal/localsock"
	"github.com/credsync/credsync/internal/testkit/sandbox"
	"github.com/credsync/credsync/internal/testkit/wine"
	"github.com/credsync/credsync/internal/verify"
	"github.com/credsync/credsync/internal/wire"
)

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

// startThunderbird is a session whose host also listens on the local
// socket, with these accounts listed.
func startThunderbird(t *testing.T, h *Host, accounts ...map[string]any) *fakeExt {
	t.Helper()
	privateRuntimeDir(t)
	var x *fakeExt
	if h.Listen == nil {
		h.Listen = func() (net.Listener, string, error) {
			x.listens.Add(1)
			return localsock.Listen()
		}
	}
	if h.ListenDelay == 0 {
		h.ListenDelay = 10 * time.Millisecond
	}
	x = startExt(t, h)
	x.accounts = accounts
	return x
}

// open sends the extension's first request and waits for the socket.
func (x *fakeExt) open() {
	x.t.Helper()
	if r, _ := x.call(map[string]any{"id": "hello", "type": "hello"}); r.Get("status").String() != "ok" {
		x.t.Fatalf("hello = %s", r.Raw)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := localsock.Dial(context.Background())
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			x.t.Fatalf("the host does not listen: %v\n%s", err, x.logBuf)
		}
		time.Sleep(5 * time.Millisecond)
	}
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

func withAuth(s map[string]any, method int) map[string]any {
	s["authMethod"] = method
	return s
}

// socketOutcomes is a socket sync's result as "id (name): outcome".
func socketOutcomes(reply gjson.Result) []string {
	var got []string
	for _, a := range reply.Get("result.accounts").Array() {
		outcome := "stored"
		if !a.Get("stored").Bool() {
			outcome = a.Get("code").String()
		}
		got = append(got, a.Get("id").String()+" ("+a.Get("name").String()+"): "+outcome)
	}
	return got
}

// The socket's sync starts from every account whose incoming server has
// the user name on the host (any case) and writes what they share in one
// transaction: each server logged in to once, one store, a result per
// account; accounts without a password are listed as such.
func TestSocketSyncOneTransaction(t *testing.T) {
	const pw = "changed-Elsewhere-1"
	sb, trust := socketSandbox(t, pw)
	x := startThunderbird(t, &Host{Version: "test", Trust: trust},
		acct("account1", "Alice IMAP", srv("imap", sb.IMAPS, user), srv("smtp", sb.SMTPS, user)),
		acct("account2", "Mario Rossi", onHost(srv("pop3", sb.POP3S, user), "LOCALHOST"), srv("smtp", sb.SMTPS, user)),
		acct("account3", "Bob", srv("imap", sb.IMAPS, "bob"), srv("smtp", sb.SMTPS, "bob")),
		acct("account4", "Alice elsewhere", onHost(srv("imap", sb.IMAPS, user), "127.0.0.1"), nil),
		acct("account5", "Alice OAuth", withAuth(srv("imap", sb.IMAPS, user), 10), nil),
		acct("account6", "No auth outgoing", srv("imap", sb.IMAPS, user), withAuth(srv("smtp", sb.SMTPS, "ignored"), 1)),
	)
	x.open()

	reply := socketCall(t, syncReq(user, "LocalHost", pw))[0]
	if reply.Get("id").String() != "s1" || reply.Get("status").String() != "ok" {
		t.Fatalf("reply = %s", reply.Raw)
	}
	want := []string{
		"account1 (Alice IMAP): stored",
		"account2 (Mario Rossi): stored",
		"account6 (No auth outgoing): stored",
		"account5 (Alice OAuth): not_password_account",
	}
	if got := socketOutcomes(reply); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("accounts\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	stores := x.storeRequests()
	if len(stores) != 1 {
		t.Fatalf("%d store requests; want one", len(stores))
	}
	var logins []string
	for _, l := range stores[0].Get("logins").Array() {
		logins = append(logins, l.Get("origin").String())
		if l.Get("password").String() != pw || l.Get("username").String() != user {
			t.Fatalf("store login %s", l.Raw)
		}
	}
	if strings.Join(logins, " ") != "imap://localhost smtp://localhost mailbox://LOCALHOST" {
		t.Fatalf("stored logins %v", logins)
	}
	wantLogins := map[string]int{"imap " + user + " " + pw: 1, "pop3 " + user + " " + pw: 1, "smtp " + user + " " + pw: 1}
	if got := sandboxLogins(sb); !equalCounts(got, wantLogins) {
		t.Fatalf("sandbox logins %v; want each server once", got)
	}
	// The extension sees no progress events for socket flows.
	if len(x.progress) != 0 {
		t.Fatalf("progress sent to the extension: %v", x.progress)
	}
	if strings.Contains(x.logBuf.String(), pw) {
		t.Fatal("the password reached the log")
	}
}

// A wrong password: the one transaction fails for every account, each
// server saw one failed login, and each account's result names the
// servers that refused.
func TestSocketSyncWrongPasswordCostsOneLoginPerServer(t *testing.T) {
	sb, trust := socketSandbox(t, "the-Real-one-1")
	x := startThunderbird(t, &Host{Version: "test", Trust: trust},
		acct("account1", "", srv("imap", sb.IMAPS, user), srv("smtp", sb.SMTPS, user)),
		acct("account2", "", srv("pop3", sb.POP3S, user), nil),
	)
	x.open()
	reply := socketCall(t, syncReq(user, "localhost", "a-Wrong-one-2"))[0]
	a := reply.Get("result.accounts").Array()
	if len(a) != 2 {
		t.Fatalf("reply = %s", reply.Raw)
	}
	for _, r := range a {
		if r.Get("stored").Bool() || r.Get("code").String() != "verification_failed" ||
			outcomesOf(r.Get("servers")) != "imap "+user+" auth_failed, pop3 "+user+" auth_failed, smtp "+user+" auth_failed" {
			t.Fatalf("reply = %s", reply.Raw)
		}
	}
	if n := len(sb.Logins()); n != 3 {
		t.Fatalf("%d logins, want one to each server: %+v", n, sb.Logins())
	}
	x.wantNothingStored()
}

func TestSocketSyncNoMatch(t *testing.T) {
	sb, trust := socketSandbox(t, "pw-Whatever-1")
	x := startThunderbird(t, &Host{Version: "test", Trust: trust}, acct("account1", "", srv("imap", sb.IMAPS, user), nil))
	x.open()
	for _, m := range [][2]string{{"ALICE@example.org", "localhost"}, {user, "localhost.example"}, {"alice", "localhost"}} {
		reply := socketCall(t, syncReq(m[0], m[1], "pw-Whatever-1"))[0]
		if reply.Get("code").String() != "unknown_account" || reply.Get("status").String() != "error" {
			t.Fatalf("match %v: reply = %s", m, reply.Raw)
		}
	}
	if len(sb.Logins()) != 0 {
		t.Fatal("an unmatched request reached a server")
	}
	x.wantNothingStored()
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
	x := startThunderbird(t, &Host{Version: "test", Trust: trust}, acct("account1", "", srv("imap", sb.IMAPS, user), nil))
	x.setSaved("imap://localhost", user, "pw-Whatever-1")
	x.open()

	trapEP := onHost(srv("imap", trap.Addr().String(), user), "127.0.0.1")
	replies := socketCall(t,
		map[string]any{"id": "a", "type": "change", "accountId": "account1",
			"backend": map[string]any{"name": "sandbox", "url": sb.ChangeURL}, "current": "pw-Whatever-1", "new": "Other-pw-2"},
		map[string]any{"id": "b", "type": "verify", "incoming": trapEP, "password": "pw-Whatever-1"},
		map[string]any{"id": "c", "type": "store", "salt": strings.Repeat("0", 32),
			"logins": []any{map[string]any{"origin": "imap://localhost", "username": user, "password": "x"}}},
		map[string]any{"id": "d", "type": "accounts"},
		map[string]any{"id": "e", "type": "hello"},
		map[string]any{"id": "e2", "type": "propagate", "origin": "imap://localhost", "username": user},
		map[string]any{"id": "e3", "type": "plan"},
		map[string]any{"id": "e4", "type": "login", "origin": "imap://localhost", "username": user},
		map[string]any{"id": "f", "status": "ok", "result": map[string]any{}},
		[]byte(`not json`),
		// The account and servers given here are ignored: only Thunderbird's count.
		map[string]any{"id": "g", "type": "sync", "match": map[string]any{"username": user, "host": "localhost"}, "password": "pw-Whatever-1",
			"accountId": "account1", "account": map[string]any{"id": "account1", "incoming": trapEP}, "incoming": trapEP},
	)
	for i, id := range []string{"a", "b", "c", "d", "e", "e2", "e3", "e4"} {
		if r := replies[i]; r.Get("id").String() != id || r.Get("code").String() != "unknown_type" {
			t.Fatalf("socket %s request: reply %s, want unknown_type", id, r.Raw)
		}
	}
	if r := replies[8]; r.Get("code").String() != "invalid_request" {
		t.Fatalf("a reply sent to the socket: %s", r.Raw)
	}
	if r := replies[9]; r.Get("code").String() != "invalid_json" || r.Get("id").Type != gjson.Null {
		t.Fatalf("not JSON: %s", r.Raw)
	}
	if r := replies[10]; !r.Get("result.accounts.0.stored").Bool() {
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
	if len(x.storeRequests()) != 1 || len(x.loginReqs) != 0 {
		t.Fatalf("%d store and %d login requests, want the sync's store only", len(x.storeRequests()), len(x.loginReqs))
	}
	if len(x.progress) != 0 {
		t.Fatalf("socket requests reached the extension: %v", x.progress)
	}
}

func TestSocketBadSyncRequests(t *testing.T) {
	tb := startThunderbird(t, &Host{Version: "test"})
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
	cases := map[string]map[string]any{
		"error reply":      {"status": "error", "code": "unknown_type", "message": "no"},
		"no accounts list": {"status": "ok", "result": map[string]any{}},
	}
	for name, reply := range cases {
		t.Run(name, func(t *testing.T) {
			x := startThunderbird(t, &Host{Version: "test"})
			x.accountsReply = reply
			x.open()
			r := socketCall(t, syncReq(user, "localhost", "pw-Whatever-1"))[0]
			if r.Get("code").String() != "internal_error" || !strings.Contains(r.Get("message").String(), "did not list its accounts") {
				t.Fatalf("reply = %s", r.Raw)
			}
		})
	}
	// A matching account with a server credsync cannot use fails the
	// transaction before any login; junk entries are dropped.
	t.Run("malformed matching entry", func(t *testing.T) {
		bad := srv("imap", "127.0.0.1:1", user)
		bad["port"] = 0
		x := startThunderbird(t, &Host{Version: "test"})
		x.accountsReply = map[string]any{"status": "ok", "result": map[string]any{"accounts": []any{acct("account1", "", bad, nil), "junk", map[string]any{"id": 5}}}}
		x.open()
		r := socketCall(t, syncReq(user, "localhost", "pw-Whatever-1"))[0]
		if r.Get("status").String() != "error" || r.Get("code").String() != "invalid_request" {
			t.Fatalf("reply = %s", r.Raw)
		}
		x.wantNothingStored()
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
		tb := startThunderbird(t, &Host{Version: "test"})
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
		wine.Skip(t, "Wine 8.0 lets a second listener create a named pipe that exists (NtCreateNamedPipeFile ignores FILE_CREATE), so the socket is never taken")
		tb := startThunderbird(t, &Host{Version: "test", ListenRetry: 20 * time.Millisecond})
		// The host listens only after its first request: take the socket first.
		other, _, err := localsock.Listen()
		if err != nil {
			t.Fatal(err)
		}
		if r, _ := tb.call(map[string]any{"id": "1", "type": "hello"}); r.Get("status").String() != "ok" {
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

// One record per transaction, with the accounts it wrote, for every kind
// of flow; none holds a password.
func TestAuditLogHoldsNoPassword(t *testing.T) {
	const canary = "Canary-pw-5b8e1d"
	sb, trust := socketSandbox(t, "old-Passw0rd!")
	path := filepath.Join(wine.TempDir(t), "state", "audit.log")
	x := startThunderbird(t, &Host{Version: "test", Trust: trust, Audit: (&audit.Log{Path: path}).Write},
		acct("account1", "", srv("imap", sb.IMAPS, user), srv("smtp", sb.SMTPS, user)),
		acct("account2", "", srv("pop3", sb.POP3S, user), nil),
	)
	x.open()

	// change (stored), sync (refused), socket sync (stored), propagate (stored).
	r, _ := x.call(changeReq("c", "account1", sb, "old-Passw0rd!", canary))
	if !r.Get("result.stored").Bool() || r.Get("result.auditFailed").Exists() {
		t.Fatalf("change = %s", r.Raw)
	}
	r, _ = x.call(syncReqFor("s", "account2", canary+"-wrong"))
	if r.Get("code").String() != "verification_failed" || r.Get("auditFailed").Exists() {
		t.Fatalf("sync = %s", r.Raw)
	}
	if r := socketCall(t, syncReq(user, "localhost", canary))[0]; !r.Get("result.accounts.0.stored").Bool() {
		t.Fatalf("socket sync = %s", r.Raw)
	}
	sb.SetPassword(user, canary+"2")
	x.setSaved("mailbox://localhost", user, canary+"2")
	if r, _ := x.call(map[string]any{"id": "p", "type": "propagate", "origin": "mailbox://localhost", "username": user}); !r.Get("result.updated").Bool() {
		t.Fatalf("propagate = %s", r.Raw)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "Canary") {
		t.Fatalf("a password reached the audit log:\n%s", b)
	}
	recs, bad, err := audit.Tail(bytes.NewReader(b), 0)
	if err != nil || bad != 0 || len(recs) != 4 {
		t.Fatalf("%d records (%d bad, %v):\n%s", len(recs), bad, err, b)
	}
	for i, want := range []struct{ kind, outcome, account, login, accounts string }{
		{"change", "stored", "account1", user + "@localhost", "account1 account2"},
		{"sync", "verification_failed", "account2", user + "@localhost", "account1 account2"},
		{"socket-sync", "stored", "account1", user + "@localhost", "account1 account2"},
		// account2's login holds the password already: only account1's are written.
		{"propagate", "stored", "account2", user + " at mailbox://localhost", "account1"},
	} {
		if r := recs[i]; r.Kind != want.kind || r.Outcome != want.outcome || r.Login != want.login || r.Account != want.account ||
			strings.Join(r.Accounts, " ") != want.accounts {
			t.Fatalf("record %d = %+v, want %+v", i, r, want)
		}
	}
	if strings.Contains(x.logBuf.String(), "Canary") {
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
	x := startThunderbird(t, &Host{Version: "test", Trust: trust, Audit: failing}, acct("account1", "", srv("imap", sb.IMAPS, user), nil))
	x.open()

	r, _ := x.call(syncReqFor("ok", "account1", pw))
	if r.Get("status").String() != "ok" || !r.Get("result.stored").Bool() || !r.Get("result.auditFailed").Bool() {
		t.Fatalf("sync = %s", r.Raw)
	}
	r, _ = x.call(syncReqFor("bad", "account1", pw+"x"))
	if r.Get("code").String() != "verification_failed" || !r.Get("auditFailed").Bool() {
		t.Fatalf("failed sync = %s", r.Raw)
	}
	r = socketCall(t, syncReq(user, "localhost", pw))[0]
	if a := r.Get("result.accounts.0"); !a.Get("stored").Bool() || !a.Get("auditFailed").Bool() {
		t.Fatalf("socket sync = %s", r.Raw)
	}
	logged := x.logBuf.String()
	if strings.Count(logged, "could not write the audit log") != 3 || !strings.Contains(logged, "no space left on device") ||
		strings.Contains(logged, pw) {
		t.Fatalf("log:\n%s", logged)
	}
	if len(x.storeRequests()) != 2 {
		t.Fatalf("%d stores, want 2", len(x.storeRequests()))
	}
}
