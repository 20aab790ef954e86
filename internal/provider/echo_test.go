package provider

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// A provider (web panel, LDAP directory) that echoes a password: no form of
// it reaches an error's text; a password too short to mask takes the
// provider's text with it (issue 19, item 3).

func echoIgnorable(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError
}

func echoStrip(s string) string {
	return strings.Join(strings.FieldsFunc(s, echoIgnorable), "")
}

func echoCollapse(s string) string {
	return strings.Join(strings.FieldsFunc(s, echoIgnorable), " ")
}

// echoLeak reports whether a form of pw (as is, collapsed, stripped,
// escaped) is in a form of text (as is, collapsed, stripped, "; " joins
// dropped).
func echoLeak(text, pw string) bool {
	q := strconv.Quote(pw)
	q = q[1 : len(q)-1]
	for _, tf := range []string{text, echoCollapse(text), echoStrip(text), echoStrip(strings.ReplaceAll(text, "; ", ""))} {
		for _, pf := range []string{pw, echoCollapse(pw), echoStrip(pw), q, echoStrip(q)} {
			if pf != "" && strings.Contains(tf, pf) {
				return true
			}
		}
	}
	return false
}

func TestProviderTextNeverEchoesThePassword(t *testing.T) {
	const pw = "Tab\tSecret-42"
	for _, text := range []string{
		"wrong password " + pw,
		"wrong password Tab Secret-42",
		"wrong password Tab\r\nSecret-42",
		"wrong password TabSecret-42",
		"wrong password " + strconv.Quote(pw),
		"wrong password Tab\u00a0Secret\u200b-42",
	} {
		for name, got := range map[string]string{
			"scrubText": scrubText(text, "Old-password-1", pw),
			"describe":  describe(text, []string{"Old-password-1", pw}),
			"redactErr": redactErr(errors.New(text), []string{"Old-password-1", pw}).Error(),
			"refusal":   refusal(text, "Old-password-1", pw).Detail,
		} {
			if echoLeak(got, pw) {
				t.Errorf("%s(%q) = %q gives the password away", name, text, got)
			}
			if !strings.Contains(got, "wrong password") {
				t.Errorf("%s(%q) = %q lost the provider's words", name, text, got)
			}
		}
	}
}

func TestProviderTextWithheldForShortPassword(t *testing.T) {
	for _, pw := range []string{"x", "ab", "a b", "12345"} {
		text := "your password " + pw + " is wrong; context deadline exceeded"
		for name, got := range map[string]string{
			"scrubText": scrubText(text, "Long-enough-1", pw),
			"describe":  describe(text, []string{"Long-enough-1", pw}),
			"redactErr": redactErr(errors.New(text), []string{"Long-enough-1", pw}).Error(),
			"refusal":   refusal(text, "Long-enough-1", pw).Detail,
		} {
			if strings.Contains(got, "is wrong") || strings.Contains(got, "***") {
				t.Errorf("%s with password %q = %q: the provider's text (or a mask) is shown", name, pw, got)
			}
			if !strings.Contains(got, "(server text withheld") {
				t.Errorf("%s with password %q = %q, want it to say the text is withheld", name, pw, got)
			}
		}
	}
}
