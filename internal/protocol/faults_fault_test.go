package protocol

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/audit"
	"github.com/credsync/credsync/internal/flow"
	"github.com/credsync/credsync/internal/testkit/sandbox"
	arubasim "github.com/credsync/credsync/internal/testkit/simulators/aruba"
	"github.com/credsync/credsync/internal/verify"
	"github.com/credsync/credsync/internal/wire"
)

// The fault matrix of SECURITY.md at the protocol level: each test drives a
// real Host over its native-messaging framing, with the sandbox's servers
// and real back-ends, injects one fault, and checks what the extension is
// told and asked to store — Thunderbird's logins end all-old (no store
// request, or one that was refused) or all-new (one store request with the
// verified password), and the reply says which, and whether the provider
// has the new password.

// faultExt plays the extension for a Host: it sends requests and answers
// the host's store requests with onStore (success when nil).
type faultExt struct {
	t       *testing.T
	in      *io.PipeWriter
	w       *wire.Writer
	msgs    chan gjson.Result
	served  chan error
	mu      sync.Mutex
	stores  []gjson.Result
	onStore func(store gjson.Result) map[string]any
	records []audit.Record
}

func startFaultExt(t *testing.T, h *Host) *faultExt {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	x := &faultExt{t: t, in: inW, w: wire.NewWriter(inW), msgs: make(chan gjson.Result, 256), served: make(chan error, 1)}
	if h.Audit == nil {
		h.Audit = func(r audit.Record) error {
			x.mu.Lock()
			x.records = append(x.records, r)
			x.mu.Unlock()
			return nil
		}
	}
	go func() {
		x.served <- h.Serve(context.Background(), inR, outW)
		outW.Close()
	}()
	go func() {
		r := wire.NewReader(outR, 0)
		for {
			body, err := r.Read()
			if err != nil {
				close(x.msgs)
				return
			}
			m := gjson.ParseBytes(body)
			if m.Get("type").String() == "store" && m.Get("id").Exists() {
				x.mu.Lock()
				x.stores = append(x.stores, m)
				on := x.onStore
				x.mu.Unlock()
				reply := map[string]any{"status": "ok", "result": map[string]any{"incoming": "modified", "outgoing": "modified"}}
				if on != nil {
					if reply = on(m); reply == nil {
						continue // left unanswered
					}
				}
				reply["id"] = m.Get("id").String()
				x.send(reply)
				continue
			}
			x.msgs <- m
		}
	}()
	t.Cleanup(func() {
		x.in.Close()
		select {
		case <-x.served:
		case <-time.After(10 * time.Second):
			t.Error("Serve() did not return after its input closed")
		}
	})
	return x
}

func (x *faultExt) send(v any) {
	b, _ := json.Marshal(v)
	_ = x.w.Write(b)
}

// call sends a request and returns its reply and the progress steps seen.
func (x *faultExt) call(req map[string]any) (gjson.Result, []string) {
	x.t.Helper()
	x.send(req)
	return x.wait(req["id"].(string), 30*time.Second)
}

func (x *faultExt) wait(id string, d time.Duration) (gjson.Result, []string) {
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

func (x *faultExt) storeCount() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.stores)
}

func (x *faultExt) auditRecords() []audit.Record {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]audit.Record(nil), x.records...)
}

// wantNothingStored: Thunderbird's logins stay all-old.
func (x *faultExt) wantNothingStored() {
	x.t.Helper()
	if n := x.storeCount(); n != 0 {
		x.t.Fatalf("%d store requests; the logins must stay as they are", n)
	}
}

// faultProvider is an HTTPS change endpoint with the sandbox's certificate
// (so the host trusts it) and the given behaviour.
func faultProvider(t *testing.T, sb *sandbox.Sandbox, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = sb.ServerTLSConfig()
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL + "/change"
}

// applyChange does what the sandbox's endpoint does, without answering.
func applyChange(sb *sandbox.Sandbox, r *http.Request) {
	r.ParseForm()
	sb.SetPassword(r.PostForm.Get("username"), r.PostForm.Get("new"))
}

// dropConnection closes the client's connection unanswered, after the
// request arrived: the provider failed after accepting it.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

func loginCount(sb *sandbox.Sandbox, password string) (ok, refused int) {
	for _, l := range sb.Logins() {
		if l.Password == password {
			if l.OK {
				ok++
			} else {
				refused++
			}
		}
	}
	return ok, refused
}

const (
	faultOld = "old-Passw0rd!"
	faultNew = "new-Passw0rd!"
)

