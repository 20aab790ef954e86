package flow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/code"
	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/provider"
	"github.com/credsync/credsync/internal/testkit/sandbox"
	"github.com/credsync/credsync/internal/verify"
)

const (
	oldPassword = "old-Passw0rd!"
	newPassword = "new-Passw0rd!"
	bobPassword = "bobs-Passw0rd!"
)

// fakeBackend changes the sandbox's password (or not) and returns err.
type fakeBackend struct {
	sb      *sandbox.Sandbox
	apply   bool
	err     error
	calls   int
	started chan struct{}
	release chan struct{}
}

func (b *fakeBackend) Info() provider.Info { return provider.Info{Name: "fake", NeedsCurrent: true} }

func (b *fakeBackend) Change(ctx context.Context, r provider.Request) error {
	b.calls++
	if b.started != nil {
		close(b.started)
		<-b.release
	}
	if b.apply {
		b.sb.SetPassword(r.Username, r.New)
	}
	return b.err
}

// sha is the extension's fingerprint, computed here from PROTOCOL.md's
// definition rather than with the package's own function.
func sha(salt, password string) string {
	sum := sha256.Sum256([]byte(salt + ":" + password))
	return hex.EncodeToString(sum[:])
}

func loginKey(origin, username string) string { return strings.ToLower(origin) + "\n" + username }

// fakeTB plays Thunderbird's extension: it lists the accounts with the
// fingerprints of its saved logins, reads logins, and stores all or none
// with compare-and-swap, as PROTOCOL.md's store does.
type fakeTB struct {
	t  *testing.T
	mu sync.Mutex
	// accounts are listed with Saved filled in from saved.
	accounts []Account
	// saved holds the logins: loginKey -> password.
	saved  map[string]string
	locked bool

	listErr error
	readErr error
	// failAt makes the store fail on that write (0-based), restoring the
	// ones before it; -1 never.
	failAt int
	// onStore, when set, answers the store instead (after recording it).
	onStore func(writes []Write) ([]Written, error)
	// beforeStore runs before the comparison (another program writes).
	beforeStore func()

	salts  []string
	reads  []Login
	stores [][]Write
}

func (tb *fakeTB) Accounts(_ context.Context, salt string) ([]Account, error) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.salts = append(tb.salts, salt)
	if tb.listErr != nil {
		return nil, tb.listErr
	}
	out := make([]Account, len(tb.accounts))
	for i, a := range tb.accounts {
		out[i] = a
		for _, s := range []**Server{&out[i].Incoming, &out[i].Outgoing} {
			if *s == nil {
				continue
			}
			c := **s
			switch pw, ok := tb.saved[loginKey(c.Origin, c.Username)]; {
			case tb.locked:
				c.Saved = Saved{}
			case ok:
				c.Saved = Saved{Known: true, Exists: true, Fingerprint: sha(salt, pw)}
			default:
				c.Saved = Saved{Known: true}
			}
			*s = &c
		}
	}
	return out, nil
}

func (tb *fakeTB) ReadLogin(_ context.Context, l Login) (string, error) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.reads = append(tb.reads, l)
	if tb.readErr != nil {
		return "", tb.readErr
	}
	pw, ok := tb.saved[loginKey(l.Origin, l.Username)]
	if !ok || tb.locked {
		return "", errors.New("no_login")
	}
	return pw, nil
}

func (tb *fakeTB) Store(_ context.Context, salt string, writes []Write) ([]Written, error) {
	tb.mu.Lock()
	tb.stores = append(tb.stores, append([]Write(nil), writes...))
	if !contains(tb.salts, salt) {
		tb.t.Errorf("store with salt %q, not a listing's %v", salt, tb.salts)
	}
	on, before := tb.onStore, tb.beforeStore
	tb.mu.Unlock()
	if before != nil {
		before()
	}
	if on != nil {
		return on(writes)
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	states := func(s LoginState) []Written {
		out := make([]Written, len(writes))
		for i, w := range writes {
			out[i] = Written{w.Login, s}
		}
		return out
	}
	for _, w := range writes {
		cur, exists := tb.saved[loginKey(w.Origin, w.Username)]
		if !w.Expect.Known {
			continue
		}
		if exists != w.Expect.Exists || exists && sha(salt, cur) != w.Expect.Fingerprint {
			return nil, &StoreError{Code: code.StoreConflict, Message: "a login changed", Logins: states(Unchanged)}
		}
	}
	out := states(Stored)
	if tb.failAt >= 0 && tb.failAt < len(writes) {
		for j := range out {
			out[j].State = Unchanged
			if j < tb.failAt {
				out[j].State = Restored
			}
		}
		return nil, &StoreError{Code: code.StoreFailed, Message: "writing a login failed", Logins: out}
	}
	for _, w := range writes {
		tb.saved[loginKey(w.Origin, w.Username)] = w.Password
	}
	return out, nil
}

func (tb *fakeTB) storeCalls() [][]Write {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([][]Write(nil), tb.stores...)
}

func (tb *fakeTB) password(origin, username string) string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return tb.saved[loginKey(origin, username)]
}

