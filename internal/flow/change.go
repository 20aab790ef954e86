package flow

import (
	"context"
	"errors"

	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/policy"
	"github.com/credsync/credsync/internal/provider"
	"github.com/credsync/credsync/internal/verify"
)

// Change is a password change requested by the user.
type Change struct {
	Account    Account
	Backend    provider.Backend
	BackendURL string
	Current    string
	New        string
}

// Change runs policy check → change at the provider → verify both servers
// → store in Thunderbird. On any error Thunderbird's logins are as before;
// the error says whether the provider has the new password. Without a
// Store (Engine.Store nil) it ends after verification: Changed, not Stored.
func (e *Engine) Change(ctx context.Context, c Change, progress Progress) (result Result, err error) {
	defer e.audit(ctx, kindChange, c.Account, &progress)(&result, &err)
	var report policy.Report
	defer func() { result.Policy = report }()
	unlock, err := e.lock(c.Account.ID)
	if err != nil {
		return Result{}, err
	}
	defer unlock()

	progress(StepPolicy, Running)
	if err := checkAccount(c.Account); err != nil {
		progress(StepPolicy, Failed)
		return Result{}, err
	}
	if c.Current == "" && c.Backend.Info().NeedsCurrent {
		progress(StepPolicy, Failed)
		return Result{}, &Error{Code: PolicyViolation, Rule: "current_required", Message: "the current password is required"}
	}
	report, perr := e.checkChange(ctx, c)
	if perr != nil {
		progress(StepPolicy, Failed)
		return Result{}, perr
	}
	progress(StepPolicy, OK)

	progress(StepChanging, Running)
	err = c.Backend.Change(ctx, provider.Request{
		Username: c.Account.username(),
		Current:  c.Current,
		New:      c.New,
		URL:      c.BackendURL,
		Incoming: c.Account.endpointForBackend(),
		Roots:    e.Trust.Roots,
	})
	if err != nil {
		progress(StepChanging, Failed)
		if provider.KindOf(err) != provider.OutcomeUnknown {
			fe := &Error{Code: Code(provider.KindOf(err)), Message: err.Error()}
			if pe := (*provider.Error)(nil); errors.As(err, &pe) {
				fe.Rule = pe.Rule // the rule a refusing provider named
			}
			return Result{}, fe
		}
		// The provider may have applied the change: one login with the new
		// password tells, and is the only retry-free way to know.
		in, out := e.verifyBoth(ctx, c.Account, c.New, progress)
		switch {
		case anyOK(in, out):
			progress(StepChanging, OK)
		case rejected(in, out):
			return Result{}, &Error{Code: NotChanged, Incoming: in, Outgoing: out,
				Message: "the provider's answer was lost and the new password does not log in: the password was not changed; the current one still applies"}
		default:
			return Result{}, &Error{Code: OutcomeUnknown, Incoming: in, Outgoing: out,
				Message: "the provider's answer was lost and the servers could not be asked; Thunderbird keeps the current password. Try logging in to the webmail with the new password: if it works, use \"I already changed it\""}
		}
		return e.finish(ctx, c.Account, c.New, in, out, progress)
	}
	progress(StepChanging, OK)

	in, out := e.verifyBoth(ctx, c.Account, c.New, progress)
	return e.finish(ctx, c.Account, c.New, in, out, progress)
}

// finish stores a changed password once both servers accepted it.
func (e *Engine) finish(ctx context.Context, acct Account, password string, in, out *verify.Result, progress Progress) (Result, error) {
	if !allOK(in, out) {
		return Result{Changed: true, Incoming: in, Outgoing: out}, &Error{
			Code: VerificationFailed, Changed: true, Incoming: in, Outgoing: out,
			Message: "the provider accepted the new password but a server did not; Thunderbird keeps the old password",
		}
	}
	if e.Store == nil { // the command line: verified is the end
		return Result{Changed: true, Incoming: in, Outgoing: out}, nil
	}
	if err := e.store(ctx, acct, password, progress); err != nil {
		err.Changed = true
		return Result{Changed: true, Incoming: in, Outgoing: out}, err
	}
	return Result{Changed: true, Stored: true, Incoming: in, Outgoing: out}, nil
}

// anyOK: some server accepted the password, so the provider has it.
func anyOK(results ...*verify.Result) bool {
	for _, r := range results {
		if r != nil && r.Outcome == verify.OK {
			return true
		}
	}
	return false
}

// rejected: some server answered and refused the password.
func rejected(results ...*verify.Result) bool {
	for _, r := range results {
		if r != nil && r.Outcome == verify.AuthFailed {
			return true
		}
	}
	return false
}

func (a Account) username() string {
	return a.endpointForBackend().Username
}

// endpointForBackend is the server whose login the provider changes: the
// incoming one, or the outgoing one for an account without incoming server.
func (a Account) endpointForBackend() endpoint.Endpoint {
	if a.Incoming != nil {
		return *a.Incoming
	}
	return *a.Outgoing
}
