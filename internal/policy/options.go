package policy

import (
	"context"
	"fmt"
)

// Options are the optional checks. The zero value checks nothing beyond
// Check: no minimum strength, no breach check.
type Options struct {
	// MinStrength refuses passwords whose zxcvbn score (0-4) is lower
	// (too_weak); 0 accepts any. The score is always reported; a failed
	// estimate refuses nothing.
	MinStrength int
	// Breach, when set, asks the range API whether the new password is in
	// a known breach (breached). Off by default: it needs the network. An
	// unreachable API does not stop the change; the report says so.
	Breach *Breach
}

// Breach check outcomes in Report.Breach.
const (
	BreachOff         = "off"
	BreachNotListed   = "not_listed"
	BreachUnavailable = "unavailable"
)

// Report is what Evaluate learnt about an accepted password.
type Report struct {
	// Strength is zxcvbn's score, 0-4; -1 when the estimator failed.
	Strength int `json:"strength"`
	// Breach is "off", "not_listed" or "unavailable".
	Breach string `json:"breach"`
	// BreachError says why the breach check was unavailable.
	BreachError string `json:"breachError,omitempty"`
}

// Evaluate runs the optional checks on a password that passed Check: the
// strength estimate against MinStrength, then (only if that passed) the
// breach check, the one step that uses the network. userInputs feed the
// estimate (UserInputs, plus the current password).
func (o Options) Evaluate(ctx context.Context, password string, userInputs []string) (Report, *Violation) {
	r := Report{Strength: -1, Breach: BreachOff}
	if s, ok := Strength(password, userInputs...); ok {
		r.Strength = s
		if o.MinStrength > 0 && s < o.MinStrength {
			return r, &Violation{RuleTooWeak, weakMessage(s, o.MinStrength)}
		}
	}
	if o.Breach == nil {
		return r, nil
	}
	n, err := o.Breach.Count(ctx, password)
	switch {
	case err != nil:
		r.Breach, r.BreachError = BreachUnavailable, err.Error()
	case n > 0:
		return r, &Violation{RuleBreached, fmt.Sprintf("the new password appears %d times in known data breaches; choose another", n)}
	default:
		r.Breach = BreachNotListed
	}
	return r, nil
}
