package flow

import (
	"context"
	"errors"

	"github.com/credsync/credsync/internal/code"
	"github.com/credsync/credsync/internal/policy"
	"github.com/credsync/credsync/internal/provider"
)

// Change is a password change requested by the user.
type Change struct {
	// AccountID is the Thunderbird account whose password changes.
	AccountID string
	// Account names the servers itself when the engine has no Thunderbird
	// (the command line); AccountID is then ignored.
	Account    *Account
	Backend    provider.Backend
	BackendURL string
	Current    string
	New        string
	// Checks, when its Breach is set, replace the engine's optional checks
	// for this change (the administrator's settings, sent by the popup).
	Checks policy.Options
	// Waiting, when set, hears of each wait for servers lagging behind
	// the provider; closing Cancel ends such a wait (recheck.go).
	Waiting func(Wait)
	Cancel  <-chan struct{}
}

// Change runs: the accounts → the logins the password belongs to → policy
// → change at the provider → one login to each distinct server → one
// store of every login. On any error Thunderbird's logins are as before
// (or the error's Logins say otherwise); Changed says whether the provider
// has the new password.
func (e *Engine) Change(ctx context.Context, c Change, progress Progress) (result Result, err error) {
	subject := &auditSubject{account: c.AccountID}
	defer e.audit(ctx, kindChange, subject, &progress)(&result, &err)
	var report policy.Report
	defer func() { result.Policy = report }()

	salt, accounts := "", []Account(nil)
	if c.Account != nil {
		accounts = []Account{*c.Account}
		c.AccountID = c.Account.ID
	} else if salt, accounts, err = e.facts(ctx); err != nil {
		return Result{}, err
	}
	i, err := findAccount(accounts, c.AccountID)
	if err != nil {
		return Result{}, err
	}
	subject.describe(accounts[i])
	seeds, err := passwordSeeds(accounts, i)
	if err != nil {
		return Result{}, err
	}
	p, err := makePlan(accounts, seeds, nil)
	if err != nil {
		return Result{}, err
	}
	unlock, err := e.hold(subject, p)
	if err != nil {
		return Result{}, err
	}
	defer unlock()

	progress(StepPolicy, Running)
	if c.Current == "" && c.Backend.Info().NeedsCurrent {
		progress(StepPolicy, Failed)
		return Result{}, &Error{Code: code.PolicyViolation, Rule: "current_required", Message: "the current password is required"}
	}
	main := mainServer(accounts[i])
	report, perr := e.checkChange(ctx, c)
	if perr != nil {
		progress(StepPolicy, Failed)
		return Result{}, perr
	}
	progress(StepPolicy, OK)

	progress(StepChanging, Running)
	err = c.Backend.Change(ctx, provider.Request{
		Username: main.Username,
		Current:  c.Current,
		New:      c.New,
		URL:      c.BackendURL,
		Incoming: main.Endpoint,
		Roots:    e.Trust.Roots,
	})
	if err == nil {
		progress(StepChanging, OK)
		result, err = e.checkAndStore(ctx, salt, p, c.New, false, true, progress)
		return e.awaitServers(ctx, c, salt, p, result, err, progress)
	}
	progress(StepChanging, Failed)
	if provider.KindOf(err) != provider.OutcomeUnknown {
		fe := &Error{Code: provider.KindOf(err), Message: err.Error(), Accounts: p.accounts}
		if pe := (*provider.Error)(nil); errors.As(err, &pe) {
			fe.Rule, fe.Sent, fe.Words = pe.Rule, pe.Sent, pe.Words // what the refusing provider named and saw
		}
		return Result{}, fe
	}
	// The provider may have applied the change, now or a moment later
	// (replication, a queue behind its panel, a server's authentication
	// cache): one login per server with the new password tells only when
	// one accepts it. A refusal proves nothing; only the provider's own
	// refusal (above) says "not changed".
	e.check(ctx, p.servers, c.New, progress)
	if anyOK(p.servers) {
		// The provider has it; servers still refusing it may be lagging.
		progress(StepChanging, OK)
		result, err = e.checkAndStore(ctx, salt, p, c.New, true, true, progress)
		return e.awaitServers(ctx, c, salt, p, result, err, progress)
	}
	msg := "the provider's answer was lost and the servers could not be asked"
	if anyRefused(p.servers) {
		msg = "the provider's answer was lost and the servers refuse the new password for now; the provider may still apply it (or may not have)"
	}
	return e.awaitServers(ctx, c, salt, p, Result{}, &Error{Code: code.OutcomeUnknown, Sent: provider.SentChange, Accounts: p.accounts, Servers: p.servers,
		Message: msg + ". Thunderbird keeps the current password. In a few minutes, log in to the webmail with the new password: if it works, use \"I already changed it\"; if the current one still works, nothing changed"}, progress)
}

// mainServer is the server whose login the provider changes: the incoming
// one, or the outgoing one of an account without incoming server.
func mainServer(a Account) *Server {
	if a.Incoming != nil {
		return a.Incoming
	}
	return a.Outgoing
}
