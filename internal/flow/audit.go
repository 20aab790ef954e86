package flow

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/credsync/credsync/internal/audit"
)

// Kinds of the flows this package runs.
const (
	kindChange    = audit.KindChange
	kindSync      = audit.KindSync
	kindPropagate = audit.KindPropagate
)

// auditSubject is what a transaction is about, filled in as it learns it.
type auditSubject struct {
	account  string
	login    string
	accounts []string
}

// describe names the account the transaction is about and its login.
func (s *auditSubject) describe(a Account) {
	s.account = a.ID
	if m := mainServer(a); m != nil && s.login == "" {
		s.login = m.Username + "@" + m.Host
	}
}

// touched records the accounts the transaction writes.
func (s *auditSubject) touched(p plan) {
	s.accounts = s.accounts[:0]
	for _, a := range p.accounts {
		s.accounts = append(s.accounts, a.ID)
	}
}

// AuditFunc receives one record per flow that Engine ran, refused ones
// included, as the flow returns. An error marks Result.AuditFailed; the
// flow's outcome is unchanged. ctx is the flow's context (for its values).
type AuditFunc func(ctx context.Context, r audit.Record) error

// audit makes *progress also record each step's last state, and returns
// what the flow defers to write its record:
//
//	defer e.audit(ctx, kindSync, subject, &progress)(&result, &err)
func (e *Engine) audit(ctx context.Context, kind string, subject *auditSubject, progress *Progress) func(*Result, *error) {
	if e.Audit == nil {
		return func(*Result, *error) {}
	}
	steps := &stepLog{}
	report := *progress
	*progress = func(step Step, state State) {
		steps.set(step, state)
		if report != nil {
			report(step, state)
		}
	}
	return func(result *Result, err *error) {
		if kind == kindPropagate && *err == nil && len(subject.accounts) == 0 {
			return // nothing needed following: not a flow worth a record
		}
		rec := audit.Record{
			Time:     time.Now(),
			Kind:     kind,
			Account:  subject.account,
			Login:    subject.login,
			Accounts: subject.accounts,
			Steps:    steps.list(),
			Outcome:  audit.OutcomeStored,
			Changed:  result.Changed,
		}
		var fe *Error
		switch {
		case errors.As(*err, &fe):
			rec.Outcome = string(fe.Code)
			rec.Changed = rec.Changed || fe.Changed
		case *err != nil:
			rec.Outcome = "internal_error"
		case !result.Stored && result.Changed:
			rec.Outcome = audit.OutcomeChanged // no Storer
		case !result.Stored:
			rec.Outcome = "internal_error" // a panic is unwinding
		}
		if e.Audit(ctx, rec) != nil {
			result.AuditFailed = true
		}
	}
}

// stepLog keeps each step's last state, in the order the steps started.
// Progress comes from the two verification goroutines at once.
type stepLog struct {
	mu    sync.Mutex
	steps []audit.Step
}

func (l *stepLog) set(step Step, state State) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.steps {
		if l.steps[i].Step == string(step) {
			l.steps[i].State = string(state)
			return
		}
	}
	l.steps = append(l.steps, audit.Step{Step: string(step), State: string(state)})
}

func (l *stepLog) list() []audit.Step {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]audit.Step{}, l.steps...)
}
