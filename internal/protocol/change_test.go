package protocol

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/audit"
	"github.com/credsync/credsync/internal/flow"
	"github.com/credsync/credsync/internal/testkit/sandbox"
	"github.com/credsync/credsync/internal/verify"
	"github.com/credsync/credsync/internal/wire"
)

// fakeExt plays the extension of a live session over the framed pipe: it
// sends requests, and answers the host's own — accounts (with the
// fingerprints of its saved logins, hex SHA-256 of salt + ":" + password),
// login and store (compare-and-swap, all or none) — as PROTOCOL.md says.
type fakeExt struct {
	t      *testing.T
	in     *io.PipeWriter
	w      *wire.Writer
	logBuf *syncBuffer
	served chan error
	// msgs are the replies to the extension's requests and progress events.
	msgs chan gjson.Result

	mu sync.Mutex
	// accounts are listed with "saved" filled in from saved.
	accounts []map[string]any
	// accountsReply, when set, is sent instead of the listing.
	accountsReply map[string]any
	saved         map[string]string // loginKey -> password
	locked        bool
	// onStore, when set, answers a store request (nil: leave it unanswered).
	onStore func(store gjson.Result) map[string]any

	accountReqs, loginReqs, stores, progress []gjson.Result
	// pauses are the host's pause and resume requests, in order (wait_test.go).
	pauses   []gjson.Result
	records  []audit.Record
	listens  atomic.Int32
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

func loginKey(origin, username string) string { return strings.ToLower(origin) + "\n" + username }

func sha(salt, password string) string {
	sum := sha256.Sum256([]byte(salt + ":" + password))
	return hex.EncodeToString(sum[:])
}

func startExt(t *testing.T, h *Host) *fakeExt {
	return startExtContext(t, context.Background(), h)
}

// startExtContext serves h with ctx: a flow's context ends with it.
func startExtContext(t *testing.T, ctx context.Context, h *Host) *fakeExt {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	x := &fakeExt{t: t, in: inW, w: wire.NewWriter(inW), logBuf: &syncBuffer{}, served: make(chan error, 1),
		msgs: make(chan gjson.Result, 256), saved: map[string]string{}}
	if h.Log == nil {
		h.Log = log.New(x.logBuf, "", 0)
	}
	if h.Audit == nil {
		h.Audit = func(r audit.Record) error {
			x.mu.Lock()
			x.records = append(x.records, r)
			x.mu.Unlock()
			return nil
		}
	}
	go func() {
		x.served <- h.Serve(ctx, inR, outW)
		outW.Close()
	}()
	go x.read(outR)
	t.Cleanup(func() {
		x.close()
		if err := x.wait(); err != nil {
			t.Errorf("Serve() = %v", err)
		}
	})
	return x
}

func (x *fakeExt) close() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.closedIn {
		x.closedIn = true
		x.in.Close()
	}
}

// wait waits for Serve to return.
func (x *fakeExt) wait() error {
	select {
	case err := <-x.served:
		x.served <- err
		return err
	case <-time.After(10 * time.Second):
		return errors.New("Serve() did not return after its input closed")
	}
}

func (x *fakeExt) read(r io.Reader) {
	frames := wire.NewReader(r, 0)
	for {
		body, err := frames.Read()
		if err != nil {
			close(x.msgs)
			return
		}
		m := gjson.ParseBytes(body)
		id := m.Get("id").String()
		switch m.Get("type").String() {
		case "accounts":
			x.mu.Lock()
			x.accountReqs = append(x.accountReqs, m)
			reply := x.accountsReply
			if reply == nil {
				reply = x.listing(m.Get("salt").String())
			}
			x.mu.Unlock()
			x.send(withID(reply, id))
		case "login":
			x.mu.Lock()
			x.loginReqs = append(x.loginReqs, m)
			pw, ok := x.saved[loginKey(m.Get("origin").String(), m.Get("username").String())]
			reply := map[string]any{"status": "ok", "result": map[string]any{"password": pw}}
			if !ok || x.locked {
				reply = map[string]any{"status": "error", "code": "no_login", "message": "no such login"}
			}
			x.mu.Unlock()
			x.send(withID(reply, id))
		case "store":
			x.mu.Lock()
			x.stores = append(x.stores, m)
			on := x.onStore
			x.mu.Unlock()
			var reply map[string]any
			if on != nil {
				reply = on(m)
			} else {
				reply = x.store(m)
			}
			if reply != nil {
				x.send(withID(reply, id))
			}
		case "progress":
			x.mu.Lock()
			x.progress = append(x.progress, m)
			x.mu.Unlock()
			x.msgs <- m
		case "pause", "resume":
			x.mu.Lock()
			x.pauses = append(x.pauses, m)
			x.mu.Unlock()
			key := map[string]string{"pause": "paused", "resume": "resumed"}[m.Get("type").String()]
			x.send(withID(map[string]any{"status": "ok", "result": map[string]any{key: m.Get("accounts").Value()}}, id))
		default:
			x.msgs <- m
		}
	}
}

