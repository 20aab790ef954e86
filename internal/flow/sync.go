package flow

import "context"

// Sync stores a password already changed elsewhere (at Ctrl+Alt+Del, on the
// provider's page): verify it on both servers, then store it. Nothing is
// stored unless both servers accept it.
func (e *Engine) Sync(ctx context.Context, acct Account, password string, progress Progress) (result Result, err error) {
	defer e.audit(ctx, kindSync, acct, &progress)(&result, &err)
	unlock, err := e.lock(acct.ID)
	if err != nil {
		return Result{}, err
	}
	defer unlock()

	progress(StepPolicy, Running)
	if err := checkAccount(acct); err != nil {
		progress(StepPolicy, Failed)
		return Result{}, err
	}
	if rule, msg := checkNew("", password); rule != "" {
		progress(StepPolicy, Failed)
		return Result{}, &Error{Code: PolicyViolation, Rule: rule, Message: msg}
	}
	progress(StepPolicy, OK)

	in, out := e.verifyBoth(ctx, acct, password, progress)
	if !allOK(in, out) {
		return Result{Incoming: in, Outgoing: out}, &Error{
			Code: VerificationFailed, Incoming: in, Outgoing: out,
			Message: "a server did not accept the password; Thunderbird keeps the one it has",
		}
	}
	if err := e.store(ctx, acct, password, progress); err != nil {
		return Result{Incoming: in, Outgoing: out}, err
	}
	return Result{Stored: true, Incoming: in, Outgoing: out}, nil
}