// Connection reset mid-AUTH: the outgoing server resets the connection
// when the new password arrives. The provider has it; Thunderbird's logins
// stay all-old; the reply says so (verification_failed, changed) with
// network_error for that side; the server saw one attempt, never a retry.
func TestFaultResetMidAuth(t *testing.T) {
	sb, trust := startSandbox(t)
	var conns, auths atomic.Int32
	ln, err := tls.Listen("tcp", "127.0.0.1:0", sb.ServerTLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				io.WriteString(c, "220 fake ESMTP\r\n")
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					switch verb := strings.ToUpper(strings.Fields(line + " x")[0]); verb {
					case "EHLO":
						io.WriteString(c, "250-fake\r\n250 AUTH PLAIN LOGIN\r\n")
					case "AUTH":
						auths.Add(1)
						c.(*tls.Conn).NetConn().(*net.TCPConn).SetLinger(0) // RST
						return
					default:
						io.WriteString(c, "502 no\r\n")
					}
				}
			}()
		}
	}()
	x := startFaultExt(t, &Host{Version: "test", Trust: trust})
	req := changeRequest(sb, faultOld, faultNew)
	req["account"].(map[string]any)["outgoing"] = ep("smtp", ln.Addr().String(), "alice")
	r, _ := x.call(req)
	if r.Get("code").String() != "verification_failed" || !r.Get("changed").Bool() ||
		r.Get("incoming.outcome").String() != "ok" || r.Get("outgoing.outcome").String() != "network_error" {
		t.Fatalf("reply %s", r.Raw)
	}
	x.wantNothingStored()
	if conns.Load() != 1 || auths.Load() != 1 {
		t.Fatalf("%d connections, %d AUTH; want one attempt", conns.Load(), auths.Load())
	}
	if strings.Contains(r.Raw, faultNew) {
		t.Fatal("the reply carries the password")
	}
}

// TLS handshake failure: a server whose certificate is not trusted is
// never sent the password. In a sync nothing changed anywhere; in a change
// the provider has the new password and the reply says so.
func TestFaultTLSHandshakeFailure(t *testing.T) {
	sb, trust := startSandbox(t)
	untrusted, err := sandbox.Start(sandbox.Options{Users: map[string]string{"alice": faultOld}}) // another CA
	if err != nil {
		t.Fatal(err)
	}
	defer untrusted.Close()
	x := startFaultExt(t, &Host{Version: "test", Trust: trust})
	acct := map[string]any{"id": "account1", "incoming": ep("imap", sb.IMAPS, "alice"), "outgoing": ep("smtp", untrusted.SMTPS, "alice")}

	r, _ := x.call(map[string]any{"id": "s", "type": "sync", "account": acct, "password": faultOld})
	if r.Get("code").String() != "verification_failed" || r.Get("changed").Bool() || r.Get("outgoing.outcome").String() != "tls_error" {
		t.Fatalf("sync reply %s", r.Raw)
	}
	req := changeRequest(sb, faultOld, faultNew)
	req["account"] = acct
	r, _ = x.call(req)
	if r.Get("code").String() != "verification_failed" || !r.Get("changed").Bool() || r.Get("outgoing.outcome").String() != "tls_error" {
		t.Fatalf("change reply %s", r.Raw)
	}
	x.wantNothingStored()
	if n := len(untrusted.Logins()); n != 0 {
		t.Fatalf("the untrusted server saw %d logins", n)
	}
}

// A server slower than the deadline: the verification gives up at its
// deadline with network_error and stores nothing.
func TestFaultServerSlowerThanDeadline(t *testing.T) {
	sb, trust := startSandbox(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held.Go(func() { io.Copy(io.Discard, c); c.Close() }) // never answers
		}
	}()
	h := &Host{Version: "test", Trust: trust}
	h.engine.VerifyTimeout = 300 * time.Millisecond
	x := startFaultExt(t, h)
	req := changeRequest(sb, faultOld, faultNew)
	req["account"].(map[string]any)["outgoing"] = ep("smtp", ln.Addr().String(), "alice")
	start := time.Now()
	r, steps := x.call(req)
	if r.Get("code").String() != "verification_failed" || !r.Get("changed").Bool() || r.Get("outgoing.outcome").String() != "network_error" {
		t.Fatalf("reply %s", r.Raw)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the flow took %s with a 300 ms deadline", d)
	}
	if !contains(steps, "checking_outgoing:failed") || contains(steps, "saving:running") {
		t.Fatalf("steps %v", steps)
	}
	x.wantNothingStored()
}