type fixture struct {
	sb    *sandbox.Sandbox
	tb    *fakeTB
	eng   *Engine
	mu    sync.Mutex
	steps []string
}

// Origins of the fixture's logins.
const (
	imapOrigin = "imap://localhost"
	popOrigin  = "mailbox://localhost"
	smtpOrigin = "smtp://localhost"
)

// newFixture is one mailbox (alice) set up twice — account1 over IMAP,
// account2 over POP3, both sending through one SMTP server as alice —
// and account3 (bob) with his own IMAP login on the same host and the
// same SMTP server. Every login is saved with its password.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	sb, err := sandbox.Start(sandbox.Options{Users: map[string]string{"alice": oldPassword, "bob": bobPassword}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	tb := &fakeTB{t: t, failAt: -1, saved: map[string]string{
		loginKey(imapOrigin, "alice"): oldPassword,
		loginKey(popOrigin, "alice"):  oldPassword,
		loginKey(smtpOrigin, "alice"): oldPassword,
		loginKey(imapOrigin, "bob"):   bobPassword,
		loginKey(smtpOrigin, "bob"):   bobPassword,
	}}
	tb.accounts = []Account{
		{ID: "account1", Name: "Alice IMAP", Incoming: srv(t, endpoint.IMAP, sb.IMAPS, "alice"), Outgoing: srv(t, endpoint.SMTP, sb.SMTPS, "alice")},
		{ID: "account2", Name: "Alice POP3", Incoming: srv(t, endpoint.POP3, sb.POP3S, "alice"), Outgoing: srv(t, endpoint.SMTP, sb.SMTPS, "alice")},
		{ID: "account3", Name: "Bob", Incoming: srv(t, endpoint.IMAP, sb.IMAPS, "bob"), Outgoing: srv(t, endpoint.SMTP, sb.SMTPS, "bob")},
	}
	f := &fixture{sb: sb, tb: tb}
	f.eng = &Engine{Trust: verify.Trust{Roots: sb.CAPool}, Thunderbird: tb, VerifyTimeout: 5 * time.Second}
	return f
}

// srv is a listed server on localhost at addr's port, signing in with a
// password, with the origin Thunderbird gives its protocol.
func srv(t *testing.T, p endpoint.Protocol, addr, user string) *Server {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(port)
	origin := map[endpoint.Protocol]string{endpoint.IMAP: imapOrigin, endpoint.POP3: popOrigin, endpoint.SMTP: smtpOrigin}[p]
	return &Server{Endpoint: endpoint.Endpoint{Protocol: p, Host: "localhost", Port: n, Security: endpoint.TLS,
		AuthMethod: endpoint.AuthPasswordCleartext, Username: user}, Origin: origin}
}

func (f *fixture) progress(step Step, state State) {
	f.mu.Lock()
	f.steps = append(f.steps, string(step)+":"+string(state))
	f.mu.Unlock()
}

func (f *fixture) change(b provider.Backend, current, next string) (Result, *Error) {
	return f.changeAccount("account1", b, current, next)
}

func (f *fixture) changeAccount(id string, b provider.Backend, current, next string) (Result, *Error) {
	res, err := f.eng.Change(context.Background(), Change{AccountID: id, Backend: b, Current: current, New: next}, f.progress)
	return res, typed(err)
}

func (f *fixture) sync(id, password string) (Result, *Error) {
	res, err := f.eng.Sync(context.Background(), Trigger{AccountID: id}, password, f.progress)
	return res, typed(err)
}

func typed(err error) *Error {
	if err == nil {
		return nil
	}
	var fe *Error
	if !errors.As(err, &fe) {
		panic("a flow returned an untyped error: " + err.Error())
	}
	return fe
}

// sandboxLogins counts the sandbox's logins by "protocol user password".
func sandboxLogins(sb *sandbox.Sandbox) map[string]int {
	n := map[string]int{}
	for _, l := range sb.Logins() {
		n[l.Protocol+" "+l.Username+" "+l.Password]++
	}
	return n
}

func touched(accounts []Touched) string {
	var s []string
	for _, a := range accounts {
		var sides []string
		for _, side := range a.Sides {
			sides = append(sides, string(side))
		}
		s = append(s, a.ID+"["+strings.Join(sides, ",")+"]")
	}
	return strings.Join(s, " ")
}

