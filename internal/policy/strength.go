package policy

import (
	"fmt"
	"strings"
	"unicode"

	zxcvbn "github.com/ccojocar/zxcvbn-go"
)

// StrengthPrefix is how many characters of a password the strength
// estimate reads. zxcvbn's matching grows much faster than the length (a
// 64-character run of punctuation takes 0.7 s, 256 characters 30 s), so
// longer passwords are estimated on their first StrengthPrefix characters.
// Only the estimate reads the prefix: the password itself is never
// shortened. A password whose first 32 characters are guessable (a repeated
// word, a keyboard walk) is reported as weak even when what follows is not.
const StrengthPrefix = 32

// MaxScore is zxcvbn's best score.
const MaxScore = 4

// Strength estimates how hard password is to guess with zxcvbn: 0 (too
// guessable) to 4 (very unguessable). userInputs are words an attacker
// would try first (the user name, the domain, the current password); they
// stay in memory. ok is false when the estimator failed.
func Strength(password string, userInputs ...string) (score int, ok bool) {
	if password == "" {
		return 0, true
	}
	n := 0
	for i := range password {
		if n == StrengthPrefix {
			password = password[:i]
			break
		}
		n++
	}
	defer func() {
		if recover() != nil { // a bug in the estimator must not end the flow
			score, ok = 0, false
		}
	}()
	s := zxcvbn.PasswordStrength(password, userInputs).Score
	if s < 0 || s > MaxScore {
		return 0, false
	}
	return s, true
}

// UserInputs derives zxcvbn's user inputs from a login name and a host: the
// whole name, its local part, and each label of the domains except
// top-level ones ("alice.rossi@pec.example.it", "imaps.pec.aruba.it" →
// "alice.rossi@pec.example.it", "alice.rossi", "alice", "rossi", "pec",
// "example", "imaps", "aruba").
func UserInputs(username, host string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		s = strings.ToLower(strings.TrimSpace(s))
		if len(s) >= 3 && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	add(username)
	local, domain, _ := strings.Cut(username, "@")
	add(local)
	for _, w := range strings.FieldsFunc(local, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		add(w)
	}
	for _, d := range []string{domain, host} {
		labels := strings.Split(strings.TrimSuffix(d, "."), ".")
		if len(labels) > 1 {
			labels = labels[:len(labels)-1]
		}
		for _, l := range labels {
			add(l)
		}
	}
	return out
}

// weakMessage explains a too_weak refusal.
func weakMessage(score, min int) string {
	return fmt.Sprintf("the new password is too easy to guess: strength %d of %d, at least %d required", score, MaxScore, min)
}