// listing is the accounts reply: every account, each server's "saved" the
// fingerprint of its login, null without one, absent when locked.
func (x *fakeExt) listing(salt string) map[string]any {
	var list []any
	for _, a := range x.accounts {
		c := map[string]any{}
		for k, v := range a {
			c[k] = v
		}
		for _, side := range []string{"incoming", "outgoing"} {
			s, ok := a[side].(map[string]any)
			if !ok {
				continue
			}
			cs := map[string]any{}
			for k, v := range s {
				cs[k] = v
			}
			if _, given := s["saved"]; !given && !x.locked {
				origin, _ := s["origin"].(string)
				user, _ := s["username"].(string)
				if pw, ok := x.saved[loginKey(origin, user)]; ok {
					cs["saved"] = sha(salt, pw)
				} else {
					cs["saved"] = nil
				}
			}
			c[side] = cs
		}
		list = append(list, c)
	}
	if list == nil {
		list = []any{}
	}
	return map[string]any{"status": "ok", "result": map[string]any{"accounts": list, "locked": x.locked}}
}

// store is the Experiment's store: compare every login with expect, then
// write them all.
func (x *fakeExt) store(m gjson.Result) map[string]any {
	x.mu.Lock()
	defer x.mu.Unlock()
	salt := m.Get("salt").String()
	logins := m.Get("logins").Array()
	states := func(state string) []any {
		var out []any
		for _, l := range logins {
			out = append(out, map[string]any{"origin": l.Get("origin").String(), "username": l.Get("username").String(), "state": state})
		}
		return out
	}
	for _, l := range logins {
		cur, exists := x.saved[loginKey(l.Get("origin").String(), l.Get("username").String())]
		expect := l.Get("expect")
		if !expect.Exists() {
			continue
		}
		if expect.Type == gjson.Null && exists || expect.Type != gjson.Null && (!exists || expect.String() != sha(salt, cur)) {
			return map[string]any{"status": "error", "code": "store_conflict", "message": "a login changed", "logins": states("unchanged")}
		}
	}
	for _, l := range logins {
		x.saved[loginKey(l.Get("origin").String(), l.Get("username").String())] = l.Get("password").String()
	}
	return map[string]any{"status": "ok", "result": map[string]any{"logins": states("stored")}}
}

func withID(m map[string]any, id string) map[string]any {
	c := map[string]any{"id": id}
	for k, v := range m {
		c[k] = v
	}
	return c
}

func (x *fakeExt) send(v any) {
	b, _ := json.Marshal(v)
	_ = x.w.Write(b)
}

// call sends a request and returns its reply and the progress steps seen.
func (x *fakeExt) call(req map[string]any) (gjson.Result, []string) {
	x.t.Helper()
	x.send(req)
	return x.waitReply(req["id"].(string), 30*time.Second)
}

func (x *fakeExt) waitReply(id string, d time.Duration) (gjson.Result, []string) {
	x.t.Helper()
	var steps []string
	timeout := time.After(d)
	for {
		select {
		case m, ok := <-x.msgs:
			if !ok {
				x.t.Fatalf("the host closed its output before answering %s", id)
			}
			if m.Get("type").String() == "progress" && m.Get("request").String() == id {
				steps = append(steps, m.Get("step").String()+":"+m.Get("state").String())
			} else if m.Get("id").String() == id && m.Get("status").Exists() {
				return m, steps
			}
		case <-timeout:
			x.t.Fatalf("no reply to %s within %s", id, d)
		}
	}
}