func states(logins []Written) string {
	var s []string
	for _, l := range logins {
		s = append(s, l.Username+"@"+l.Origin+"="+string(l.State))
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}

func writes(ws []Write) string {
	var s []string
	for _, w := range ws {
		s = append(s, w.Username+"@"+w.Origin)
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}

const aliceLogins = "alice@imap://localhost alice@mailbox://localhost alice@smtp://localhost"

// A change of account1 is one transaction over the whole mailbox: its IMAP
// and SMTP logins and the POP3 account's login, each server logged in to
// once, one store with every login. Bob, on the same SMTP server under his
// own name, is not touched.
func TestChangeOneTransactionAcrossSiblings(t *testing.T) {
	f := newFixture(t)
	res, err := f.change(&fakeBackend{sb: f.sb, apply: true}, oldPassword, newPassword)
	if err != nil || !res.Changed || !res.Stored || res.Updated {
		t.Fatalf("Change() = %+v, %v", res, err)
	}
	if got := touched(res.Accounts); got != "account1[incoming,outgoing] account2[incoming,outgoing]" {
		t.Fatalf("accounts %s", got)
	}
	if got := states(res.Logins); got != "alice@imap://localhost=stored alice@mailbox://localhost=stored alice@smtp://localhost=stored" {
		t.Fatalf("logins %s", got)
	}
	if len(res.Servers) != 3 {
		t.Fatalf("servers %+v; want IMAP, POP3 and SMTP once each", res.Servers)
	}
	for _, s := range res.Servers {
		if s.Result.Outcome != verify.OK || s.Server.Username != "alice" {
			t.Fatalf("server %+v", s)
		}
	}
	want := map[string]int{"imap alice " + newPassword: 1, "pop3 alice " + newPassword: 1, "smtp alice " + newPassword: 1}
	if got := sandboxLogins(f.sb); !reflect.DeepEqual(got, want) {
		t.Fatalf("sandbox logins %v; want %v", got, want)
	}
	stores := f.tb.storeCalls()
	if len(stores) != 1 || writes(stores[0]) != aliceLogins {
		t.Fatalf("store requests %+v; want one with alice's three logins", stores)
	}
	salt := f.tb.salts[0]
	for _, w := range stores[0] {
		if w.Password != newPassword || !w.Expect.Known || !w.Expect.Exists || w.Expect.Fingerprint != sha(salt, oldPassword) {
			t.Fatalf("write %+v; want the new password expecting the old one's fingerprint", w)
		}
	}
	if f.tb.password(smtpOrigin, "bob") != bobPassword || f.tb.password(imapOrigin, "bob") != bobPassword {
		t.Fatal("bob's logins were written")
	}
	for _, s := range []string{"policy:ok", "changing:ok", "checking_incoming:ok", "checking_outgoing:ok", "saving:ok"} {
		if !contains(f.steps, s) {
			t.Fatalf("progress %v lacks %s", f.steps, s)
		}
	}
	if n := strings.Count(strings.Join(f.steps, " "), "checking_incoming:running"); n != 1 {
		t.Fatalf("progress %v: the incoming servers are one step", f.steps)
	}
}

// Each login's expect says what it must hold now: the fingerprint, null
// (Known, not Exists) when no login is saved, absent (not Known) when the
// store was locked. The salt differs per transaction.
func TestStoreExpect(t *testing.T) {
	t.Run("no login saved", func(t *testing.T) {
		f := newFixture(t)
		delete(f.tb.saved, loginKey(popOrigin, "alice"))
		if _, err := f.change(&fakeBackend{sb: f.sb, apply: true}, oldPassword, newPassword); err != nil {
			t.Fatal(err)
		}
		for _, w := range f.tb.storeCalls()[0] {
			missing := w.Origin == popOrigin
			if !w.Expect.Known || w.Expect.Exists == missing || missing != (w.Expect.Fingerprint == "") {
				t.Fatalf("write %+v", w)
			}
		}
		if f.tb.password(popOrigin, "alice") != newPassword {
			t.Fatal("the missing login was not added")
		}
	})
	t.Run("store locked", func(t *testing.T) {
		f := newFixture(t)
		f.tb.locked = true
		if _, err := f.change(&fakeBackend{sb: f.sb, apply: true}, oldPassword, newPassword); err != nil {
			t.Fatal(err)
		}
		for _, w := range f.tb.storeCalls()[0] {
			if w.Expect != (Saved{}) {
				t.Fatalf("write %+v; want no comparison", w)
			}
		}
	})
	t.Run("fresh salt", func(t *testing.T) {
		f := newFixture(t)
		f.sb.SetPassword("alice", newPassword)
		f.sync("account1", newPassword)
		f.sync("account1", newPassword)
		if len(f.tb.salts) != 2 || f.tb.salts[0] == f.tb.salts[1] || len(f.tb.salts[0]) != 32 {
			t.Fatalf("salts %q", f.tb.salts)
		}
		if _, err := hex.DecodeString(f.tb.salts[0]); err != nil {
			t.Fatalf("salt %q is not hex", f.tb.salts[0])
		}
	})
}

// Failures before the provider changed anything: nothing verified, nothing stored.
func TestChangeFailsBeforeChanging(t *testing.T) {
	cases := []struct {
		name    string
		current string
		next    string
		err     error
		code    code.Code
		rule    string
	}{
		{"empty new", oldPassword, "", nil, code.PolicyViolation, "empty"},
		{"same as current", oldPassword, oldPassword, nil, code.PolicyViolation, "same_as_current"},
		{"current missing", "", newPassword, nil, code.PolicyViolation, "current_required"},
		{"CR LF", oldPassword, "a\r\nb", nil, code.PolicyViolation, "control_characters"},
		{"too long", oldPassword, string(make([]byte, MaxPassword+1)), nil, code.PolicyViolation, "too_long"},
		{"wrong current", oldPassword, newPassword, &provider.Error{Kind: provider.WrongCurrent}, code.WrongCurrentPassword, ""},
		{"rejected", oldPassword, newPassword, &provider.Error{Kind: provider.Rejected}, code.BackendRejected, ""},
		{"unreachable", oldPassword, newPassword, &provider.Error{Kind: provider.Unreachable}, code.BackendUnreachable, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			backend := &fakeBackend{sb: f.sb, err: c.err}
			res, err := f.change(backend, c.current, c.next)
			if err == nil || err.Code != c.code || err.Rule != c.rule || err.Changed || res.Changed {
				t.Fatalf("Change() = %+v, %+v; want %s %s", res, err, c.code, c.rule)
			}
			if c.code == code.PolicyViolation && backend.calls != 0 {
				t.Fatal("a policy violation reached the provider")
			}
			if c.code != code.PolicyViolation && touched(err.Accounts) != "account1[incoming,outgoing] account2[incoming,outgoing]" {
				t.Fatalf("a refusal names accounts %s", touched(err.Accounts))
			}
			if len(f.tb.storeCalls()) != 0 || len(f.sb.Logins()) != 0 {
				t.Fatalf("stored %d times, %d logins after a failed change", len(f.tb.storeCalls()), len(f.sb.Logins()))
			}
		})
	}
}

func TestChangeRefusedAccounts(t *testing.T) {
	t.Run("OAuth2 incoming", func(t *testing.T) {
		f := newFixture(t)
		f.tb.accounts[0].Incoming.AuthMethod = endpoint.AuthOAuth2
		backend := &fakeBackend{sb: f.sb}
		if _, err := f.change(backend, oldPassword, newPassword); err == nil || err.Code != code.NotPasswordAccount || backend.calls != 0 {
			t.Fatalf("Change() = %+v with %d provider calls", err, backend.calls)
		}
	})
	t.Run("unknown account", func(t *testing.T) {
		f := newFixture(t)
		backend := &fakeBackend{sb: f.sb}
		if _, err := f.changeAccount("account9", backend, oldPassword, newPassword); err == nil || err.Code != code.UnknownAccount || backend.calls != 0 {
			t.Fatalf("Change() = %+v with %d provider calls", err, backend.calls)
		}
	})
	t.Run("listing fails", func(t *testing.T) {
		f := newFixture(t)
		f.tb.listErr = errors.New("the extension is gone")
		backend := &fakeBackend{sb: f.sb}
		if _, err := f.change(backend, oldPassword, newPassword); err == nil || err.Code != code.InternalError || backend.calls != 0 {
			t.Fatalf("Change() = %+v with %d provider calls", err, backend.calls)
		}
	})
	// A server that signs in without a password is neither checked nor
	// written: only the password side of the account is.
	t.Run("OAuth2 outgoing", func(t *testing.T) {
		f := newFixture(t)
		f.tb.accounts = f.tb.accounts[:1]
		f.tb.accounts[0].Outgoing.AuthMethod = endpoint.AuthOAuth2
		res, err := f.change(&fakeBackend{sb: f.sb, apply: true}, oldPassword, newPassword)
		if err != nil || touched(res.Accounts) != "account1[incoming]" || states(res.Logins) != "alice@imap://localhost=stored" {
			t.Fatalf("Change() = %+v, %v", res, err)
		}
		if got := sandboxLogins(f.sb); !reflect.DeepEqual(got, map[string]int{"imap alice " + newPassword: 1}) {
			t.Fatalf("sandbox logins %v", got)
		}
	})
}

// A server the extension listed in a form credsync cannot use fails every
// transaction its login belongs to, before anything is sent anywhere; an
// unrelated account's transaction goes on.
func TestUnusableServerFailsItsTransaction(t *testing.T) {
	f := newFixture(t)
	f.tb.accounts[1].Incoming.Problem = `member "port" must be an integer from 1 to 65535`
	backend := &fakeBackend{sb: f.sb, apply: true}
	_, err := f.change(backend, oldPassword, newPassword)
	if err == nil || err.Code != code.InvalidRequest || err.Changed || backend.calls != 0 || !strings.Contains(err.Message, "Alice POP3") {
		t.Fatalf("Change() = %+v with %d provider calls", err, backend.calls)
	}
	if len(f.sb.Logins()) != 0 || len(f.tb.storeCalls()) != 0 {
		t.Fatal("a failed plan reached a server or the store")
	}
	f.sb.SetPassword("bob", "bobs-New-pw1")
	if res, err := f.sync("account3", "bobs-New-pw1"); err != nil || !res.Stored {
		t.Fatalf("Sync(bob) = %+v, %v", res, err)
	}
}

// The provider's answer is lost: one login per server with the new
// password decides.
func TestChangeOutcomeUnknown(t *testing.T) {
	lost := &provider.Error{Kind: provider.OutcomeUnknown, Detail: "connection reset"}
	t.Run("applied", func(t *testing.T) {
		f := newFixture(t)
		res, err := f.change(&fakeBackend{sb: f.sb, apply: true, err: lost}, oldPassword, newPassword)
		if err != nil || !res.Stored || !res.Changed || len(f.tb.storeCalls()) != 1 || writes(f.tb.storeCalls()[0]) != aliceLogins {
			t.Fatalf("Change() = %+v, %+v; want stored", res, err)
		}
		if n := len(f.sb.Logins()); n != 3 {
			t.Fatalf("%d logins; want exactly one per server", n)
		}
	})
	t.Run("one server accepts", func(t *testing.T) {
		f := newFixture(t)
		f.tb.accounts = f.tb.accounts[:1]
		f.tb.accounts[0].Outgoing = srv(t, endpoint.SMTP, deadAddr(t), "alice")
		f.tb.accounts[0].Outgoing.Origin = "smtp://elsewhere"
		f.tb.accounts[0].Outgoing.Host = "127.0.0.1"
		res, err := f.change(&fakeBackend{sb: f.sb, apply: true, err: lost}, oldPassword, newPassword)
		if err == nil || err.Code != code.VerificationFailed || !err.Changed || len(f.tb.storeCalls()) != 0 || res.Stored {
			t.Fatalf("Change() = %+v, %+v; want verification_failed, changed", res, err)
		}
		if n := len(f.sb.Logins()); n != 1 {
			t.Fatalf("%d logins; want one, never a retry", n)
		}
	})
	t.Run("not applied", func(t *testing.T) {
		f := newFixture(t)
		_, err := f.change(&fakeBackend{sb: f.sb, apply: false, err: lost}, oldPassword, newPassword)
		// A refusal after a lost answer proves nothing: the provider may
		// apply the change a moment later (issue 19).
		if err == nil || err.Code != code.OutcomeUnknown || err.Changed || len(f.tb.storeCalls()) != 0 || len(err.Servers) != 3 ||
			!strings.Contains(err.Message, "refuse the new password for now") {
			t.Fatalf("Change() = %+v; want outcome_unknown", err)
		}
		if n := len(f.sb.Logins()); n != 3 {
			t.Fatalf("%d logins; want exactly one per server, never a retry", n)
		}
	})
	t.Run("servers unreachable", func(t *testing.T) {
		f := newFixture(t)
		dead := deadAddr(t)
		f.tb.accounts = f.tb.accounts[:1]
		f.tb.accounts[0].Incoming = srv(t, endpoint.IMAP, dead, "alice")
		f.tb.accounts[0].Outgoing = srv(t, endpoint.SMTP, dead, "alice")
		_, err := f.change(&fakeBackend{sb: f.sb, apply: true, err: lost}, oldPassword, newPassword)
		if err == nil || err.Code != code.OutcomeUnknown || err.Changed || len(f.tb.storeCalls()) != 0 {
			t.Fatalf("Change() = %+v; want outcome_unknown", err)
		}
	})
}

// The provider took the new password but one server refuses it: nothing
// is stored, and the error says which servers said what.
func TestChangeVerificationFailedStoresNothing(t *testing.T) {
	f := newFixture(t)
	f.sb.SetPassword("alice-smtp", oldPassword)
	f.tb.accounts[0].Outgoing = srv(t, endpoint.SMTP, f.sb.SMTPS, "alice-smtp")
	res, err := f.change(&fakeBackend{sb: f.sb, apply: true}, oldPassword, newPassword)
	if err == nil || err.Code != code.VerificationFailed || !err.Changed || res.Stored || len(f.tb.storeCalls()) != 0 {
		t.Fatalf("Change() = %+v, %+v", res, err)
	}
	outcomes := map[string]verify.Outcome{}
	for _, s := range err.Servers {
		outcomes[string(s.Server.Protocol)+" "+s.Server.Username] = s.Result.Outcome
	}
	if outcomes["smtp alice-smtp"] != verify.AuthFailed || outcomes["imap alice"] != verify.OK || outcomes["pop3 alice"] != verify.OK {
		t.Fatalf("servers %v", outcomes)
	}
	if !strings.Contains(states(err.Logins), "unchanged") || strings.Contains(states(err.Logins), "stored") {
		t.Fatalf("logins %s", states(err.Logins))
	}
	if f.tb.password(imapOrigin, "alice") != oldPassword {
		t.Fatal("a login was written")
	}
}

// Store refusals keep their code and each login's state; the error names
// every touched account and says the provider changed.
func TestChangeStoreFailures(t *testing.T) {
	unchangedAll := func(ws []Write) []Written {
		out := make([]Written, len(ws))
		for i, w := range ws {
			out[i] = Written{w.Login, Unchanged}
		}
		return out
	}
	for _, c := range []struct {
		name    string
		onStore func([]Write) ([]Written, error)
		failAt  int
		code    code.Code
		states  string
	}{
		{"write fails, restored", nil, 1, code.StoreFailed, "alice@imap://localhost=restored alice@mailbox://localhost=unchanged alice@smtp://localhost=unchanged"},
		{"cancelled", func(ws []Write) ([]Written, error) {
			return nil, &StoreError{Code: code.StoreCancelled, Message: "primary password", Logins: unchangedAll(ws)}
		}, -1, code.StoreCancelled, "alice@imap://localhost=unchanged alice@mailbox://localhost=unchanged alice@smtp://localhost=unchanged"},
		{"conflict", func(ws []Write) ([]Written, error) {
			return nil, &StoreError{Code: code.StoreConflict, Message: "changed meanwhile", Logins: unchangedAll(ws)}
		}, -1, code.StoreConflict, "alice@imap://localhost=unchanged alice@mailbox://localhost=unchanged alice@smtp://localhost=unchanged"},
		{"no answer", func([]Write) ([]Written, error) { return nil, context.DeadlineExceeded }, -1, code.StoreUnconfirmed,
			"alice@imap://localhost=unknown alice@mailbox://localhost=unknown alice@smtp://localhost=unknown"},
		{"ok without every login", func(ws []Write) ([]Written, error) { return []Written{{ws[0].Login, Stored}}, nil }, -1, code.StoreUnconfirmed,
			"alice@imap://localhost=stored alice@mailbox://localhost=unknown alice@smtp://localhost=unknown"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			f.tb.onStore, f.tb.failAt = c.onStore, c.failAt
			res, err := f.change(&fakeBackend{sb: f.sb, apply: true}, oldPassword, newPassword)
			if err == nil || err.Code != c.code || !err.Changed || res.Stored {
				t.Fatalf("Change() = %+v; want %s with changed", err, c.code)
			}
			if got := states(err.Logins); got != c.states {
				t.Fatalf("logins %s; want %s", got, c.states)
			}
			if got := touched(err.Accounts); got != "account1[incoming,outgoing] account2[incoming,outgoing]" {
				t.Fatalf("accounts %s", got)
			}
			if len(err.Servers) != 3 || err.Message == "" {
				t.Fatalf("error %+v", err)
			}
			if last := f.steps[len(f.steps)-1]; last != "saving:failed" {
				t.Fatalf("last step %q", last)
			}
			if len(f.tb.storeCalls()) != 1 {
				t.Fatalf("%d store requests; want one", len(f.tb.storeCalls()))
			}
		})
	}
}

