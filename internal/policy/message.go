package policy

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// messageRules maps words of providers' refusals (English and Italian) to
// rule names. Order matters: the first entry with a matching word wins, so
// specific classes come before length ("at least one special character"
// is needs_special, not too_short).
var messageRules = []struct {
	rule  string
	words []string
}{
	{RuleMismatch, []string{"do not match", "don't match", "does not match", "non coincid", "non corrispond"}},
	{RuleSameAsCurrent, []string{"same as the old", "same as the current", "same as your current", "same as the previous", "identical to the", "uguale a quella", "uguale alla", "diversa da quella attuale", "diversa dalla password attuale", "diversa dalla precedente"}},
	{RuleBreached, []string{"breach", "pwned", "compromis"}},
	{RuleBadCharacter, []string{"invalid character", "illegal character", "not allowed character", "characters are not allowed", "character is not allowed", "contains invalid", "caratteri non consentiti", "carattere non consentito", "caratteri non ammessi", "carattere non ammesso", "caratteri non validi", "carattere non valido"}},
	{RuleNeedsUpper, []string{"upper", "capital", "maiuscol"}},
	{RuleNeedsLower, []string{"lower", "minuscol"}},
	{RuleNeedsSpecial, []string{"special", "punctuation", "symbol", "non-alphanumeric", "non alphanumeric", "speciale", "speciali", "simbol", "punteggiatura"}},
	{RuleNeedsDigit, []string{"digit", "numeric", "number", "numer", "cifr"}},
	{RuleTooShort, []string{"too short", "shorter than", "at least", "minimum length", "troppo corta", "troppo breve", "almeno", "lunghezza minima"}},
	{RuleTooLong, []string{"too long", "longer than", "at most", "maximum length", "exceed", "troppo lunga", "al massimo", "lunghezza massima", "massimo"}},
	{RuleTooWeak, []string{"too weak", "weak", "strength", "too simple", "too easy", "easy to guess", "dictionary", "too common", "commonly used", "debole", "semplice", "dizionario", "comune", "facile"}},
}

// RuleFromMessage guesses which rule a provider's refusal names, from the
// words of its message (English or Italian: "Password must contain at least
// one upper case letter", "deve contenere almeno un carattere speciale").
// It returns "" when the text names none; callers then report the refusal
// without a rule.
func RuleFromMessage(msg string) string {
	text := NormalizeText(msg)
	for _, m := range messageRules {
		for _, w := range m.words {
			if strings.Contains(text, w) {
				return m.rule
			}
		}
	}
	return ""
}

// NormalizeText lower-cases s, turns invalid UTF-8, control characters and
// non-breaking spaces into spaces and collapses runs of white space, for
// matching words in a provider's text.
func NormalizeText(s string) string {
	var b strings.Builder
	space := true
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		s = s[size:]
		if r == utf8.RuneError || unicode.IsSpace(r) || unicode.IsControl(r) || r == '\u00a0' {
			if !space {
				b.WriteByte(' ')
				space = true
			}
			continue
		}
		b.WriteRune(unicode.ToLower(r))
		space = false
	}
	return strings.TrimSuffix(b.String(), " ")
}
