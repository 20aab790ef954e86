package flow

import (
	"context"
	"fmt"
	"strings"

	"github.com/credsync/credsync/internal/code"
)

// facts asks Thunderbird for its accounts, fingerprinting saved logins
// with a fresh salt.
func (e *Engine) facts(ctx context.Context) (salt string, accounts []Account, err error) {
	return e.list(ctx, newSalt())
}

// list asks Thunderbird for its accounts; without a salt, saved logins are
// neither read nor fingerprinted (Saved.Known false).
func (e *Engine) list(ctx context.Context, salt string) (string, []Account, error) {
	if e.Thunderbird == nil {
		return "", nil, &Error{Code: code.StoreFailed, Message: "this credsync has no Thunderbird to store the password in"}
	}
	accounts, err := e.Thunderbird.Accounts(ctx, salt)
	if err != nil {
		return "", nil, &Error{Code: code.InternalError, Message: fmt.Sprintf("Thunderbird did not list its accounts (%v); nothing was changed", err)}
	}
	return salt, accounts, nil
}

// checkAndStore is every transaction's end: one login to each distinct
// server with password (unless the caller already did: checked), then,
// when all accepted it, one store of every login.
func (e *Engine) checkAndStore(ctx context.Context, salt string, p plan, password string, checked bool, changed bool, progress Progress) (Result, error) {
	result := Result{Changed: changed, Accounts: p.accounts, Servers: p.servers}
	if !checked {
		e.check(ctx, result.Servers, password, progress)
	}
	if !allOK(result.Servers) {
		msg := "a server did not accept the password; Thunderbird keeps the one it has"
		if changed {
			msg = "the provider accepted the new password but a server did not; Thunderbird keeps the old password"
		}
		return result, &Error{Code: code.VerificationFailed, Changed: changed, Message: msg,
			Accounts: result.Accounts, Servers: result.Servers, Logins: statesOf(p, Unchanged)}
	}
	if e.Thunderbird == nil { // the command line's change: verified is the end
		return result, nil
	}
	written, err := e.store(ctx, salt, p, password, progress)
	result.Logins = written
	if err != nil {
		err.Changed, err.Accounts, err.Servers = changed, result.Accounts, result.Servers
		return result, err
	}
	result.Stored = true
	return result, nil
}

// store sends the one store request: every login, all or none.
func (e *Engine) store(ctx context.Context, salt string, p plan, password string, progress Progress) ([]Written, *Error) {
	writes := make([]Write, len(p.targets))
	for i, t := range p.targets {
		writes[i] = Write{Login: t.Login, Password: password, Expect: t.saved}
	}
	progress(StepSaving, Running)
	written, err := e.Thunderbird.Store(ctx, salt, writes)
	var refused *StoreError
	switch {
	case err == nil && allStored(p, written):
		progress(StepSaving, OK)
		return statesOf(p, Stored), nil
	case err == nil:
		progress(StepSaving, Failed)
		return merge(p, written), &Error{Code: code.StoreUnconfirmed, Logins: merge(p, written),
			Message: "Thunderbird answered without confirming every login; they hold either the old or the new password: run \"I already changed it\" with the new password"}
	case asStoreError(err, &refused):
		progress(StepSaving, Failed)
		logins := merge(p, refused.Logins)
		return logins, &Error{Code: refused.Code, Logins: logins, Message: storeMessage(refused, logins)}
	default:
		progress(StepSaving, Failed)
		logins := statesOf(p, Unknown)
		return logins, &Error{Code: code.StoreUnconfirmed, Logins: logins,
			Message: fmt.Sprintf("Thunderbird did not confirm the new logins (%v); they hold either the old or the new password: run \"I already changed it\" with the new password", err)}
	}
}

func asStoreError(err error, target **StoreError) bool {
	se, ok := err.(*StoreError)
	*target = se
	return ok
}

// storeMessage says what a refused store left: nothing, or which logins
// may hold the new password.
func storeMessage(refused *StoreError, logins []Written) string {
	var uncertain []string
	for _, l := range logins {
		if l.State == Stored || l.State == Unknown {
			uncertain = append(uncertain, l.Username+" at "+l.Origin)
		}
	}
	if len(uncertain) == 0 {
		return refused.Message + "; no login holds the new password"
	}
	return refused.Message + "; these logins may hold the new password: " + strings.Join(uncertain, ", ")
}

// statesOf gives every login of the plan one state.
func statesOf(p plan, state LoginState) []Written {
	out := make([]Written, len(p.targets))
	for i, t := range p.targets {
		out[i] = Written{t.Login, state}
	}
	return out
}

// merge takes the extension's states for the plan's logins; a login it did
// not mention is Unknown.
func merge(p plan, reported []Written) []Written {
	states := map[string]LoginState{}
	for _, w := range reported {
		states[w.key()] = w.State
	}
	out := statesOf(p, Unknown)
	for i := range out {
		if s, ok := states[out[i].key()]; ok {
			out[i].State = s
		}
	}
	return out
}

func allStored(p plan, reported []Written) bool {
	for _, w := range merge(p, reported) {
		if w.State != Stored {
			return false
		}
	}
	return true
}