func (x *fakeExt) storeRequests() []gjson.Result {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]gjson.Result(nil), x.stores...)
}

func (x *fakeExt) auditRecords() []audit.Record {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]audit.Record(nil), x.records...)
}

// setSaved saves a login, as Thunderbird's own prompt would.
func (x *fakeExt) setSaved(origin, username, password string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.saved[loginKey(origin, username)] = password
}

func (x *fakeExt) password(origin, username string) string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.saved[loginKey(origin, username)]
}

// wantNothingStored: no store request was sent; Thunderbird's logins stay.
func (x *fakeExt) wantNothingStored() {
	x.t.Helper()
	if n := len(x.storeRequests()); n != 0 {
		x.t.Fatalf("%d store requests; the logins must stay as they are", n)
	}
}

// srv is a listed server on localhost at addr's port with the origin
// Thunderbird gives its protocol.
func srv(protocol, addr, user string) map[string]any {
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return onHost(map[string]any{"protocol": protocol, "port": p, "socketType": 3, "authMethod": 3, "username": user}, "localhost")
}

// onHost puts the server on another host name (the sandbox listens on
// 127.0.0.1, which localhost also names).
func onHost(s map[string]any, host string) map[string]any {
	scheme := map[string]string{"imap": "imap://", "pop3": "mailbox://", "smtp": "smtp://"}[s["protocol"].(string)]
	s["host"], s["origin"] = host, scheme+host
	return s
}

func acct(id, name string, in, out map[string]any) map[string]any {
	a := map[string]any{"id": id, "name": name, "incoming": in, "outgoing": nil}
	if out != nil {
		a["outgoing"] = out
	}
	return a
}

const (
	oldPw = "old-Passw0rd!"
	newPw = "new-Passw0rd!"
	bobPw = "bobs-Passw0rd!"
)