// The provider fails after it accepted the request (the connection drops
// unanswered): one login with the new password decides — stored when the
// provider had applied it (all-new), not_changed when it had not (all-old),
// outcome_unknown when no server can tell (all-old, the user told to
// check). Never more than one login per server.
func TestFaultProviderLostAfterAccepting(t *testing.T) {
	for _, c := range []struct {
		name      string
		apply     bool
		deadMail  bool
		code      string // "" = stored
		wantLogin int    // logins with the new password
	}{
		{"applied", true, false, "", 2},
		{"not applied", false, false, "not_changed", 2},
		{"servers unreachable", true, true, "outcome_unknown", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			sb, trust := startSandbox(t)
			var posts atomic.Int32
			url := faultProvider(t, sb, func(w http.ResponseWriter, r *http.Request) {
				posts.Add(1)
				if c.apply {
					applyChange(sb, r)
				}
				dropConnection(w)
			})
			x := startFaultExt(t, &Host{Version: "test", Trust: trust})
			req := changeRequest(sb, faultOld, faultNew)
			req["backend"] = map[string]any{"name": "sandbox", "url": url}
			if c.deadMail {
				dead := deadLoopback(t)
				req["account"] = map[string]any{"id": "account1", "incoming": ep("imap", dead, "alice"), "outgoing": ep("smtp", dead, "alice")}
			}
			r, _ := x.call(req)
			ok, refused := loginCount(sb, faultNew)
			if c.code == "" {
				if r.Get("status").String() != "ok" || !r.Get("result.stored").Bool() || x.storeCount() != 1 {
					t.Fatalf("reply %s with %d stores; want stored", r.Raw, x.storeCount())
				}
			} else {
				if r.Get("code").String() != c.code || r.Get("message").String() == "" {
					t.Fatalf("reply %s; want %s", r.Raw, c.code)
				}
				x.wantNothingStored()
			}
			if ok+refused != c.wantLogin || posts.Load() != 1 {
				t.Fatalf("%d logins with the new password, %d posts; want %d and one post (no retry)", ok+refused, posts.Load(), c.wantLogin)
			}
			recs := x.auditRecords()
			if len(recs) != 1 || c.code != "" && recs[0].Outcome != c.code {
				t.Fatalf("audit %+v", recs)
			}
		})
	}
}

// A provider page that changed (the Aruba simulator's new layouts): the
// back-end stops with page_not_recognised before submitting anything; no
// server is asked, nothing is stored.
func TestFaultProviderPageChanged(t *testing.T) {
	const user, current, next = "utente@pec.it", "Vecchia-Pass1!", "Nuova-Pass2026!"
	for _, layout := range []arubasim.Layout{arubasim.VerificationCode, arubasim.NoChangeLink, arubasim.ChangedForm} {
		s := arubasim.Start(arubasim.Options{Users: map[string]string{user: current}, Layout: layout})
		defer s.Close()
		// Mail servers that count every connection: none may come.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		var dials atomic.Int32
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				dials.Add(1)
				c.Close()
			}
		}()
		x := startFaultExt(t, &Host{Version: "test", Trust: verify.Trust{Roots: s.CAPool}})
		r, steps := x.call(map[string]any{"id": "c", "type": "change",
			"account": map[string]any{"id": "account1", "incoming": ep("imap", ln.Addr().String(), user), "outgoing": ep("smtp", ln.Addr().String(), user)},
			"backend": map[string]any{"name": "aruba", "url": s.URL}, "current": current, "new": next})
		if r.Get("code").String() != "page_not_recognised" || r.Get("changed").Bool() || !contains(steps, "changing:failed") {
			t.Fatalf("layout %d: reply %s, steps %v", layout, r.Raw, steps)
		}
		if s.ChangePosts() != 0 || s.Password(user) != current || dials.Load() != 0 {
			t.Fatalf("layout %d: %d change posts, %d server connections", layout, s.ChangePosts(), dials.Load())
		}
		x.wantNothingStored()
	}
}