// Another program rewrites a login between the listing and the store: the
// store's comparison catches it and nothing is written.
func TestStoreConflictEndToEnd(t *testing.T) {
	f := newFixture(t)
	f.tb.beforeStore = func() {
		f.tb.mu.Lock()
		f.tb.saved[loginKey(popOrigin, "alice")] = "typed-by-the-user"
		f.tb.mu.Unlock()
	}
	_, err := f.change(&fakeBackend{sb: f.sb, apply: true}, oldPassword, newPassword)
	if err == nil || err.Code != code.StoreConflict || !err.Changed || !strings.Contains(err.Message, "no login holds the new password") {
		t.Fatalf("Change() = %+v; want store_conflict", err)
	}
	if f.tb.password(imapOrigin, "alice") != oldPassword {
		t.Fatal("a login was written despite the conflict")
	}
}

// A second transaction over any of the same logins is refused while the
// first runs; one over other logins is not held up.
func TestBusyOnOverlappingLogins(t *testing.T) {
	f := newFixture(t)
	slow := &fakeBackend{sb: f.sb, apply: true, started: make(chan struct{}), release: make(chan struct{})}
	done := make(chan *Error, 1)
	go func() {
		_, err := f.change(slow, oldPassword, newPassword)
		done <- err
	}()
	<-slow.started
	// account2 shares alice's logins.
	if _, err := f.sync("account2", oldPassword); err == nil || err.Code != code.Busy {
		t.Fatalf("Sync(account2) = %+v; want busy", err)
	}
	// Bob's logins are others.
	if res, err := f.sync("account3", bobPassword); err != nil || !res.Stored {
		t.Fatalf("Sync(account3) = %+v, %+v; want it to run", res, err)
	}
	close(slow.release)
	if err := <-done; err != nil {
		t.Fatalf("first Change() = %+v", err)
	}
	if res, err := f.sync("account2", newPassword); err != nil || !res.Stored {
		t.Fatalf("the logins stayed locked: %+v, %+v", res, err)
	}
}

