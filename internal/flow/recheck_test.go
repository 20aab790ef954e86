package flow

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/audit"
	"github.com/credsync/credsync/internal/code"
	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/provider"
)

// fakeClock is time for the rechecks without sleeping: After hands the
// wait to the test (waits), which moves the clock to its deadline and
// fires it, or leaves it pending.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits chan fakeTimer
}

type fakeTimer struct {
	at time.Time
	c  chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), waits: make(chan fakeTimer, 1)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.waits <- fakeTimer{c.Now().Add(d), ch}
	return ch
}

// wait is the flow's next wait, not fired yet.
func (c *fakeClock) wait(t *testing.T) fakeTimer {
	t.Helper()
	select {
	case w := <-c.waits:
		return w
	case <-time.After(10 * time.Second):
		t.Fatal("the flow did not wait")
		return fakeTimer{}
	}
}

// fire moves the clock to the timer's deadline and fires it.
func (c *fakeClock) fire(w fakeTimer) {
	c.mu.Lock()
	c.now = w.at
	c.mu.Unlock()
	w.c <- w.at
}

// pausingTB is the fake extension with the pause and resume of
// Thunderbird's own checks.
type pausingTB struct {
	*fakeTB
	mu     sync.Mutex
	events []string
}

func (p *pausingTB) PauseChecks(_ context.Context, ids []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, "pause "+strings.Join(ids, ","))
	return nil
}

func (p *pausingTB) ResumeChecks(_ context.Context, ids []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, "resume "+strings.Join(ids, ","))
	return nil
}

func (p *pausingTB) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.events...)
}

// lagFixture is account1 alone (IMAP and SMTP, alice): the first
// verification of a lagging change costs two failed logins.
type lagFixture struct {
	*fixture
	clock  *fakeClock
	ptb    *pausingTB
	waits  chan Wait
	cancel chan struct{}
	trail  []audit.Record
}

func newLagFixture(t *testing.T) *lagFixture {
	f := &lagFixture{fixture: newFixture(t), clock: newFakeClock(), waits: make(chan Wait, 16), cancel: make(chan struct{})}
	f.tb.accounts = f.tb.accounts[:1]
	f.ptb = &pausingTB{fakeTB: f.tb}
	f.eng.Thunderbird = f.ptb
	f.eng.Recheck = &Recheck{Clock: f.clock}
	f.eng.Audit = func(_ context.Context, r audit.Record) error {
		f.trail = append(f.trail, r)
		return nil
	}
	return f
}

type outcome struct {
	res Result
	err *Error
}

// start runs the change in the background: the test drives its clock.
func (f *lagFixture) start(b provider.Backend) chan outcome {
	done := make(chan outcome, 1)
	go func() {
		res, err := f.eng.Change(context.Background(), Change{AccountID: "account1", Backend: b, Current: oldPassword, New: newPassword,
			Waiting: func(w Wait) { f.waits <- w }, Cancel: f.cancel}, f.progress)
		done <- outcome{res, typed(err)}
	}()
	return done
}

// nextWait is the flow's next wait: the Wait it announced and its timer.
func (f *lagFixture) nextWait(t *testing.T, offset time.Duration, failed int) fakeTimer {
	t.Helper()
	w := <-f.waits
	timer := f.clock.wait(t)
	start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	if !w.NextCheck.Equal(start.Add(offset)) || !timer.at.Equal(w.NextCheck) || w.FailedLogins != failed || w.Budget != LockoutBudget {
		t.Fatalf("wait %+v with its timer at %s; want the check at +%s, %d failed logins of %d", w, timer.at, offset, failed, LockoutBudget)
	}
	return timer
}

func (f *lagFixture) failedLogins() (n int, protocols []string) {
	for _, l := range f.sb.Logins() {
		if !l.OK {
			n++
		}
		protocols = append(protocols, l.Protocol)
	}
	return n, protocols
}

func finished(t *testing.T, done chan outcome) outcome {
	t.Helper()
	select {
	case o := <-done:
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("the change did not end")
		return outcome{}
	}
}

// The budget decides which of the schedule's slots are used: the last
// check it allows waits for the last slot.
func TestRecheckSlots(t *testing.T) {
	for _, c := range []struct {
		failed, cost int
		want         []time.Duration
	}{
		{1, 1, []time.Duration{1 * time.Minute, 3 * time.Minute, 15 * time.Minute}},
		{2, 1, []time.Duration{1 * time.Minute, 15 * time.Minute}},
		{3, 1, []time.Duration{15 * time.Minute}},
		{2, 2, []time.Duration{15 * time.Minute}},
		{3, 2, nil},
		{4, 1, nil},
	} {
		var got []time.Duration
		r, failed := Recheck{}, c.failed
		for slot := 0; ; {
			s := r.next(slot, failed, c.cost)
			if s < 0 {
				break
			}
			got = append(got, RecheckSchedule[s])
			failed += c.cost // every check refused
			slot = s + 1
		}
		if !reflect.DeepEqual(got, c.want) || failed > LockoutBudget {
			t.Errorf("%d failed, %d servers a check: checks at %v (%d failed); want %v", c.failed, c.cost, got, failed, c.want)
		}
	}
	if LockoutBudget > 4 {
		t.Fatal("the lockout budget must stay at 4 or below (Active Directory often locks at 5)")
	}
}

