// Package policy checks a new password before anything leaves the machine:
// the rules every password obeys (not empty, at most MaxBytes, valid UTF-8,
// no NUL/CR/LF), the confirmation typed twice, "differs from the current
// one", and the rules of the provider's back-end (Rules). Options adds the
// optional breach check through the k-anonymity range API (Breach), off by
// default. The host does not estimate strength; the popup does.
//
// Every refusal is a *Violation whose Rule is a stable name (listed in
// PROTOCOL.md); its Message never contains the password. A password is
// refused, never truncated.
package policy

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxBytes bounds every password, whatever the back-end.
const MaxBytes = 4096

// Stable rule names, reported as policy_violation's "rule".
const (
	RuleEmpty             = "empty"
	RuleTooLong           = "too_long"
	RuleInvalidUTF8       = "invalid_utf8"
	RuleControlCharacters = "control_characters"
	RuleSameAsCurrent     = "same_as_current"
	RuleCurrentRequired   = "current_required"
	RuleTooShort          = "too_short"
	RuleNeedsUpper        = "needs_upper"
	RuleNeedsLower        = "needs_lower"
	RuleNeedsDigit        = "needs_digit"
	RuleNeedsSpecial      = "needs_special"
	RuleBadCharacter      = "bad_character"
	RuleMismatch          = "mismatch"
	RuleBreached          = "breached"
	// RuleBreachUnavailable: the breach check could not be made and the
	// administrator chose to stop the change then (Options.FailClosed).
	RuleBreachUnavailable = "breach_check_unavailable"
	// RuleTooWeak names a provider's strength refusal (RuleFromMessage).
	// The host itself no longer refuses a password as too weak (0.2+).
	RuleTooWeak = "too_weak"
)

// Violation is a broken rule. Message is for people and logs and never
// contains the password.
type Violation struct {
	Rule    string
	Message string
	// Breaches is how often a breached password was seen.
	Breaches int
}

func (v *Violation) Error() string { return v.Rule + ": " + v.Message }

// Rules are a back-end's password rules, as the provider publishes them. The
// zero value (and nil) imposes nothing beyond the universal rules. Lengths
// count Unicode code points unless named in bytes. The JSON form is what the
// extension's popup mirrors (PROTOCOL.md, hello).
type Rules struct {
	// MinLength and MaxLength bound the length in characters; 0 means no bound.
	MinLength int `json:"minLength,omitempty"`
	MaxLength int `json:"maxLength,omitempty"`
	// MaxBytes bounds the UTF-8 length, for protocols that count bytes.
	MaxBytes int `json:"maxBytes,omitempty"`
	// NeedsUpper, NeedsLower, NeedsDigit (0-9) and NeedsSpecial each require
	// one character of that class.
	NeedsUpper   bool `json:"needsUpper,omitempty"`
	NeedsLower   bool `json:"needsLower,omitempty"`
	NeedsDigit   bool `json:"needsDigit,omitempty"`
	NeedsSpecial bool `json:"needsSpecial,omitempty"`
	// Specials, when set, is every special character the provider accepts:
	// each character must then be an ASCII letter, an ASCII digit or one of
	// these, and NeedsSpecial asks for one of them. When empty, any character
	// that is neither a letter nor a digit counts as special.
	Specials string `json:"specials,omitempty"`
	// Forbidden lists characters the provider cannot take.
	Forbidden string `json:"forbidden,omitempty"`
}

// Check applies the universal rules, then "differs from current" (when
// current is given), then rules (nil: none). It returns the first broken
// rule, or nil.
func Check(current, next string, rules *Rules) *Violation {
	switch {
	case next == "":
		return &Violation{Rule: RuleEmpty, Message: "the new password is empty"}
	case len(next) > MaxBytes:
		return &Violation{Rule: RuleTooLong, Message: "the new password is longer than " + strconv.Itoa(MaxBytes) + " bytes"}
	case !utf8.ValidString(next):
		return &Violation{Rule: RuleInvalidUTF8, Message: "the new password is not valid UTF-8"}
	case strings.ContainsAny(next, "\x00\r\n"):
		return &Violation{Rule: RuleControlCharacters, Message: "the new password contains NUL, CR or LF, which mail servers cannot receive"}
	case current != "" && next == current:
		return &Violation{Rule: RuleSameAsCurrent, Message: "the new password is the same as the current one"}
	}
	if v := rules.Violations(next); len(v) > 0 {
		return &v[0]
	}
	return nil
}

// Confirm checks the new password typed a second time.
func Confirm(next, again string) *Violation {
	if next != again {
		return &Violation{Rule: RuleMismatch, Message: "the two new passwords differ"}
	}
	return nil
}