// deadAddr is a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestSync(t *testing.T) {
	t.Run("verified then stored", func(t *testing.T) {
		f := newFixture(t)
		f.sb.SetPassword("alice", newPassword) // changed at Ctrl+Alt+Del
		res, err := f.sync("account2", newPassword)
		if err != nil || !res.Stored || res.Changed || len(f.tb.storeCalls()) != 1 || writes(f.tb.storeCalls()[0]) != aliceLogins {
			t.Fatalf("Sync() = %+v, %v", res, err)
		}
		if got := touched(res.Accounts); got != "account1[incoming,outgoing] account2[incoming,outgoing]" {
			t.Fatalf("accounts %s", got)
		}
		if n := len(f.sb.Logins()); n != 3 {
			t.Fatalf("%d logins; want exactly one per server", n)
		}
		if contains(f.steps, "changing:running") {
			t.Fatalf("a sync changed at the provider: %v", f.steps)
		}
	})
	t.Run("refused by a server", func(t *testing.T) {
		f := newFixture(t)
		res, err := f.sync("account1", newPassword)
		if err == nil || err.Code != code.VerificationFailed || err.Changed || res.Stored || len(f.tb.storeCalls()) != 0 {
			t.Fatalf("Sync() = %+v, %v", res, err)
		}
		if n := len(f.sb.Logins()); n != 3 || len(err.Servers) != 3 {
			t.Fatalf("%d logins, %d servers; want exactly one per server", n, len(err.Servers))
		}
	})
	t.Run("expired at the servers", func(t *testing.T) {
		// The password is right but expired (IMAP [EXPIRED], SMTP 4.7.12):
		// password_expired, never a wrong password, nothing stored.
		f := newFixture(t)
		f.sb.SetPassword("alice", newPassword)
		f.sb.SetExpired("alice", true)
		res, err := f.sync("account1", newPassword)
		if err == nil || err.Code != code.PasswordExpired || err.Changed || res.Stored || len(f.tb.storeCalls()) != 0 {
			t.Fatalf("Sync() = %+v, %v", res, err)
		}
		if n := len(f.sb.Logins()); n != 3 || len(err.Servers) != 3 {
			t.Fatalf("%d logins, %d servers; want exactly one per server", n, len(err.Servers))
		}
		for _, s := range err.Servers {
			if s.Result.Outcome != verify.PasswordExpired {
				t.Errorf("server %+v: outcome %s, want password_expired", s.Server, s.Result.Outcome)
			}
		}
	})
	t.Run("empty", func(t *testing.T) {
		f := newFixture(t)
		_, err := f.sync("account1", "")
		if err == nil || err.Code != code.PolicyViolation || len(f.sb.Logins()) != 0 {
			t.Fatalf("Sync(\"\") = %v", err)
		}
	})
	t.Run("unknown account", func(t *testing.T) {
		f := newFixture(t)
		if _, err := f.sync("account9", oldPassword); err == nil || err.Code != code.UnknownAccount || len(f.sb.Logins()) != 0 {
			t.Fatalf("Sync() = %v", err)
		}
	})
	t.Run("without Thunderbird", func(t *testing.T) {
		f := newFixture(t)
		f.eng.Thunderbird = nil
		if _, err := f.sync("account1", oldPassword); err == nil || err.Code != code.StoreFailed || len(f.sb.Logins()) != 0 {
			t.Fatalf("Sync() = %v; want store_failed", err)
		}
	})
}

