package flow

import (
	"context"
	"strings"

	"github.com/credsync/credsync/internal/code"
)

// Trigger names the accounts a sync is for: one account by id, or (the
// local socket) every account whose incoming server has this user name
// (exactly) on this host (without case).
type Trigger struct {
	AccountID      string
	Username, Host string
}

// Sync stores a password already changed elsewhere (at Ctrl+Alt+Del, on
// the provider's page): one login to each distinct server of every login
// it belongs to, then one store. Nothing is stored unless all accept it.
// Result.Skipped lists the named accounts that sign in without a password.
func (e *Engine) Sync(ctx context.Context, t Trigger, password string, progress Progress) (result Result, err error) {
	subject := &auditSubject{account: t.AccountID}
	defer e.audit(ctx, kindSync, subject, &progress)(&result, &err)
	salt, accounts, err := e.facts(ctx)
	if err != nil {
		return Result{}, err
	}
	seeds, skipped, err := syncSeeds(accounts, t)
	if err != nil {
		return Result{Skipped: skipped}, err
	}
	subject.describe(accounts[seeds[0].account])
	p, err := makePlan(accounts, seeds, nil)
	if err != nil {
		return Result{Skipped: skipped}, err
	}
	unlock, err := e.hold(subject, p)
	if err != nil {
		return Result{Skipped: skipped}, err
	}
	defer unlock()
	if err := checkInForce(password, p, progress); err != nil {
		return Result{Skipped: skipped}, err
	}
	result, err = e.checkAndStore(ctx, salt, p, password, false, false, progress)
	result.Skipped = skipped
	return result, err
}

// syncSeeds are the password servers of the accounts t names, and those of
// them that sign in without a password.
func syncSeeds(accounts []Account, t Trigger) (seeds []ref, skipped []Touched, err error) {
	if t.AccountID != "" {
		i, err := findAccount(accounts, t.AccountID)
		if err != nil {
			return nil, nil, err
		}
		seeds, err := passwordSeeds(accounts, i)
		return seeds, nil, err
	}
	matched := false
	for i, a := range accounts {
		if a.Incoming == nil || a.Incoming.Username != t.Username || !strings.EqualFold(a.Incoming.Host, t.Host) {
			continue
		}
		matched = true
		s, err := passwordSeeds(accounts, i)
		if err != nil {
			skipped = append(skipped, Touched{ID: a.ID, Name: a.Name})
			continue
		}
		seeds = append(seeds, s...)
	}
	switch {
	case !matched:
		return nil, nil, &Error{Code: code.UnknownAccount, Message: "no Thunderbird account has an incoming server with that user name and host"}
	case len(seeds) == 0:
		return nil, skipped, &Error{Code: code.NotPasswordAccount, Message: "every matching account signs in without a password (OAuth2, Kerberos, NTLM or a certificate)"}
	}
	return seeds, skipped, nil
}