// Violations lists every rule of r that password breaks, in a fixed order:
// too_short, too_long, bad_character, needs_upper, needs_lower, needs_digit,
// needs_special. A nil r has no rules.
func (r *Rules) Violations(password string) []Violation {
	if r == nil {
		return nil
	}
	var out []Violation
	n := utf8.RuneCountInString(password)
	if r.MinLength > 0 && n < r.MinLength {
		out = append(out, Violation{Rule: RuleTooShort, Message: fmt.Sprintf("the new password has %d characters; the provider wants at least %d", n, r.MinLength)})
	}
	switch {
	case r.MaxLength > 0 && n > r.MaxLength:
		out = append(out, Violation{Rule: RuleTooLong, Message: fmt.Sprintf("the new password has %d characters; the provider takes at most %d", n, r.MaxLength)})
	case r.MaxBytes > 0 && len(password) > r.MaxBytes:
		out = append(out, Violation{Rule: RuleTooLong, Message: fmt.Sprintf("the new password takes %d bytes; the provider takes at most %d", len(password), r.MaxBytes)})
	}
	var upper, lower, digit, special, bad bool
	for _, c := range password {
		switch {
		case strings.ContainsRune(r.Forbidden, c):
			bad = true
		case c >= '0' && c <= '9':
			digit = true
		case r.Specials != "" && c < utf8.RuneSelf && unicode.IsLetter(c):
			upper, lower = upper || unicode.IsUpper(c), lower || unicode.IsLower(c)
		case r.Specials != "":
			if strings.ContainsRune(r.Specials, c) {
				special = true
			} else {
				bad = true
			}
		case unicode.IsLetter(c):
			upper, lower = upper || unicode.IsUpper(c), lower || unicode.IsLower(c)
		case unicode.IsDigit(c):
			// a non-ASCII digit: neither a 0-9 digit nor special
		default:
			special = true
		}
	}
	if bad {
		out = append(out, Violation{Rule: RuleBadCharacter, Message: "the new password contains a character the provider does not accept" + r.allowed()})
	}
	if r.NeedsUpper && !upper {
		out = append(out, Violation{Rule: RuleNeedsUpper, Message: "the new password needs an upper-case letter"})
	}
	if r.NeedsLower && !lower {
		out = append(out, Violation{Rule: RuleNeedsLower, Message: "the new password needs a lower-case letter"})
	}
	if r.NeedsDigit && !digit {
		out = append(out, Violation{Rule: RuleNeedsDigit, Message: "the new password needs a digit (0-9)"})
	}
	if r.NeedsSpecial && !special {
		msg := "the new password needs a special character (neither a letter nor a digit)"
		if r.Specials != "" {
			msg = "the new password needs one of these special characters: " + r.Specials
		}
		out = append(out, Violation{Rule: RuleNeedsSpecial, Message: msg})
	}
	return out
}

// allowed describes the accepted characters for a bad_character message.
func (r *Rules) allowed() string {
	switch {
	case r.Specials != "":
		return " (allowed: letters A-Z a-z, digits 0-9 and " + r.Specials + ")"
	case r.Forbidden != "":
		return " (refused: " + strconv.Quote(r.Forbidden) + ")"
	}
	return ""
}

// String describes the rules in one line for people, e.g. "8-256
// characters, an upper-case letter, a lower-case letter, a digit, one of
// !#$%". A nil or empty r is "none known".
func (r *Rules) String() string {
	if r == nil {
		return "none known"
	}
	var parts []string
	switch {
	case r.MinLength > 0 && r.MaxLength > 0:
		parts = append(parts, fmt.Sprintf("%d-%d characters", r.MinLength, r.MaxLength))
	case r.MinLength > 0:
		parts = append(parts, fmt.Sprintf("at least %d characters", r.MinLength))
	case r.MaxLength > 0:
		parts = append(parts, fmt.Sprintf("at most %d characters", r.MaxLength))
	}
	if r.MaxBytes > 0 {
		parts = append(parts, fmt.Sprintf("at most %d bytes", r.MaxBytes))
	}
	for _, c := range []struct {
		on   bool
		text string
	}{{r.NeedsUpper, "an upper-case letter"}, {r.NeedsLower, "a lower-case letter"}, {r.NeedsDigit, "a digit"}} {
		if c.on {
			parts = append(parts, c.text)
		}
	}
	switch {
	case r.NeedsSpecial && r.Specials != "":
		parts = append(parts, "one of "+r.Specials)
	case r.NeedsSpecial:
		parts = append(parts, "a special character")
	case r.Specials != "":
		parts = append(parts, "specials only from "+r.Specials)
	}
	if r.Forbidden != "" {
		parts = append(parts, "none of "+strconv.Quote(r.Forbidden))
	}
	if len(parts) == 0 {
		return "none known"
	}
	return strings.Join(parts, ", ")
}