// The local socket's sync names accounts by incoming user name (exact) and
// host (any case): one transaction over all of them, the accounts signing
// in without a password set aside.
func TestSyncByIncomingLogin(t *testing.T) {
	match := func(f *fixture, user, host string) (Result, *Error) {
		res, err := f.eng.Sync(context.Background(), Trigger{Username: user, Host: host}, newPassword, f.progress)
		return res, typed(err)
	}
	t.Run("matches", func(t *testing.T) {
		f := newFixture(t)
		f.sb.SetPassword("alice", newPassword)
		oauth := Account{ID: "account4", Name: "Alice OAuth", Incoming: srv(t, endpoint.IMAP, f.sb.IMAPS, "alice")}
		oauth.Incoming.AuthMethod = endpoint.AuthOAuth2
		oauth.Incoming.Origin = "oauth://localhost"
		f.tb.accounts = append(f.tb.accounts, oauth)
		res, err := match(f, "alice", "LocalHost")
		if err != nil || !res.Stored || len(f.tb.storeCalls()) != 1 || writes(f.tb.storeCalls()[0]) != aliceLogins {
			t.Fatalf("Sync() = %+v, %v", res, err)
		}
		if got := touched(res.Accounts); got != "account1[incoming,outgoing] account2[incoming,outgoing]" {
			t.Fatalf("accounts %s", got)
		}
		if len(res.Skipped) != 1 || res.Skipped[0].ID != "account4" {
			t.Fatalf("skipped %+v", res.Skipped)
		}
	})
	t.Run("no match", func(t *testing.T) {
		f := newFixture(t)
		for _, m := range [][2]string{{"ALICE", "localhost"}, {"alice", "localhost.example"}, {"alice@localhost", "localhost"}} {
			if _, err := match(f, m[0], m[1]); err == nil || err.Code != code.UnknownAccount {
				t.Fatalf("Sync(%v) = %v", m, err)
			}
		}
		if len(f.sb.Logins()) != 0 || len(f.tb.storeCalls()) != 0 {
			t.Fatal("an unmatched sync reached a server or the store")
		}
	})
	t.Run("only accounts without password", func(t *testing.T) {
		f := newFixture(t)
		f.tb.accounts[2].Incoming.AuthMethod = endpoint.AuthGSSAPI
		res, err := match(f, "bob", "localhost")
		if err == nil || err.Code != code.NotPasswordAccount || len(res.Skipped) != 1 || len(f.sb.Logins()) != 0 {
			t.Fatalf("Sync() = %+v, %v", res, err)
		}
	})
}

