package flow

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/provider"
	"github.com/credsync/credsync/internal/testkit/sandbox"
	"github.com/credsync/credsync/internal/verify"
)

const (
	oldPassword = "old-Passw0rd!"
	newPassword = "new-Passw0rd!"
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

// fakeStore records what Thunderbird would have stored.
type fakeStore struct {
	err      error
	accounts []string
	sides    [][]Side
}

func (s *fakeStore) Store(_ context.Context, accountID string, sides []Side, password string) error {
	if s.err != nil {
		return s.err
	}
	s.accounts = append(s.accounts, accountID)
	s.sides = append(s.sides, sides)
	return nil
}

type fixture struct {
	sb    *sandbox.Sandbox
	acct  Account
	store *fakeStore
	eng   *Engine
	steps []string
	mu    sync.Mutex
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	sb, err := sandbox.Start(sandbox.Options{Users: map[string]string{"alice": oldPassword}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	f := &fixture{sb: sb, store: &fakeStore{}}
	f.acct = Account{ID: "account1", Incoming: ep(t, endpoint.IMAP, sb.IMAPS), Outgoing: ep(t, endpoint.SMTP, sb.SMTPS)}
	f.eng = &Engine{Trust: verify.Trust{Roots: sb.CAPool}, Store: f.store, VerifyTimeout: 5 * time.Second}
	return f
}

func ep(t *testing.T, p endpoint.Protocol, addr string) *endpoint.Endpoint {
	host, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	return &endpoint.Endpoint{Protocol: p, Host: host, Port: n, Security: endpoint.TLS, AuthMethod: endpoint.AuthPasswordCleartext, Username: "alice"}
}

func (f *fixture) progress(step Step, state State) {
	f.mu.Lock()
	f.steps = append(f.steps, string(step)+":"+string(state))
	f.mu.Unlock()
}

func (f *fixture) change(b provider.Backend, current, next string) (Result, *Error) {
	res, err := f.eng.Change(context.Background(), Change{Account: f.acct, Backend: b, Current: current, New: next}, f.progress)
	if err == nil {
		return res, nil
	}
	var fe *Error
	if !errors.As(err, &fe) {
		panic("Change returned an untyped error: " + err.Error())
	}
	return res, fe
}

func TestChangeSuccess(t *testing.T) {
	f := newFixture(t)
	res, err := f.change(&fakeBackend{sb: f.sb, apply: true}, oldPassword, newPassword)
	if err != nil || !res.Changed || !res.Stored {
		t.Fatalf("Change() = %+v, %v", res, err)
	}
	if len(f.store.accounts) != 1 || f.store.accounts[0] != "account1" || len(f.store.sides[0]) != 2 {
		t.Fatalf("stored %v %v", f.store.accounts, f.store.sides)
	}
}

// Failures before the provider changed anything: nothing verified, nothing stored.
func TestChangeFailsBeforeChanging(t *testing.T) {
	cases := []struct {
		name    string
		current string
		next    string
		err     error
		code    Code
		rule    string
	}{
		{"empty new", oldPassword, "", nil, PolicyViolation, "empty"},
		{"same as current", oldPassword, oldPassword, nil, PolicyViolation, "same_as_current"},
		{"current missing", "", newPassword, nil, PolicyViolation, "current_required"},
		{"CR LF", oldPassword, "a\r\nb", nil, PolicyViolation, "control_characters"},
		{"too long", oldPassword, string(make([]byte, MaxPassword+1)), nil, PolicyViolation, "too_long"},
		{"wrong current", oldPassword, newPassword, &provider.Error{Kind: provider.WrongCurrent}, WrongCurrentPassword, ""},
		{"rejected", oldPassword, newPassword, &provider.Error{Kind: provider.Rejected}, BackendRejected, ""},
		{"unreachable", oldPassword, newPassword, &provider.Error{Kind: provider.Unreachable}, BackendUnreachable, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			backend := &fakeBackend{sb: f.sb, err: c.err}
			res, err := f.change(backend, c.current, c.next)
			if err == nil || err.Code != c.code || err.Rule != c.rule || err.Changed || res.Changed {
				t.Fatalf("Change() = %+v, %+v; want %s %s", res, err, c.code, c.rule)
			}
			if c.code == PolicyViolation && backend.calls != 0 {
				t.Fatal("a policy violation reached the provider")
			}
			if len(f.store.accounts) != 0 || len(f.sb.Logins()) != 0 {
				t.Fatalf("stored %v, %d logins after a failed change", f.store.accounts, len(f.sb.Logins()))
			}
		})
	}
}

func TestChangeOAuthAccountRefused(t *testing.T) {
	f := newFixture(t)
	f.acct.Outgoing.AuthMethod = endpoint.AuthOAuth2
	backend := &fakeBackend{sb: f.sb}
	if _, err := f.change(backend, oldPassword, newPassword); err == nil || err.Code != NotPasswordAccount || backend.calls != 0 {
		t.Fatalf("Change() = %+v with %d provider calls", err, backend.calls)
	}
}

// The provider's answer is lost: one login with the new password decides.
func TestChangeOutcomeUnknown(t *testing.T) {
	lost := &provider.Error{Kind: provider.OutcomeUnknown, Detail: "connection reset"}
	t.Run("applied", func(t *testing.T) {
		f := newFixture(t)
		res, err := f.change(&fakeBackend{sb: f.sb, apply: true, err: lost}, oldPassword, newPassword)
		if err != nil || !res.Stored || len(f.store.accounts) != 1 {
			t.Fatalf("Change() = %+v, %+v; want stored", res, err)
		}
		if n := len(f.sb.Logins()); n != 2 {
			t.Fatalf("%d logins; want exactly one per server", n)
		}
	})
	t.Run("not applied", func(t *testing.T) {
		f := newFixture(t)
		_, err := f.change(&fakeBackend{sb: f.sb, apply: false, err: lost}, oldPassword, newPassword)
		if err == nil || err.Code != NotChanged || len(f.store.accounts) != 0 {
			t.Fatalf("Change() = %+v; want not_changed", err)
		}
		if n := len(f.sb.Logins()); n != 2 {
			t.Fatalf("%d logins; want exactly one per server, never a retry", n)
		}
	})
	t.Run("servers unreachable", func(t *testing.T) {
		f := newFixture(t)
		dead := deadAddr(t)
		f.acct.Incoming = ep(t, endpoint.IMAP, dead)
		f.acct.Outgoing = ep(t, endpoint.SMTP, dead)
		_, err := f.change(&fakeBackend{sb: f.sb, apply: true, err: lost}, oldPassword, newPassword)
		if err == nil || err.Code != OutcomeUnknown || len(f.store.accounts) != 0 {
			t.Fatalf("Change() = %+v; want outcome_unknown", err)
		}
	})
}

func TestChangeVerificationFailedStoresNothing(t *testing.T) {
	f := newFixture(t)
	f.acct.Outgoing.Username = "bob" // the outgoing server does not know this user
	res, err := f.change(&fakeBackend{sb: f.sb, apply: true}, oldPassword, newPassword)
	if err == nil || err.Code != VerificationFailed || !err.Changed || res.Stored || len(f.store.accounts) != 0 {
		t.Fatalf("Change() = %+v, %+v", res, err)
	}
	if err.Incoming.Outcome != verify.OK || err.Outgoing.Outcome != verify.AuthFailed {
		t.Fatalf("results %+v %+v", err.Incoming, err.Outgoing)
	}
}

func TestChangeStoreFailures(t *testing.T) {
	for _, c := range []struct {
		err  error
		code Code
	}{
		{&StoreError{Code: StoreFailed, Message: "disk"}, StoreFailed},
		{&StoreError{Code: StoreCancelled, Message: "primary password"}, StoreCancelled},
		{context.DeadlineExceeded, StoreUnconfirmed},
	} {
		t.Run(string(c.code), func(t *testing.T) {
			f := newFixture(t)
			f.store.err = c.err
			_, err := f.change(&fakeBackend{sb: f.sb, apply: true}, oldPassword, newPassword)
			if err == nil || err.Code != c.code || !err.Changed {
				t.Fatalf("Change() = %+v; want %s with changed", err, c.code)
			}
			if last := f.steps[len(f.steps)-1]; last != "saving:failed" {
				t.Fatalf("last step %q", last)
			}
		})
	}
}

// A second flow for the same account is refused while the first runs;
// another account is not held up.
func TestOneFlowPerAccount(t *testing.T) {
	f := newFixture(t)
	slow := &fakeBackend{sb: f.sb, apply: true, started: make(chan struct{}), release: make(chan struct{})}
	done := make(chan *Error, 1)
	go func() {
		_, err := f.change(slow, oldPassword, newPassword)
		done <- err
	}()
	<-slow.started
	if _, err := f.change(&fakeBackend{sb: f.sb}, oldPassword, newPassword); err == nil || err.Code != Busy {
		t.Fatalf("second Change() = %+v; want busy", err)
	}
	other := f.acct
	other.ID = "account2"
	if _, err := f.eng.Change(context.Background(), Change{Account: other, Backend: &fakeBackend{sb: f.sb, err: &provider.Error{Kind: provider.Rejected}}, Current: oldPassword, New: newPassword}, func(Step, State) {}); err == nil || err.(*Error).Code == Busy {
		t.Fatalf("another account was held up: %v", err)
	}
	close(slow.release)
	if err := <-done; err != nil {
		t.Fatalf("first Change() = %+v", err)
	}
	if _, err := f.change(&fakeBackend{sb: f.sb, err: &provider.Error{Kind: provider.Rejected}}, newPassword, "third-Passw0rd!"); err == nil || err.Code == Busy {
		t.Fatalf("the account stayed locked: %+v", err)
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
		res, err := f.eng.Sync(context.Background(), f.acct, newPassword, f.progress)
		if err != nil || !res.Stored || res.Changed || len(f.store.accounts) != 1 {
			t.Fatalf("Sync() = %+v, %v", res, err)
		}
	})
	t.Run("refused by a server", func(t *testing.T) {
		f := newFixture(t)
		res, err := f.eng.Sync(context.Background(), f.acct, newPassword, f.progress)
		var fe *Error
		if !errors.As(err, &fe) || fe.Code != VerificationFailed || fe.Changed || res.Stored || len(f.store.accounts) != 0 {
			t.Fatalf("Sync() = %+v, %v", res, err)
		}
		if n := len(f.sb.Logins()); n != 2 {
			t.Fatalf("%d logins; want exactly one per server", n)
		}
	})
	t.Run("empty", func(t *testing.T) {
		f := newFixture(t)
		_, err := f.eng.Sync(context.Background(), f.acct, "", f.progress)
		var fe *Error
		if !errors.As(err, &fe) || fe.Code != PolicyViolation || len(f.sb.Logins()) != 0 {
			t.Fatalf("Sync(\"\") = %v", err)
		}
	})
}
