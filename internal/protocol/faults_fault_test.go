package protocol

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/flow"
	"github.com/credsync/credsync/internal/testkit/sandbox"
	arubasim "github.com/credsync/credsync/internal/testkit/simulators/aruba"
	"github.com/credsync/credsync/internal/verify"
)

// The fault matrix of SECURITY.md at the protocol level: each test drives a
// real Host over its native-messaging framing, with the sandbox's servers
// and real back-ends, injects one fault, and checks what the extension is
// told and asked to store — Thunderbird's logins end all-old (no store
// request, or one that was refused) or all-new (one store request with the
// verified password), and the reply says which, and whether the provider
// has the new password.

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
	faultOld = oldPw
	faultNew = newPw
)

// startFault is a session listing alice's mailbox (fakeExt.mailbox).
func startFault(t *testing.T, h *Host, sb *sandbox.Sandbox) *fakeExt {
	t.Helper()
	x := startExt(t, h)
	x.mailbox(sb)
	return x
}

// wantAllOld: no login holds the new password.
func (x *fakeExt) wantAllOld() {
	x.t.Helper()
	x.mu.Lock()
	defer x.mu.Unlock()
	for k, pw := range x.saved {
		if pw == faultNew {
			x.t.Fatalf("login %q holds the new password", k)
		}
	}
}