// Propagation follows a password Thunderbird saved for one login into the
// logins it belongs to that do not hold it yet: the password is read with
// ReadLogin, the login that holds it is neither checked nor written.
func TestPropagate(t *testing.T) {
	propagate := func(f *fixture, l Login) (Result, *Error) {
		res, err := f.eng.Propagate(context.Background(), l, f.progress)
		return res, typed(err)
	}
	t.Run("writes the others", func(t *testing.T) {
		f := newFixture(t)
		f.sb.SetPassword("alice", newPassword)
		f.tb.saved[loginKey(imapOrigin, "alice")] = newPassword // Thunderbird's own prompt saved it
		res, err := propagate(f, Login{imapOrigin, "alice"})
		if err != nil || !res.Updated || !res.Stored || res.Changed {
			t.Fatalf("Propagate() = %+v, %v", res, err)
		}
		if len(f.tb.reads) != 1 || f.tb.reads[0] != (Login{imapOrigin, "alice"}) {
			t.Fatalf("reads %+v", f.tb.reads)
		}
		stores := f.tb.storeCalls()
		if len(stores) != 1 || writes(stores[0]) != "alice@mailbox://localhost alice@smtp://localhost" {
			t.Fatalf("stores %+v", stores)
		}
		want := map[string]int{"pop3 alice " + newPassword: 1, "smtp alice " + newPassword: 1}
		if got := sandboxLogins(f.sb); !reflect.DeepEqual(got, want) {
			t.Fatalf("sandbox logins %v; want %v (not the IMAP server)", got, want)
		}
		if got := touched(res.Accounts); got != "account1[outgoing] account2[incoming,outgoing]" {
			t.Fatalf("accounts %s", got)
		}
	})
	t.Run("nothing to do", func(t *testing.T) {
		f := newFixture(t)
		res, err := propagate(f, Login{smtpOrigin, "alice"})
		if err != nil || res.Updated || len(f.tb.storeCalls()) != 0 || len(f.sb.Logins()) != 0 {
			t.Fatalf("Propagate() = %+v, %v with %d stores", res, err, len(f.tb.storeCalls()))
		}
	})
	t.Run("not a mail login", func(t *testing.T) {
		f := newFixture(t)
		res, err := propagate(f, Login{"https://example.org", "alice"})
		if err != nil || res.Updated || len(f.tb.reads) != 0 || len(f.tb.storeCalls()) != 0 {
			t.Fatalf("Propagate() = %+v, %v, %d reads", res, err, len(f.tb.reads))
		}
	})
	t.Run("login gone", func(t *testing.T) {
		f := newFixture(t)
		f.tb.readErr = errors.New("no_login")
		res, err := propagate(f, Login{imapOrigin, "alice"})
		if err != nil || res.Updated || len(f.tb.storeCalls()) != 0 || len(f.sb.Logins()) != 0 {
			t.Fatalf("Propagate() = %+v, %v", res, err)
		}
	})
	t.Run("servers refuse", func(t *testing.T) {
		f := newFixture(t)
		f.tb.saved[loginKey(imapOrigin, "alice")] = "a-Typo-pw1"
		res, err := propagate(f, Login{imapOrigin, "alice"})
		if err == nil || err.Code != code.VerificationFailed || res.Updated || len(f.tb.storeCalls()) != 0 {
			t.Fatalf("Propagate() = %+v, %v", res, err)
		}
	})
}

