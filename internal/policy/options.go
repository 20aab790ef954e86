package policy

import (
	"context"
	"fmt"
)

// Options are the optional checks. The zero value checks nothing beyond
// Check: no breach check. The host does not estimate strength: the popup
// does, as the user types (issue 18).
type Options struct {
	// Breach, when set, asks the range API whether the new password is in
	// a known breach (breached). Off by default: it needs the network. An
	// unreachable API does not stop the change (the report says so) unless
	// FailClosed.
	Breach *Breach
	// FailClosed: an unreachable range API stops the change
	// (breach_check_unavailable) instead of letting it go on.
	FailClosed bool
}

// Breach check outcomes in Report.Breach.
const (
	BreachOff         = "off"
	BreachNotListed   = "not_listed"
	BreachUnavailable = "unavailable"
)

// Report is what Evaluate learnt about an accepted password.
type Report struct {
	// Breach is "off", "not_listed" or "unavailable".
	Breach string `json:"breach"`
	// BreachError says why the breach check was unavailable.
	BreachError string `json:"breachError,omitempty"`
}

// Evaluate runs the optional checks on a password that passed Check: the
// breach check, the one step that uses the network.
func (o Options) Evaluate(ctx context.Context, password string) (Report, *Violation) {
	r := Report{Breach: BreachOff}
	if o.Breach == nil {
		return r, nil
	}
	n, err := o.Breach.Count(ctx, password)
	switch {
	case err != nil && o.FailClosed:
		r.Breach, r.BreachError = BreachUnavailable, err.Error()
		return r, &Violation{Rule: RuleBreachUnavailable, Message: "the breach check could not be made (" + err.Error() + "); nothing was sent: try again later"}
	case err != nil:
		r.Breach, r.BreachError = BreachUnavailable, err.Error()
	case n > 0:
		return r, &Violation{Rule: RuleBreached, Message: fmt.Sprintf("the new password appears %d times in known data breaches; choose another", n), Breaches: n}
	default:
		r.Breach = BreachNotListed
	}
	return r, nil
}
