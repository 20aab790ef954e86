// Servers that lag behind the provider (PROTOCOL.md, "Waiting for the
// servers"; issue 19, item 2). The provider confirmed the change, or its
// answer was lost, but a server refuses the new password: a directory not
// replicated yet, a queue behind the panel, a server's authentication
// cache. Instead of ending the story after one login, the change keeps the
// new password in this process's memory only (never on disk, never in the
// audit record), pauses Thunderbird's own checks of the accounts it
// writes, and logs in again on a spaced schedule, within a budget of
// failed logins; the moment the servers accept the password it is stored
// as a normal change stores it: one all-or-none store of every login of
// the plan.

package flow

import (
	"context"
	"fmt"
	"time"

	"github.com/credsync/credsync/internal/code"
	"github.com/credsync/credsync/internal/verify"
)

// LockoutBudget is the number of failed logins one change may cause, the
// first verification included. Mail servers backed by one directory count
// every failed login against the same account, and Active Directory's
// common lockout threshold is 5: credsync stays at 4 or below, leaving the
// user one mistake of their own. Rechecks stop before they could exceed
// it.
const LockoutBudget = 4

// RecheckSchedule is when the rechecks fall, measured from the start of the
// wait (right after the first verification): spaced so that a short lag
// is caught early and a long one still within about 15 minutes. The
// budget decides how many of these slots are used (Recheck.next).
var RecheckSchedule = []time.Duration{1 * time.Minute, 3 * time.Minute, 6 * time.Minute, 10 * time.Minute, 15 * time.Minute}

// StepWaiting is the wait for lagging servers: running while credsync
// waits, ok once the servers accepted the password, failed when the wait
// ended without it.
const StepWaiting Step = "waiting"

// Clock is time as the rechecks see it; tests give a fake one.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Recheck configures the wait for lagging servers. The zero value uses
// RecheckSchedule, LockoutBudget and the real clock.
type Recheck struct {
	// Off: a change ends after its first verification, as the command
	// line's does.
	Off bool
	// Schedule overrides RecheckSchedule (tests, the end-to-end suite's
	// compressed schedule).
	Schedule []time.Duration
	// Budget overrides LockoutBudget when positive.
	Budget int
	Clock  Clock
}

func (r Recheck) schedule() []time.Duration {
	if len(r.Schedule) > 0 {
		return r.Schedule
	}
	return RecheckSchedule
}

func (r Recheck) budget() int {
	if r.Budget > 0 {
		return r.Budget
	}
	return LockoutBudget
}

func (r Recheck) clock() Clock {
	if r.Clock != nil {
		return r.Clock
	}
	return realClock{}
}

// next is the slot of the next recheck: from is the first slot not used
// yet, failed the failed logins so far, cost the servers the recheck logs
// in to (each may fail). -1: none, the schedule is over or the budget
// would be exceeded. The last recheck the budget allows waits for the
// schedule's last slot, so that a long lag is still caught.
func (r Recheck) next(from, failed, cost int) int {
	last := len(r.schedule()) - 1
	left := (r.budget() - failed) / max(cost, 1)
	switch {
	case from > last || left <= 0:
		return -1
	case left == 1:
		return last
	}
	return from
}

// Wait is sent before each recheck, for the popup: "waiting for the mail
// servers to accept the new password; next check at …".
type Wait struct {
	NextCheck time.Time
	// Checks made so far (the moments of the schedule used; the outgoing
	// servers asked right after the incoming ones accepted are part of
	// that check), and the failed logins the change caused so far
	// (the first verification included), of Budget.
	Checks       int
	FailedLogins int
	Budget       int
}

// WaitEnd says how a wait ended.
type WaitEnd string

const (
	// WaitAccepted: the servers accepted the password; it was stored (or
	// the store's own outcome says otherwise).
	WaitAccepted WaitEnd = "accepted"
	// WaitScheduleOver: the last check of the schedule was refused.
	WaitScheduleOver WaitEnd = "schedule_over"
	// WaitBudgetSpent: one more check could exceed LockoutBudget.
	WaitBudgetSpent WaitEnd = "budget_spent"
	// WaitCancelled: the user cancelled the wait.
	WaitCancelled WaitEnd = "cancelled"
	// WaitServerFailed: a server failed in a way waiting does not cure
	// (TLS, protocol).
	WaitServerFailed WaitEnd = "server_failed"
	// WaitClosed: Thunderbird closed the connection (quit); the password,
	// held in memory only, is gone with the host.
	WaitClosed WaitEnd = "closed"
)