// Previews tell, for every account, whether a change is possible and which
// accounts it would touch, itself first; nothing is logged in to.
func TestPreviews(t *testing.T) {
	f := newFixture(t)
	oauth := Account{ID: "account4", Name: "OAuth", Incoming: srv(t, endpoint.IMAP, f.sb.IMAPS, "carol")}
	oauth.Incoming.AuthMethod = endpoint.AuthOAuth2
	f.tb.accounts = append(f.tb.accounts, oauth)
	previews, err := f.eng.Previews(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range previews {
		got = append(got, fmt.Sprintf("%s %v %s", p.ID, p.PasswordBased, touched(p.Touches)))
	}
	want := []string{
		"account1 true account1[incoming,outgoing] account2[incoming,outgoing]",
		"account2 true account2[incoming,outgoing] account1[incoming,outgoing]",
		"account3 true account3[incoming,outgoing]",
		"account4 false ",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("previews\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if previews[3].Touches == nil || len(f.sb.Logins()) != 0 || len(f.tb.storeCalls()) != 0 {
		t.Fatal("previews logged in, stored, or gave a nil list")
	}
}

// Without Thunderbird (the command line) a change ends verified, not stored.
func TestChangeWithoutThunderbird(t *testing.T) {
	f := newFixture(t)
	f.eng.Thunderbird = nil
	acct := f.tb.accounts[0]
	run := func() (Result, *Error) {
		res, err := f.eng.Change(context.Background(), Change{Account: &acct, Backend: &fakeBackend{sb: f.sb, apply: true}, Current: oldPassword, New: newPassword}, f.progress)
		return res, typed(err)
	}
	res, err := run()
	if err != nil || !res.Changed || res.Stored {
		t.Fatalf("Change() = %+v, %+v; want changed, not stored", res, err)
	}
	for _, s := range f.steps {
		if strings.HasPrefix(s, "saving") {
			t.Fatalf("steps %v include saving", f.steps)
		}
	}
	if n := len(f.sb.Logins()); n != 2 {
		t.Fatalf("%d logins; want one per server", n)
	}
	// A refused verification is still an error.
	f.sb.SetPassword("alice", oldPassword)
	acct.Outgoing = srv(t, endpoint.SMTP, f.sb.SMTPS, "bob")
	if _, err := run(); err == nil || err.Code != code.VerificationFailed || !err.Changed {
		t.Fatalf("Change() = %+v; want verification_failed", err)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
