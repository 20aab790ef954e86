package flow

import (
	"context"
)

// Propagate follows a password Thunderbird saved for login l (its own
// prompt, the Saved Passwords dialog): every login the password belongs to
// that does not hold it yet is checked on its servers and stored, in one
// transaction. A login that is no mail server's, or is gone, needs
// nothing (Updated false, no error).
func (e *Engine) Propagate(ctx context.Context, l Login, progress Progress) (result Result, err error) {
	subject := &auditSubject{login: l.Username + " at " + l.Origin}
	defer e.audit(ctx, kindPropagate, subject, &progress)(&result, &err)
	salt, accounts, err := e.facts(ctx)
	if err != nil {
		return Result{}, err
	}
	seeds := loginSeeds(accounts, l)
	if len(seeds) == 0 {
		return Result{Stored: true}, nil
	}
	subject.describe(accounts[seeds[0].account])
	password, err := e.Thunderbird.ReadLogin(ctx, l)
	if err != nil {
		return Result{Stored: true}, nil // changed again or removed meanwhile: nothing to follow
	}
	held := fingerprint(salt, password)
	p, err := makePlan(accounts, seeds, func(s Saved) bool { return s.Known && s.Exists && s.Fingerprint == held })
	if err != nil {
		return Result{}, err
	}
	if len(p.targets) == 0 {
		return Result{Stored: true}, nil
	}
	unlock, err := e.hold(subject, p)
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	if err := checkInForce(password, p, progress); err != nil {
		return Result{}, err
	}
	result, err = e.checkAndStore(ctx, salt, p, password, false, false, progress)
	result.Updated = result.Stored
	return result, err
}

// Preview is what a change or sync of one account would write.
type Preview struct {
	ID string
	// PasswordBased: the account's password can be changed or synced.
	PasswordBased bool
	// Touches are the accounts whose logins it writes, itself first.
	Touches []Touched
}

// Previews lists, for every account, what a change of it would write
// (PROTOCOL.md, "plan"); nothing is logged in to or written.
func (e *Engine) Previews(ctx context.Context) ([]Preview, error) {
	_, accounts, err := e.list(ctx, "") // no saved password is read for a preview
	if err != nil {
		return nil, err
	}
	out := make([]Preview, len(accounts))
	for i, a := range accounts {
		out[i] = Preview{ID: a.ID, Touches: []Touched{}}
		seeds, err := passwordSeeds(accounts, i)
		if err != nil {
			continue
		}
		p, err := makePlan(accounts, seeds, nil)
		if err != nil {
			continue
		}
		out[i].PasswordBased = true
		out[i].Touches = selfFirst(p.accounts, a.ID)
	}
	return out, nil
}

func selfFirst(touched []Touched, id string) []Touched {
	out := make([]Touched, 0, len(touched))
	for _, t := range touched {
		if t.ID == id {
			out = append([]Touched{t}, out...)
		} else {
			out = append(out, t)
		}
	}
	return out
}