// The provider confirmed the change; the servers take the new password
// only later. credsync pauses Thunderbird's checks, logs in to the
// incoming server alone at +1 min (refused), waits for the last slot the
// budget allows (+15 min), and when the incoming server accepts it asks
// the outgoing one at once and stores every login in one store. Failed
// logins: 2 (first verification) + 1 = 3, within the budget.
func TestRecheckStoresWhenTheServersAccept(t *testing.T) {
	f := newLagFixture(t)
	done := f.start(&fakeBackend{sb: f.sb}) // confirmed, not applied yet
	f.clock.fire(f.nextWait(t, time.Minute, 2))
	timer := f.nextWait(t, 15*time.Minute, 3)
	if failed, protocols := f.failedLogins(); failed != 3 || strings.Join(protocols, " ") != "imap smtp imap" && strings.Join(protocols, " ") != "smtp imap imap" {
		t.Fatalf("%d failed logins %v; want the first verification and one incoming recheck", failed, protocols)
	}
	if got := f.ptb.seen(); !reflect.DeepEqual(got, []string{"pause account1"}) {
		t.Fatalf("Thunderbird saw %v; want its checks paused", got)
	}
	f.sb.SetPassword("alice", newPassword) // the servers catch up
	f.clock.fire(timer)
	o := finished(t, done)
	if o.err != nil || !o.res.Stored || !o.res.Changed || len(f.tb.storeCalls()) != 1 || o.res.Waited == nil ||
		*o.res.Waited != (Waited{Checks: 2, FailedLogins: 3, Budget: LockoutBudget, End: WaitAccepted}) {
		t.Fatalf("Change() = %+v, %v; want stored after two checks", o.res, o.err)
	}
	if w := writes(f.tb.storeCalls()[0]); w != "alice@imap://localhost alice@smtp://localhost" {
		t.Fatalf("stored %s", w)
	}
	if got := f.ptb.seen(); !reflect.DeepEqual(got, []string{"pause account1", "resume account1"}) {
		t.Fatalf("Thunderbird saw %v; want pause, then resume", got)
	}
	if failed, _ := f.failedLogins(); failed != 3 {
		t.Fatalf("%d failed logins", failed)
	}
	if !contains(f.steps, "waiting:running") || !contains(f.steps, "waiting:ok") || !contains(f.steps, "saving:ok") {
		t.Fatalf("steps %v", f.steps)
	}
	if len(f.trail) != 1 || f.trail[0].Outcome != audit.OutcomeStored || !f.trail[0].Changed {
		t.Fatalf("audit %+v", f.trail)
	}
}

// The servers never accept: the checks stop at the budget, nothing is
// stored, and the sandbox saw at most LockoutBudget failed logins.
func TestRecheckStopsAtTheBudget(t *testing.T) {
	f := newLagFixture(t)
	done := f.start(&fakeBackend{sb: f.sb})
	f.clock.fire(f.nextWait(t, time.Minute, 2))
	f.clock.fire(f.nextWait(t, 15*time.Minute, 3))
	o := finished(t, done)
	if o.err == nil || o.err.Code != code.VerificationFailed || !o.err.Changed || len(f.tb.storeCalls()) != 0 ||
		o.err.Waited == nil || o.err.Waited.FailedLogins != LockoutBudget || o.err.Waited.Checks != 2 ||
		!strings.Contains(o.err.Message, "I already changed it") {
		t.Fatalf("Change() = %+v; want verification_failed after the budget", o.err)
	}
	if failed, _ := f.failedLogins(); failed > LockoutBudget {
		t.Fatalf("%d failed logins; the budget is %d", failed, LockoutBudget)
	}
	if got := f.ptb.seen(); !reflect.DeepEqual(got, []string{"pause account1", "resume account1"}) {
		t.Fatalf("Thunderbird saw %v", got)
	}
	if len(f.trail) != 1 || f.trail[0].Outcome != "verification_failed" || !contains(f.steps, "waiting:failed") {
		t.Fatalf("audit %+v, steps %v", f.trail, f.steps)
	}
}