// Thunderbird quits mid-flow: the extension's side of the port closes
// while the host waits for its answer to store. The flow ends
// store_unconfirmed (Thunderbird may have written the new logins or not:
// all-old or all-new, never a mix, since the extension writes both or
// neither), the audit log records it with the provider changed, and the
// host exits cleanly. The next session's "I already changed it" stores
// the new password (all-new).
func TestFaultThunderbirdQuitsDuringStore(t *testing.T) {
	sb, trust := startSandbox(t)
	x := startFaultExt(t, &Host{Version: "test", Trust: trust})
	stored := make(chan string, 1)
	x.onStore = func(store gjson.Result) map[string]any {
		stored <- store.Get("password").String()
		return nil // Thunderbird is quitting: no answer
	}
	x.send(changeRequest(sb, faultOld, faultNew))
	select {
	case pw := <-stored:
		if pw != faultNew {
			t.Fatal("the store request carries another password")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no store request")
	}
	x.in.Close() // Thunderbird is gone
	select {
	case err := <-x.served:
		x.served <- err
		if err != nil {
			t.Fatalf("Serve() = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the host kept running after the port closed")
	}
	recs := x.auditRecords()
	if len(recs) != 1 || recs[0].Outcome != "store_unconfirmed" || !recs[0].Changed || recs[0].Kind != "change" {
		t.Fatalf("audit %+v; want one change record store_unconfirmed, changed", recs)
	}

	// Thunderbird again; the user runs "I already changed it".
	x2 := startFaultExt(t, &Host{Version: "test", Trust: trust})
	req := changeRequest(sb, "", "")
	delete(req, "backend")
	delete(req, "current")
	delete(req, "new")
	req["type"], req["password"], req["id"] = "sync", faultNew, "s"
	r, _ := x2.call(req)
	if !r.Get("result.stored").Bool() || x2.storeCount() != 1 {
		t.Fatalf("sync after the restart: %s", r.Raw)
	}
}

// The extension's store answer never comes but the port stays open: the
// host gives up at its deadline with store_unconfirmed (the popup is told
// the logins hold the old or the new password). The deadline is
// storeTimeout (5 min) in production; here the flow's context ends first.
func TestFaultStoreUnanswered(t *testing.T) {
	sb, trust := startSandbox(t)
	s := &session{pending: map[string]chan gjson.Result{}, out: wire.NewWriter(io.Discard)}
	s.log = log.New(io.Discard, "", 0)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	h := &Host{Version: "test", Trust: trust}
	h.engine.Trust, h.engine.Store = trust, s
	sb.SetPassword("alice", faultNew)
	acct, _ := decodeSync(gjson.Parse(mustJSON(map[string]any{"account": map[string]any{"id": "a1",
		"incoming": ep("imap", sb.IMAPS, "alice"), "outgoing": ep("smtp", sb.SMTPS, "alice")}, "password": faultNew})))
	_, err := h.engine.Sync(ctx, acct.account, acct.password, func(flow.Step, flow.State) {})
	if reply := errorReply(nil, err); reply.Code != "store_unconfirmed" || !strings.Contains(reply.Message, "old or the new password") {
		t.Fatalf("Sync() = %v", err)
	}
}

// Two flows for one account at once: the second is refused with busy
// before it sends anything — from the extension and from the local socket
// alike — and the first completes.
func TestFaultTwoFlowsForOneAccount(t *testing.T) {
	sb, trust := startSandbox(t)
	arrived, release := make(chan struct{}), make(chan struct{})
	var posts atomic.Int32
	url := faultProvider(t, sb, func(w http.ResponseWriter, r *http.Request) {
		if posts.Add(1) == 1 {
			close(arrived)
			<-release
		}
		applyChange(sb, r)
		w.Write([]byte(`{"ok":true}`))
	})
	x := startFaultExt(t, &Host{Version: "test", Trust: trust})
	first := changeRequest(sb, faultOld, faultNew)
	first["backend"] = map[string]any{"name": "sandbox", "url": url}
	x.send(first)
	<-arrived
	second := changeRequest(sb, faultOld, "other-Passw0rd!")
	second["id"], second["backend"] = "c2", map[string]any{"name": "sandbox", "url": url}
	r, steps := x.call(second)
	if r.Get("code").String() != "busy" || len(steps) != 0 {
		t.Fatalf("second change: %s, steps %v", r.Raw, steps)
	}
	sync := map[string]any{"id": "s", "type": "sync", "account": first["account"], "password": faultOld}
	if r, _ := x.call(sync); r.Get("code").String() != "busy" {
		t.Fatalf("sync during the change: %s", r.Raw)
	}
	if posts.Load() != 1 || len(sb.Logins()) != 0 {
		t.Fatalf("%d posts, %d logins while the first change runs", posts.Load(), len(sb.Logins()))
	}
	close(release)
	r, _ = x.wait("c1", 20*time.Second)
	if !r.Get("result.stored").Bool() || x.storeCount() != 1 {
		t.Fatalf("first change: %s", r.Raw)
	}
	if recs := x.auditRecords(); len(recs) != 3 || recs[0].Outcome != "busy" || recs[1].Outcome != "busy" || recs[2].Outcome != "stored" {
		t.Fatalf("audit %+v", recs)
	}
}

func deadLoopback(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