// Waited is what a change that waited for its servers reports.
type Waited struct {
	Checks       int
	FailedLogins int
	Budget       int
	End          WaitEnd
}

// CheckPauser is implemented by a Thunderbird that can pause its own
// background checks (biff) of accounts while credsync waits: they would
// log in with the old password and fail, each failure counting towards a
// lockout. Pausing is best effort: a failure is not the change's.
type CheckPauser interface {
	PauseChecks(ctx context.Context, accountIDs []string) error
	ResumeChecks(ctx context.Context, accountIDs []string) error
}

// resumeTimeout bounds the resume request sent once the wait is over,
// whatever the change's context says.
const resumeTimeout = 10 * time.Second

// counts says whether a login with this outcome counts as a failed login
// for a directory's lockout: the credentials reached the server and were
// not accepted (or may have been counted: a temporary or garbled answer
// after AUTH). A login that never sent them (network, TLS, plaintext
// refused) does not.
func counts(o verify.Outcome) bool {
	return o == verify.AuthFailed || o == verify.Temporary || o == verify.ProtocolError
}

// failures counts the failed logins among checked servers.
func failures(servers []Checked) int {
	n := 0
	for _, s := range servers {
		if counts(s.Result.Outcome) {
			n++
		}
	}
	return n
}

// lagging says whether a change that ended with err may be waiting for
// servers behind the provider: the provider confirmed the change (or its
// answer was lost), a server refused the new password, and no server
// failed in a way that waiting does not cure.
func lagging(err error) (*Error, bool) {
	fe, ok := err.(*Error)
	if !ok || !(fe.Code == code.VerificationFailed && fe.Changed || fe.Code == code.OutcomeUnknown) {
		return nil, false
	}
	refused := false
	for _, s := range fe.Servers {
		switch s.Result.Outcome {
		case verify.AuthFailed:
			refused = true
		case verify.OK, verify.NetworkError, verify.Temporary:
		default:
			return nil, false
		}
	}
	return fe, refused
}

// pending are the servers of one side that have not accepted the password.
func pending(servers []Checked, side Side) []int {
	var out []int
	for i, s := range servers {
		if s.Side == side && s.Result.Outcome != verify.OK {
			out = append(out, i)
		}
	}
	return out
}

