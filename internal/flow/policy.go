package flow

import (
	"context"

	"github.com/credsync/credsync/internal/code"
	"github.com/credsync/credsync/internal/policy"
)

// MaxPassword bounds a password. Longer ones are refused, never truncated.
const MaxPassword = policy.MaxBytes

// checkNew applies the rules every password obeys before any network call
// (policy.Check without a back-end's rules). It returns the broken rule's
// name, or "".
func checkNew(current, next string) (rule, message string) {
	if v := policy.Check(current, next, nil); v != nil {
		return v.Rule, v.Message
	}
	return "", ""
}

// checkChange is a change's policy step: the universal rules, "differs from
// the current password", the back-end's published rules
// (provider.Info.Rules), all without the network; then the engine's
// optional breach check (e.Policy), the only one that may use the network.
// The report holds the breach check's outcome.
func (e *Engine) checkChange(ctx context.Context, c Change) (policy.Report, *Error) {
	if v := policy.Check(c.Current, c.New, c.Backend.Info().Rules); v != nil {
		return policy.Report{}, &Error{Code: code.PolicyViolation, Rule: v.Rule, Message: v.Message}
	}
	checks := e.Policy
	if c.Checks.Breach != nil {
		checks = c.Checks
	}
	report, v := checks.Evaluate(ctx, c.New)
	if v != nil {
		return report, &Error{Code: code.PolicyViolation, Rule: v.Rule, Message: v.Message, Breaches: v.Breaches}
	}
	return report, nil
}