// Connection reset mid-AUTH: the outgoing server resets the connection
// when the new password arrives. The provider has it; Thunderbird's logins
// stay all-old; the reply says so (verification_failed, changed) with
// network_error for that server; the server saw one attempt, never a retry.
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
	x := startFault(t, &Host{Version: "test", Trust: trust}, sb)
	x.accounts = x.accounts[:1]
	x.accounts[0]["outgoing"] = onHost(srv("smtp", ln.Addr().String(), "alice"), "127.0.0.1")
	r, _ := x.call(changeReq("c", "account1", sb, faultOld, faultNew))
	if r.Get("code").String() != "verification_failed" || !r.Get("changed").Bool() ||
		outcomesOf(r.Get("servers")) != "imap alice ok, smtp alice network_error" {
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
	x := startFault(t, &Host{Version: "test", Trust: trust}, sb)
	x.accounts = x.accounts[:1]
	x.accounts[0]["outgoing"] = srv("smtp", untrusted.SMTPS, "alice")

	r, _ := x.call(syncReqFor("s", "account1", faultOld))
	if r.Get("code").String() != "verification_failed" || r.Get("changed").Bool() || outcomesOf(r.Get("servers")) != "imap alice ok, smtp alice tls_error" {
		t.Fatalf("sync reply %s", r.Raw)
	}
	r, _ = x.call(changeReq("c", "account1", sb, faultOld, faultNew))
	if r.Get("code").String() != "verification_failed" || !r.Get("changed").Bool() || outcomesOf(r.Get("servers")) != "imap alice ok, smtp alice tls_error" {
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
	x := startFault(t, &Host{Version: "test", Trust: trust, verifyTimeout: 300 * time.Millisecond}, sb)
	x.accounts = x.accounts[:1]
	x.accounts[0]["outgoing"] = onHost(srv("smtp", ln.Addr().String(), "alice"), "127.0.0.1")
	start := time.Now()
	r, steps := x.call(changeReq("c", "account1", sb, faultOld, faultNew))
	if r.Get("code").String() != "verification_failed" || !r.Get("changed").Bool() || outcomesOf(r.Get("servers")) != "imap alice ok, smtp alice network_error" {
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
// unanswered): one login per server with the new password decides —
// stored when the provider had applied it (all-new, one store);
// outcome_unknown when no server accepts the new password — whether they
// refuse it (the provider did not apply it, or applied it and the servers
// lag behind) or cannot be asked: a lost answer is never "not changed".
// Never more than one login per server.
func TestFaultProviderLostAfterAccepting(t *testing.T) {
	for _, c := range []struct {
		name      string
		apply     bool
		deadMail  bool
		code      string // "" = stored
		wantLogin int    // logins with the new password
	}{
		{"applied", true, false, "", 3},
		{"not applied", false, false, "outcome_unknown", 3},
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
			// Without the wait for lagging servers (wait_test.go).
			x := startFault(t, &Host{Version: "test", Trust: trust, Recheck: &flow.Recheck{Off: true}}, sb)
			req := changeReq("c", "account1", sb, faultOld, faultNew)
			req["backend"] = map[string]any{"name": "sandbox", "url": url}
			if c.deadMail {
				dead := deadLoopback(t)
				x.accounts = []map[string]any{acct("account1", "", srv("imap", dead, "alice"), srv("smtp", dead, "alice"))}
			}
			r, _ := x.call(req)
			ok, refused := loginCount(sb, faultNew)
			if c.code == "" {
				if r.Get("status").String() != "ok" || !r.Get("result.stored").Bool() || !r.Get("result.changed").Bool() ||
					len(x.storeRequests()) != 1 || statesOf(r.Get("result.logins")) != aliceStored {
					t.Fatalf("reply %s with %d stores; want stored", r.Raw, len(x.storeRequests()))
				}
			} else {
				if r.Get("code").String() != c.code || r.Get("message").String() == "" || r.Get("changed").Bool() {
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
		x := startExt(t, &Host{Version: "test", Trust: verify.Trust{Roots: s.CAPool}})
		x.accounts = []map[string]any{acct("account1", "", srv("imap", ln.Addr().String(), user), srv("smtp", ln.Addr().String(), user))}
		r, steps := x.call(map[string]any{"id": "c", "type": "change", "accountId": "account1",
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
// store_unconfirmed (the extension writes every login or none, so
// Thunderbird holds all-old or all-new), the audit log records it with
// the provider changed, and the host exits cleanly. The next session's
// "I already changed it" stores the new password (all-new).
func TestFaultThunderbirdQuitsDuringStore(t *testing.T) {
	sb, trust := startSandbox(t)
	x := startFault(t, &Host{Version: "test", Trust: trust}, sb)
	stored := make(chan gjson.Result, 1)
	x.onStore = func(store gjson.Result) map[string]any {
		stored <- store
		return nil // Thunderbird is quitting: no answer
	}
	x.send(changeReq("c", "account1", sb, faultOld, faultNew))
	select {
	case store := <-stored:
		for _, l := range store.Get("logins").Array() {
			if l.Get("password").String() != faultNew {
				t.Fatal("the store request carries another password")
			}
		}
		if n := len(store.Get("logins").Array()); n != 3 {
			t.Fatalf("the store request carries %d logins; want every one", n)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no store request")
	}
	x.close() // Thunderbird is gone
	if err := x.wait(); err != nil {
		t.Fatalf("Serve() = %v", err)
	}
	recs := x.auditRecords()
	if len(recs) != 1 || recs[0].Outcome != "store_unconfirmed" || !recs[0].Changed || recs[0].Kind != "change" ||
		strings.Join(recs[0].Accounts, " ") != "account1 account2" {
		t.Fatalf("audit %+v; want one change record store_unconfirmed, changed", recs)
	}

	// Thunderbird again; the user runs "I already changed it".
	x2 := startFault(t, &Host{Version: "test", Trust: trust}, sb)
	r, _ := x2.call(syncReqFor("s", "account1", faultNew))
	if !r.Get("result.stored").Bool() || len(x2.storeRequests()) != 1 || x2.password("mailbox://localhost", "alice") != faultNew {
		t.Fatalf("sync after the restart: %s", r.Raw)
	}
}

// Writing the second login fails: the extension puts the first back and
// answers store_failed with each login's state. No login holds the new
// password, the reply says so with every touched account and that the
// provider changed; "I already changed it" then stores it everywhere.
func TestFaultSecondLoginWriteFails(t *testing.T) {
	sb, trust := startSandbox(t)
	x := startFault(t, &Host{Version: "test", Trust: trust}, sb)
	x.onStore = func(store gjson.Result) map[string]any {
		// The first login was written, the second write failed, the
		// first was put back: x.saved is as before.
		logins := store.Get("logins").Array()
		var states []any
		for i, l := range logins {
			state := "unchanged"
			if i == 0 {
				state = "restored"
			}
			states = append(states, map[string]any{"origin": l.Get("origin").String(), "username": l.Get("username").String(), "state": state})
		}
		return map[string]any{"status": "error", "code": "store_failed", "message": "writing a login failed", "logins": states}
	}
	r, steps := x.call(changeReq("c", "account1", sb, faultOld, faultNew))
	if r.Get("code").String() != "store_failed" || !r.Get("changed").Bool() || touchedOf(r.Get("accounts")) != bothAccounts ||
		statesOf(r.Get("logins")) != "alice@imap://localhost=restored alice@mailbox://localhost=unchanged alice@smtp://localhost=unchanged" ||
		!strings.Contains(r.Get("message").String(), "no login holds the new password") || !contains(steps, "saving:failed") {
		t.Fatalf("reply %s, steps %v", r.Raw, steps)
	}
	x.wantAllOld()
	if recs := x.auditRecords(); len(recs) != 1 || recs[0].Outcome != "store_failed" || !recs[0].Changed {
		t.Fatalf("audit %+v", recs)
	}
	x.onStore = nil
	if r, _ := x.call(syncReqFor("s", "account2", faultNew)); !r.Get("result.stored").Bool() || statesOf(r.Get("result.logins")) != aliceStored {
		t.Fatalf("sync after the failed store: %s", r.Raw)
	}
}

// Two transactions over the same logins at once: the second is refused
// with busy before it sends anything, whichever sibling account it names;
// one over other logins runs; the first completes.
func TestFaultTwoFlowsOnOverlappingLogins(t *testing.T) {
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
	x := startFault(t, &Host{Version: "test", Trust: trust}, sb)
	first := changeReq("c1", "account1", sb, faultOld, faultNew)
	first["backend"] = map[string]any{"name": "sandbox", "url": url}
	x.send(first)
	<-arrived
	second := changeReq("c2", "account2", sb, faultOld, "other-Passw0rd!")
	second["backend"] = map[string]any{"name": "sandbox", "url": url}
	r, steps := x.call(second)
	if r.Get("code").String() != "busy" || len(steps) != 0 {
		t.Fatalf("second change: %s, steps %v", r.Raw, steps)
	}
	if r, _ := x.call(syncReqFor("s", "account1", faultOld)); r.Get("code").String() != "busy" {
		t.Fatalf("sync during the change: %s", r.Raw)
	}
	if posts.Load() != 1 || len(sb.Logins()) != 0 {
		t.Fatalf("%d posts, %d logins while the first change runs", posts.Load(), len(sb.Logins()))
	}
	if r, _ := x.call(syncReqFor("b", "account3", bobPw)); !r.Get("result.stored").Bool() || touchedOf(r.Get("result.accounts")) != "account3[incoming,outgoing]" {
		t.Fatalf("bob's sync was held up: %s", r.Raw)
	}
	close(release)
	r, _ = x.waitReply("c1", 20*time.Second)
	if !r.Get("result.stored").Bool() || len(x.storeRequests()) != 2 {
		t.Fatalf("first change: %s", r.Raw)
	}
	outcomes := map[string]int{}
	for _, rec := range x.auditRecords() {
		outcomes[rec.Outcome]++
	}
	if outcomes["busy"] != 2 || outcomes["stored"] != 2 || len(outcomes) != 2 {
		t.Fatalf("audit outcomes %v", outcomes)
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