// awaitServers is the change's end when its servers lag behind the
// provider; any other end is returned as it is.
func (e *Engine) awaitServers(ctx context.Context, c Change, salt string, p plan, result Result, err error, progress Progress) (Result, error) {
	if e.Recheck == nil || e.Recheck.Off || e.Thunderbird == nil {
		return result, err
	}
	fe, ok := lagging(err)
	if !ok {
		return result, err
	}
	r := *e.Recheck
	clock := r.clock()
	start := clock.Now()
	changed := fe.Changed
	waited := Waited{FailedLogins: failures(p.servers), Budget: r.budget()}
	first := pending(p.servers, Incoming)
	if len(first) == 0 {
		first = pending(p.servers, Outgoing)
	}
	if r.next(0, waited.FailedLogins, len(first)) < 0 {
		return result, err // the first verification spent the budget: no wait
	}
	ids := make([]string, len(p.accounts))
	for i, a := range p.accounts {
		ids[i] = a.ID
	}
	if pauser, ok := e.Thunderbird.(CheckPauser); ok {
		_ = pauser.PauseChecks(ctx, ids)
		defer func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), resumeTimeout)
			defer cancel()
			_ = pauser.ResumeChecks(rctx, ids)
		}()
	}
	progress(StepWaiting, Running)

	slot := 0
	// now: the incoming servers accepted at the check just made, so the
	// outgoing ones are asked at once rather than at the next slot.
	now := false
	for {
		side, todo := Incoming, pending(p.servers, Incoming)
		if len(todo) == 0 {
			side, todo = Outgoing, pending(p.servers, Outgoing)
		}
		if len(todo) == 0 {
			waited.End = WaitAccepted
			break
		}
		if now && waited.FailedLogins+len(todo) > waited.Budget {
			waited.End = WaitBudgetSpent
			break
		}
		if !now {
			s := r.next(slot, waited.FailedLogins, len(todo))
			if s < 0 {
				waited.End = WaitBudgetSpent
				if slot >= len(r.schedule()) {
					waited.End = WaitScheduleOver
				}
				break
			}
			at := start.Add(r.schedule()[s])
			if c.Waiting != nil {
				c.Waiting(Wait{NextCheck: at, Checks: waited.Checks, FailedLogins: waited.FailedLogins, Budget: waited.Budget})
			}
			if end := sleepUntil(ctx, clock, at, c.Cancel); end != "" {
				waited.End = end
				break
			}
			slot = s + 1
			waited.Checks++
		}
		sub := make([]Checked, len(todo))
		for i, j := range todo {
			sub[i] = p.servers[j]
		}
		e.check(ctx, sub, c.New, progress)
		for i, j := range todo {
			p.servers[j] = sub[i]
		}
		waited.FailedLogins += failures(sub)
		if anyOK(sub) && !changed {
			changed = true // a server accepted it: the provider has it
			progress(StepChanging, OK)
		}
		if !waitable(sub) {
			waited.End = WaitServerFailed
			break
		}
		now = side == Incoming && len(pending(p.servers, Incoming)) == 0
	}

	if waited.End == WaitAccepted {
		progress(StepWaiting, OK)
		result, err = e.checkAndStore(ctx, salt, p, c.New, true, true, progress)
		result.Waited = &waited
		if fe, ok := err.(*Error); ok {
			fe.Waited = &waited
		}
		return result, err
	}
	progress(StepWaiting, Failed)
	out := &Error{Code: fe.Code, Changed: changed, Sent: fe.Sent, Accounts: p.accounts, Servers: p.servers,
		Logins: statesOf(p, Unchanged), Waited: &waited, Message: waitMessage(waited, changed, clock.Now().Sub(start))}
	if changed {
		out.Code = code.VerificationFailed
	}
	return Result{Changed: changed, Accounts: p.accounts, Servers: p.servers, Waited: &waited}, out
}

// waitable: every server either accepted, refused, or failed in a way a
// later check may not repeat.
func waitable(servers []Checked) bool {
	for _, s := range servers {
		switch s.Result.Outcome {
		case verify.OK, verify.AuthFailed, verify.NetworkError, verify.Temporary:
		default:
			return false
		}
	}
	return true
}

// sleepUntil waits for at; it returns early with the wait's end when the
// user cancels or the change's context ends.
func sleepUntil(ctx context.Context, clock Clock, at time.Time, cancel <-chan struct{}) WaitEnd {
	select {
	case <-clock.After(max(at.Sub(clock.Now()), 0)):
		return ""
	case <-cancel:
		return WaitCancelled
	case <-ctx.Done():
		return WaitClosed
	}
}

// waitMessage says how the wait ended and what the user can do.
func waitMessage(w Waited, changed bool, took time.Duration) string {
	minutes := int(took.Round(time.Minute) / time.Minute)
	var why string
	switch w.End {
	case WaitCancelled:
		why = "the wait for the mail servers was cancelled"
	case WaitBudgetSpent:
		why = fmt.Sprintf("the mail servers still refused the new password after %d checks in %d minutes; credsync stopped before a lockout (%d failed logins of at most %d)", w.Checks, minutes, w.FailedLogins, w.Budget)
	case WaitServerFailed:
		why = "a mail server failed in a way waiting does not cure"
	case WaitClosed:
		why = "Thunderbird closed credsync while it waited for the mail servers"
	default:
		why = fmt.Sprintf("the mail servers still refused the new password after %d checks in %d minutes", w.Checks, minutes)
	}
	if changed {
		return why + ". The provider has the new password; Thunderbird keeps the old one. When the webmail accepts the new password, use \"I already changed it\""
	}
	return why + ". The provider's answer was lost: it may or may not have the new password; Thunderbird keeps the current one. If the webmail accepts the new password later, use \"I already changed it\"; if the current one still works, nothing changed"
}