// Cancel ends the wait at once: no further login, nothing stored, the
// checks resumed.
func TestRecheckCancelled(t *testing.T) {
	f := newLagFixture(t)
	done := f.start(&fakeBackend{sb: f.sb})
	f.nextWait(t, time.Minute, 2)
	close(f.cancel)
	o := finished(t, done)
	if o.err == nil || o.err.Code != code.VerificationFailed || o.err.Waited == nil || o.err.Waited.End != WaitCancelled ||
		o.err.Waited.Checks != 0 || len(f.tb.storeCalls()) != 0 {
		t.Fatalf("Change() = %+v", o.err)
	}
	if n := len(f.sb.Logins()); n != 2 {
		t.Fatalf("%d logins; want the first verification's two", n)
	}
	if got := f.ptb.seen(); !reflect.DeepEqual(got, []string{"pause account1", "resume account1"}) {
		t.Fatalf("Thunderbird saw %v", got)
	}
}

// The incoming server accepted at once; the outgoing one (its own user
// name) lags: only the outgoing one is asked again, on the schedule.
func TestRecheckOutgoingOnly(t *testing.T) {
	f := newLagFixture(t)
	f.sb.SetPassword("alice-smtp", oldPassword)
	f.tb.accounts[0].Outgoing = srv(t, endpoint.SMTP, f.sb.SMTPS, "alice-smtp")
	f.tb.saved[loginKey(smtpOrigin, "alice-smtp")] = oldPassword
	done := f.start(&fakeBackend{sb: f.sb, apply: true}) // alice now, alice-smtp later
	f.clock.fire(f.nextWait(t, time.Minute, 1))
	timer := f.nextWait(t, 3*time.Minute, 2)
	f.sb.SetPassword("alice-smtp", newPassword)
	f.clock.fire(timer)
	o := finished(t, done)
	if o.err != nil || !o.res.Stored || len(f.tb.storeCalls()) != 1 {
		t.Fatalf("Change() = %+v, %v", o.res, o.err)
	}
	if n := sandboxLogins(f.sb)["imap alice "+newPassword]; n != 1 {
		t.Fatalf("%d IMAP logins; the incoming server accepted at once and is not asked again", n)
	}
}

// The provider's answer was lost and every server refused: the wait
// decides. The servers accept at the first check: changed and stored.
func TestRecheckAfterLostAnswer(t *testing.T) {
	f := newLagFixture(t)
	lost := &provider.Error{Kind: provider.OutcomeUnknown, Detail: "connection reset"}
	done := f.start(&fakeBackend{sb: f.sb, err: lost})
	timer := f.nextWait(t, time.Minute, 2)
	f.sb.SetPassword("alice", newPassword)
	f.clock.fire(timer)
	o := finished(t, done)
	if o.err != nil || !o.res.Stored || !o.res.Changed || len(f.tb.storeCalls()) != 1 {
		t.Fatalf("Change() = %+v, %v; want stored", o.res, o.err)
	}
	if !contains(f.steps, "changing:ok") {
		t.Fatalf("steps %v", f.steps)
	}
}

// The lost answer was never applied: the wait ends at the budget with
// outcome_unknown, never "not changed".
func TestRecheckAfterLostAnswerNeverApplied(t *testing.T) {
	f := newLagFixture(t)
	done := f.start(&fakeBackend{sb: f.sb, err: &provider.Error{Kind: provider.OutcomeUnknown}})
	f.clock.fire(f.nextWait(t, time.Minute, 2))
	f.clock.fire(f.nextWait(t, 15*time.Minute, 3))
	o := finished(t, done)
	if o.err == nil || o.err.Code != code.OutcomeUnknown || o.err.Changed || len(f.tb.storeCalls()) != 0 {
		t.Fatalf("Change() = %+v; want outcome_unknown", o.err)
	}
	if failed, _ := f.failedLogins(); failed != LockoutBudget {
		t.Fatalf("%d failed logins", failed)
	}
}

// The mailbox set up twice (IMAP and POP3, one SMTP): its first
// verification costs three failed logins, and a recheck of both incoming
// servers could cost two more: no wait, the change ends as before.
func TestRecheckNoRoomInTheBudget(t *testing.T) {
	f := newLagFixture(t)
	f.tb.accounts = f.fixture.tb.accounts
	f.tb.accounts = append(f.tb.accounts, Account{ID: "account2", Name: "Alice POP3", Incoming: srv(t, endpoint.POP3, f.sb.POP3S, "alice"),
		Outgoing: srv(t, endpoint.SMTP, f.sb.SMTPS, "alice")})
	done := f.start(&fakeBackend{sb: f.sb})
	o := finished(t, done)
	if o.err == nil || o.err.Code != code.VerificationFailed || o.err.Waited != nil || len(f.ptb.seen()) != 0 {
		t.Fatalf("Change() = %+v", o.err)
	}
	if failed, _ := f.failedLogins(); failed != 3 {
		t.Fatalf("%d failed logins", failed)
	}
}