func startSandbox(t *testing.T) (*sandbox.Sandbox, verify.Trust) {
	t.Helper()
	sb, err := sandbox.Start(sandbox.Options{Users: map[string]string{"alice": oldPw, "bob": bobPw}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	return sb, verify.Trust{Roots: sb.CAPool}
}

// mailbox lists alice's mailbox twice — account1 over IMAP, account2 over
// POP3, both sending as alice through one SMTP server — and bob's account
// on the same host and SMTP server under his own name; every login saved.
func (x *fakeExt) mailbox(sb *sandbox.Sandbox) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.accounts = []map[string]any{
		acct("account1", "Mario Rossi", srv("imap", sb.IMAPS, "alice"), srv("smtp", sb.SMTPS, "alice")),
		acct("account2", "Alice POP3", srv("pop3", sb.POP3S, "alice"), srv("smtp", sb.SMTPS, "alice")),
		acct("account3", "Bob", srv("imap", sb.IMAPS, "bob"), srv("smtp", sb.SMTPS, "bob")),
	}
	for _, l := range []string{"imap://localhost", "mailbox://localhost", "smtp://localhost"} {
		x.saved[loginKey(l, "alice")] = oldPw
	}
	x.saved[loginKey("imap://localhost", "bob")] = bobPw
	x.saved[loginKey("smtp://localhost", "bob")] = bobPw
}

func changeReq(id, accountID string, sb *sandbox.Sandbox, current, next string) map[string]any {
	return map[string]any{"id": id, "type": "change", "accountId": accountID,
		"backend": map[string]any{"name": "sandbox", "url": sb.ChangeURL}, "current": current, "new": next}
}

func syncReqFor(id, accountID, password string) map[string]any {
	return map[string]any{"id": id, "type": "sync", "accountId": accountID, "password": password}
}

// sandboxLogins counts the sandbox's logins by "protocol user password".
func sandboxLogins(sb *sandbox.Sandbox) map[string]int {
	n := map[string]int{}
	for _, l := range sb.Logins() {
		n[l.Protocol+" "+l.Username+" "+l.Password]++
	}
	return n
}

// touchedOf is a reply's "accounts" as "id[sides]" in order.
func touchedOf(list gjson.Result) string {
	var s []string
	for _, a := range list.Array() {
		var sides []string
		for _, side := range a.Get("sides").Array() {
			sides = append(sides, side.String())
		}
		s = append(s, a.Get("id").String()+"["+strings.Join(sides, ",")+"]")
	}
	return strings.Join(s, " ")
}

// statesOf is a reply's "logins" as sorted "user@origin=state".
func statesOf(list gjson.Result) string {
	var s []string
	for _, l := range list.Array() {
		s = append(s, l.Get("username").String()+"@"+l.Get("origin").String()+"="+l.Get("state").String())
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}

// outcomesOf is a reply's "servers" as sorted "protocol user outcome".
func outcomesOf(list gjson.Result) string {
	var s []string
	for _, v := range list.Array() {
		s = append(s, v.Get("protocol").String()+" "+v.Get("username").String()+" "+v.Get("outcome").String())
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}

const (
	bothAccounts = "account1[incoming,outgoing] account2[incoming,outgoing]"
	aliceStored  = "alice@imap://localhost=stored alice@mailbox://localhost=stored alice@smtp://localhost=stored"
)

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// A change is one transaction over every login of the mailbox: each
// server logged in to once, then ONE store request with every login and
// the fingerprint each must hold now. Bob, on the same SMTP server under
// his own name, is not touched.
func TestChangeOneStoreForEveryLogin(t *testing.T) {
	sb, trust := startSandbox(t)
	x := startExt(t, &Host{Version: "test", Trust: trust})
	x.mailbox(sb)
	x.onStore = func(store gjson.Result) map[string]any {
		// By the time Thunderbird is asked to store, every server took it.
		want := map[string]int{"imap alice " + newPw: 1, "pop3 alice " + newPw: 1, "smtp alice " + newPw: 1}
		if got := sandboxLogins(sb); !equalCounts(got, want) {
			t.Errorf("store requested with the servers' logins %v; want %v", got, want)
		}
		return x.store(store)
	}
	final, steps := x.call(changeReq("c1", "account1", sb, oldPw, newPw))
	r := final.Get("result")
	if final.Get("status").String() != "ok" || !r.Get("changed").Bool() || !r.Get("stored").Bool() || r.Get("updated").Exists() {
		t.Fatalf("final reply = %s", final.Raw)
	}
	if got := touchedOf(r.Get("accounts")); got != bothAccounts || r.Get("accounts.0.name").String() != "Mario Rossi" {
		t.Fatalf("accounts %s in %s", got, final.Raw)
	}
	if got := statesOf(r.Get("logins")); got != aliceStored {
		t.Fatalf("logins %s", got)
	}
	if got := outcomesOf(r.Get("servers")); got != "imap alice ok, pop3 alice ok, smtp alice ok" {
		t.Fatalf("servers %s", got)
	}
	stores := x.storeRequests()
	if len(stores) != 1 {
		t.Fatalf("%d store requests; want one", len(stores))
	}
	salt := x.accountReqs[0].Get("salt").String()
	if len(salt) != 32 || stores[0].Get("salt").String() != salt {
		t.Fatalf("salts: accounts %q, store %q", salt, stores[0].Get("salt").String())
	}
	var written []string
	for _, l := range stores[0].Get("logins").Array() {
		written = append(written, l.Get("username").String()+"@"+l.Get("origin").String())
		if l.Get("password").String() != newPw || l.Get("expect").String() != sha(salt, oldPw) {
			t.Fatalf("store login %s; want the new password expecting the old one's fingerprint", l.Raw)
		}
	}
	sort.Strings(written)
	if strings.Join(written, " ") != "alice@imap://localhost alice@mailbox://localhost alice@smtp://localhost" {
		t.Fatalf("store request logins %v", written)
	}
	want := map[string]int{"imap alice " + newPw: 1, "pop3 alice " + newPw: 1, "smtp alice " + newPw: 1}
	if got := sandboxLogins(sb); !equalCounts(got, want) {
		t.Fatalf("sandbox logins %v; want each server once, never bob", got)
	}
	if x.password("smtp://localhost", "bob") != bobPw || len(x.loginReqs) != 0 || len(x.accountReqs) != 1 {
		t.Fatalf("bob's login was written, or extra requests: %d login, %d accounts", len(x.loginReqs), len(x.accountReqs))
	}
	for _, w := range []string{"policy:running", "policy:ok", "changing:running", "changing:ok", "checking_incoming:ok", "checking_outgoing:ok", "saving:running", "saving:ok"} {
		if !contains(steps, w) {
			t.Fatalf("progress %v lacks %s", steps, w)
		}
	}
	if strings.Contains(x.logBuf.String(), newPw) || strings.Contains(final.Raw, newPw) {
		t.Fatal("the password reached the log or the reply")
	}
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// expect is the fingerprint, null when no login is saved, absent when the
// store was locked (the listing then has no "saved" and says locked).
func TestStoreExpectMembers(t *testing.T) {
	t.Run("no login saved", func(t *testing.T) {
		sb, trust := startSandbox(t)
		x := startExt(t, &Host{Version: "test", Trust: trust})
		x.mailbox(sb)
		delete(x.saved, loginKey("mailbox://localhost", "alice"))
		if r, _ := x.call(changeReq("c", "account1", sb, oldPw, newPw)); !r.Get("result.stored").Bool() {
			t.Fatalf("reply %s", r.Raw)
		}
		for _, l := range x.storeRequests()[0].Get("logins").Array() {
			e := l.Get("expect")
			if l.Get("origin").String() == "mailbox://localhost" && e.Type != gjson.Null || l.Get("origin").String() != "mailbox://localhost" && len(e.String()) != 64 {
				t.Fatalf("login %s", l.Raw)
			}
		}
		if x.password("mailbox://localhost", "alice") != newPw {
			t.Fatal("the missing login was not added")
		}
	})
	t.Run("locked", func(t *testing.T) {
		sb, trust := startSandbox(t)
		x := startExt(t, &Host{Version: "test", Trust: trust})
		x.mailbox(sb)
		x.locked = true
		if r, _ := x.call(changeReq("c", "account1", sb, oldPw, newPw)); !r.Get("result.stored").Bool() {
			t.Fatalf("reply %s", r.Raw)
		}
		logins := x.storeRequests()[0].Get("logins").Array()
		for _, l := range logins {
			if l.Get("expect").Exists() {
				t.Fatalf("login %s carries expect although the store was locked", l.Raw)
			}
		}
		if len(logins) != 3 {
			t.Fatalf("%d logins", len(logins))
		}
	})
}

func TestChangeWrongCurrentPasswordStoresNothing(t *testing.T) {
	sb, trust := startSandbox(t)
	x := startExt(t, &Host{Version: "test", Trust: trust})
	x.mailbox(sb)
	final, _ := x.call(changeReq("c", "account1", sb, "not-the-password", newPw))
	if final.Get("code").String() != "wrong_current_password" || final.Get("changed").Bool() || touchedOf(final.Get("accounts")) != bothAccounts {
		t.Fatalf("final = %s", final.Raw)
	}
	x.wantNothingStored()
	if len(sb.Logins()) != 0 {
		t.Fatalf("a server saw a login although nothing changed")
	}
}

func TestChangePolicyViolationSendsNothing(t *testing.T) {
	sb, trust := startSandbox(t)
	x := startExt(t, &Host{Version: "test", Trust: trust})
	x.mailbox(sb)
	final, steps := x.call(changeReq("c", "account1", sb, oldPw, oldPw))
	if final.Get("code").String() != "policy_violation" || final.Get("rule").String() != "same_as_current" {
		t.Fatalf("final = %s", final.Raw)
	}
	x.wantNothingStored()
	if contains(steps, "changing:running") || len(sb.Logins()) != 0 {
		t.Fatalf("a policy violation reached the network: steps %v, %d logins", steps, len(sb.Logins()))
	}
}

// The store's refusals keep their code and each login's state; the reply
// says the provider changed and lists every touched account.
func TestChangeStoreRefusals(t *testing.T) {
	for _, c := range []struct {
		name, code, want string
		states           []string // per written login, in order
	}{
		{"second write fails", "store_failed", "store_failed", []string{"restored", "unchanged", "unchanged"}},
		{"restore fails", "store_failed", "store_failed", []string{"unknown", "unchanged", "unchanged"}},
		{"cancelled", "store_cancelled", "store_cancelled", []string{"unchanged", "unchanged", "unchanged"}},
		{"conflict", "store_conflict", "store_conflict", []string{"unchanged", "unchanged", "unchanged"}},
		{"unknown code", "disk_on_fire", "store_failed", []string{"unchanged", "unchanged", "unchanged"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			sb, trust := startSandbox(t)
			x := startExt(t, &Host{Version: "test", Trust: trust})
			x.mailbox(sb)
			var want []string
			x.onStore = func(store gjson.Result) map[string]any {
				var logins []any
				for i, l := range store.Get("logins").Array() {
					logins = append(logins, map[string]any{"origin": l.Get("origin").String(), "username": l.Get("username").String(), "state": c.states[i]})
					want = append(want, "alice@"+l.Get("origin").String()+"="+c.states[i])
				}
				return map[string]any{"status": "error", "code": c.code, "message": "the extension could not", "logins": logins}
			}
			final, _ := x.call(changeReq("c", "account1", sb, oldPw, newPw))
			sort.Strings(want)
			if final.Get("code").String() != c.want || !final.Get("changed").Bool() || touchedOf(final.Get("accounts")) != bothAccounts ||
				statesOf(final.Get("logins")) != strings.Join(want, " ") || len(final.Get("servers").Array()) != 3 {
				t.Fatalf("final = %s; want %s with %v", final.Raw, c.want, want)
			}
			uncertain := strings.Contains(final.Get("message").String(), "may hold the new password")
			if uncertain != (c.states[0] == "unknown") {
				t.Fatalf("message %q", final.Get("message").String())
			}
			if len(x.storeRequests()) != 1 {
				t.Fatal("the store was retried")
			}
		})
	}
}

// The extension never answers the store: the flow's deadline ends it with
// store_unconfirmed, every login's state unknown.
func TestChangeStoreUnanswered(t *testing.T) {
	sb, trust := startSandbox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	x := startExtContext(t, ctx, &Host{Version: "test", Trust: trust})
	x.mailbox(sb)
	x.onStore = func(gjson.Result) map[string]any { return nil }
	final, steps := x.call(changeReq("c", "account1", sb, oldPw, newPw))
	if final.Get("code").String() != "store_unconfirmed" || !final.Get("changed").Bool() || touchedOf(final.Get("accounts")) != bothAccounts ||
		statesOf(final.Get("logins")) != strings.ReplaceAll(aliceStored, "stored", "unknown") ||
		!strings.Contains(final.Get("message").String(), "old or the new password") || !contains(steps, "saving:failed") {
		t.Fatalf("final = %s, steps %v", final.Raw, steps)
	}
	if recs := x.auditRecords(); len(recs) != 1 || recs[0].Outcome != "store_unconfirmed" || !recs[0].Changed {
		t.Fatalf("audit %+v", recs)
	}
}

// The provider took the new password but one server refuses it: nothing
// is stored, and the reply's servers say which. (Without the wait for
// lagging servers, which wait_test.go covers.)
func TestChangeVerificationFailureStoresNothing(t *testing.T) {
	sb, trust := startSandbox(t)
	sb.SetPassword("alice-smtp", oldPw)
	x := startExt(t, &Host{Version: "test", Trust: trust, Recheck: &flow.Recheck{Off: true}})
	x.mailbox(sb)
	x.accounts[0]["outgoing"] = srv("smtp", sb.SMTPS, "alice-smtp")
	final, _ := x.call(changeReq("c", "account1", sb, oldPw, newPw))
	if final.Get("code").String() != "verification_failed" || !final.Get("changed").Bool() ||
		outcomesOf(final.Get("servers")) != "imap alice ok, pop3 alice ok, smtp alice ok, smtp alice-smtp auth_failed" {
		t.Fatalf("final = %s", final.Raw)
	}
	x.wantNothingStored()
	if strings.Contains(final.Raw, newPw) {
		t.Fatal("the reply contains the password")
	}
}

// An account of the transaction whose server the extension listed in a
// form credsync cannot use fails it with invalid_request before anything
// is sent to the provider or a server.
func TestChangeUnusableListedServer(t *testing.T) {
	sb, trust := startSandbox(t)
	x := startExt(t, &Host{Version: "test", Trust: trust})
	x.mailbox(sb)
	bad := srv("pop3", sb.POP3S, "alice")
	bad["port"] = 0
	x.accounts[1]["incoming"] = bad
	var posts atomic.Int32
	req := changeReq("c", "account1", sb, oldPw, newPw)
	req["backend"] = map[string]any{"name": "sandbox", "url": faultProvider(t, sb, func(http.ResponseWriter, *http.Request) { posts.Add(1) })}
	final, steps := x.call(req)
	if final.Get("code").String() != "invalid_request" || final.Get("changed").Bool() || len(steps) != 0 ||
		!strings.Contains(final.Get("message").String(), "Alice POP3") {
		t.Fatalf("final = %s, steps %v", final.Raw, steps)
	}
	x.wantNothingStored()
	if len(sb.Logins()) != 0 || posts.Load() != 0 {
		t.Fatalf("%d server logins, %d provider posts", len(sb.Logins()), posts.Load())
	}
	// Bob's transaction does not include the unusable server.
	if r, _ := x.call(changeReq("b", "account3", sb, bobPw, "bobs-New-pw1")); !r.Get("result.stored").Bool() {
		t.Fatalf("bob's change = %s", r.Raw)
	}
}

func TestSyncStoresVerifiedPassword(t *testing.T) {
	sb, trust := startSandbox(t)
	sb.SetPassword("alice", "changed-Elsewhere1")
	x := startExt(t, &Host{Version: "test", Trust: trust})
	x.mailbox(sb)
	final, steps := x.call(syncReqFor("s", "account2", "changed-Elsewhere1"))
	r := final.Get("result")
	if final.Get("status").String() != "ok" || !r.Get("stored").Bool() || r.Get("changed").Bool() || touchedOf(r.Get("accounts")) != bothAccounts ||
		statesOf(r.Get("logins")) != aliceStored || len(x.storeRequests()) != 1 || contains(steps, "changing:running") {
		t.Fatalf("final = %s, %d stores, steps %v", final.Raw, len(x.storeRequests()), steps)
	}
	if n := len(sb.Logins()); n != 3 {
		t.Fatalf("%d logins; want one per server", n)
	}
	// A wrong password: one login per server, nothing stored.
	final, _ = x.call(syncReqFor("s2", "account1", "a-Wrong-one-2"))
	if final.Get("code").String() != "verification_failed" || final.Get("changed").Bool() ||
		outcomesOf(final.Get("servers")) != "imap alice auth_failed, pop3 alice auth_failed, smtp alice auth_failed" ||
		len(x.storeRequests()) != 1 || len(sb.Logins()) != 6 {
		t.Fatalf("wrong password: %s", final.Raw)
	}
	if r, _ := x.call(syncReqFor("s3", "account9", "changed-Elsewhere1")); r.Get("code").String() != "unknown_account" {
		t.Fatalf("unknown account: %s", r.Raw)
	}
}

// Propagation: the host reads the saved password with a login request,
// skips the logins that already hold it (neither checked nor written),
// and stores the others in one request.
func TestPropagateRequest(t *testing.T) {
	sb, trust := startSandbox(t)
	x := startExt(t, &Host{Version: "test", Trust: trust})
	x.mailbox(sb)
	propagate := map[string]any{"id": "p", "type": "propagate", "origin": "imap://localhost", "username": "alice"}

	// Nothing to do: every login holds the password.
	final, _ := x.call(propagate)
	if final.Get("status").String() != "ok" || !final.Get("result.updated").Exists() || final.Get("result.updated").Bool() {
		t.Fatalf("nothing to do: %s", final.Raw)
	}
	x.wantNothingStored()
	if len(sb.Logins()) != 0 || len(x.auditRecords()) != 0 {
		t.Fatal("nothing to do, yet a server was asked or a record written")
	}

	sb.SetPassword("alice", newPw)
	x.setSaved("imap://localhost", "alice", newPw) // Thunderbird's own prompt saved it
	propagate["id"] = "p2"
	final, _ = x.call(propagate)
	r := final.Get("result")
	if final.Get("status").String() != "ok" || !r.Get("updated").Bool() || !r.Get("stored").Bool() || r.Get("changed").Bool() ||
		touchedOf(r.Get("accounts")) != "account1[outgoing] account2[incoming,outgoing]" ||
		statesOf(r.Get("logins")) != "alice@mailbox://localhost=stored alice@smtp://localhost=stored" {
		t.Fatalf("propagate = %s", final.Raw)
	}
	if len(x.loginReqs) != 2 || x.loginReqs[1].Get("origin").String() != "imap://localhost" || x.loginReqs[1].Get("username").String() != "alice" {
		t.Fatalf("login requests %v", x.loginReqs)
	}
	want := map[string]int{"pop3 alice " + newPw: 1, "smtp alice " + newPw: 1}
	if got := sandboxLogins(sb); !equalCounts(got, want) {
		t.Fatalf("sandbox logins %v; want %v", got, want)
	}
	if stores := x.storeRequests(); len(stores) != 1 || len(stores[0].Get("logins").Array()) != 2 {
		t.Fatalf("stores %v", stores)
	}
	if x.password("smtp://localhost", "alice") != newPw || x.password("smtp://localhost", "bob") != bobPw {
		t.Fatal("the wrong logins were written")
	}
	if recs := x.auditRecords(); len(recs) != 1 || recs[0].Kind != "propagate" || strings.Join(recs[0].Accounts, " ") != "account1 account2" {
		t.Fatalf("audit %+v", recs)
	}
	// The extension has no such login (removed meanwhile): nothing to follow.
	delete(x.saved, loginKey("imap://localhost", "alice"))
	propagate["id"] = "p3"
	if final, _ = x.call(propagate); final.Get("status").String() != "ok" || final.Get("result.updated").Bool() || len(x.storeRequests()) != 1 {
		t.Fatalf("gone login: %s", final.Raw)
	}
}

// plan tells, for every account, whether it signs in with a password and
// which accounts a change of it would write; nothing is logged in to.
func TestPlanRequest(t *testing.T) {
	sb, trust := startSandbox(t)
	x := startExt(t, &Host{Version: "test", Trust: trust})
	x.mailbox(sb)
	oauth := srv("imap", sb.IMAPS, "carol")
	oauth["authMethod"] = 10
	x.accounts = append(x.accounts, acct("account4", "Carol", oauth, nil))
	final, _ := x.call(map[string]any{"id": "p", "type": "plan"})
	var got []string
	for _, a := range final.Get("result.accounts").Array() {
		got = append(got, a.Get("id").String()+" "+a.Get("passwordBased").Raw+" "+touchedOf(a.Get("touches"))+" "+a.Get("touches").Raw[:1])
	}
	want := []string{
		"account1 true " + bothAccounts + " [",
		"account2 true account2[incoming,outgoing] account1[incoming,outgoing] [",
		"account3 true account3[incoming,outgoing] [",
		"account4 false  [",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("plan\n%s\nwant\n%s\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), final.Raw)
	}
	// A plan reads no saved password: its accounts request has no salt.
	if len(x.accountReqs) != 1 || x.accountReqs[0].Get("salt").Exists() {
		t.Fatalf("accounts requests %v", x.accountReqs)
	}
	x.wantNothingStored()
	if len(sb.Logins()) != 0 {
		t.Fatal("plan logged in")
	}
}

// An extension that cannot list its accounts fails the flow before any
// change: nothing is sent to the provider.
func TestChangeWhenTheExtensionCannotList(t *testing.T) {
	for name, reply := range map[string]map[string]any{
		"error reply":      {"status": "error", "code": "list_failed", "message": "no"},
		"no accounts list": {"status": "ok", "result": map[string]any{}},
	} {
		t.Run(name, func(t *testing.T) {
			sb, trust := startSandbox(t)
			var posts atomic.Int32
			url := faultProvider(t, sb, func(w http.ResponseWriter, r *http.Request) { posts.Add(1) })
			x := startExt(t, &Host{Version: "test", Trust: trust})
			x.accountsReply = reply
			req := changeReq("c", "account1", sb, oldPw, newPw)
			req["backend"] = map[string]any{"name": "sandbox", "url": url}
			final, _ := x.call(req)
			if final.Get("code").String() != "internal_error" || !strings.Contains(final.Get("message").String(), "did not list its accounts") {
				t.Fatalf("final = %s", final.Raw)
			}
			if len(sb.Logins()) != 0 || posts.Load() != 0 {
				t.Fatalf("%d logins, %d provider posts", len(sb.Logins()), posts.Load())
			}
			x.wantNothingStored()
		})
	}
}
