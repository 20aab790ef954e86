// Package redact keeps passwords out of text that a server or a provider
// sent and that credsync shows: a verification's detail, a back-end's
// error.
//
// A server that echoes a password may not echo it verbatim, and what
// credsync shows is not the raw reply either: control characters are
// blanked, whitespace is collapsed, lines are joined, a library may quote
// the text with escapes. Set therefore matches a password whatever
// whitespace, control or invisible characters stand in it or around it
// (so "Tab\tSecret" is found as "Tab Secret", as "TabSecret" and across a
// line break), and in its Go-escaped and base64 forms; Clean masks on the
// raw text and again on every normalisation of it, and withholds the text
// when a form of the password would survive.
//
// A password under MinRunes characters (not counting whitespace and
// control characters) cannot be masked without damaging other words, and
// the damage gives it away ("conte***t deadline e***ceeded" for "x"): for
// such a password the caller shows no server text at all (Short, Withheld).
package redact

import (
	"encoding/base64"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MinRunes is the shortest password, in characters other than whitespace
// and control characters, that is masked in server text rather than
// withholding the text.
const MinRunes = 6

// Withheld stands for server text that is not shown.
const Withheld = "(server text withheld)"

// WithheldShort stands for server text not shown because the password is
// too short to mask in it.
const WithheldShort = "(server text withheld: the password is too short to mask in it)"

// mask replaces a password.
const mask = "***"

// Set is the forms of one or more secrets to keep out of text.
type Set struct {
	needles [][]byte // skeletons (see skeleton) of every form, longest first
	short   bool
}

// New returns the Set for secrets; empty secrets are ignored.
func New(secrets ...string) *Set {
	s := &Set{}
	for _, p := range secrets {
		if p == "" {
			continue
		}
		if utf8.RuneCount(skeleton(p, nil)) < MinRunes {
			s.short = true
		}
		q := strconv.Quote(p)
		a := strconv.QuoteToASCII(p)
		s.Add(p, q[1:len(q)-1], a[1:len(a)-1], base64.StdEncoding.EncodeToString([]byte(p)))
	}
	return s
}

// Add adds exact forms of a secret (an encoding of it, such as the base64
// of an AUTH PLAIN exchange), matched like the secrets themselves.
func (s *Set) Add(forms ...string) {
	for _, f := range forms {
		sk := skeleton(f, nil)
		if len(sk) == 0 || s.has(sk) {
			continue
		}
		s.needles = append(s.needles, sk)
	}
	// Longest first: a form that contains another is masked whole.
	for i := 1; i < len(s.needles); i++ {
		for j := i; j > 0 && len(s.needles[j]) > len(s.needles[j-1]); j-- {
			s.needles[j], s.needles[j-1] = s.needles[j-1], s.needles[j]
		}
	}
}

func (s *Set) has(sk []byte) bool {
	for _, n := range s.needles {
		if string(n) == string(sk) {
			return true
		}
	}
	return false
}

// Empty reports whether the set holds no secret.
func (s *Set) Empty() bool { return s == nil || len(s.needles) == 0 && !s.short }

// Short reports whether a secret is too short to be masked (MinRunes): the
// caller must not show server text at all.
func (s *Set) Short() bool { return s != nil && s.short }

// ignorable are the characters skipped when matching: whitespace, control
// and format (invisible) characters, and invalid UTF-8 (shown as U+FFFD).
func ignorable(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError
}

// skeleton is s without its ignorable characters; pos, when not nil,
// receives the offset in s of each byte kept.
func skeleton(s string, pos *[]int) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !ignorable(r) {
			out = append(out, s[i:i+n]...)
			if pos != nil {
				for k := range n {
					*pos = append(*pos, i+k)
				}
			}
		}
		i += n
	}
	return out
}

// Mask replaces every occurrence of a secret's forms in text, whatever
// ignorable characters stand in it, with "***". ok is false when a form
// is still there afterwards (masking recreated it): the text must then be
// withheld.
func (s *Set) Mask(text string) (masked string, ok bool) {
	if s.Empty() {
		return text, true
	}
	for _, n := range s.needles {
		text = maskNeedle(text, n)
	}
	return text, !s.Leaks(text)
}

// maskNeedle masks each occurrence of the skeleton n in text, left to
// right, from the first byte of the match to its last.
func maskNeedle(text string, n []byte) string {
	var pos []int
	sk := skeleton(text, &pos)
	var b strings.Builder
	last, from := 0, 0
	for {
		i := strings.Index(string(sk[from:]), string(n))
		if i < 0 {
			break
		}
		start, end := pos[from+i], pos[from+i+len(n)-1]+1
		// end may fall inside a multi-byte rune only for a secret that
		// is not valid UTF-8; extend to the rune's end.
		for end < len(text) && !utf8.RuneStart(text[end]) {
			end++
		}
		b.WriteString(text[last:start])
		b.WriteString(mask)
		last = end
		from += i + len(n)
	}
	if last == 0 {
		return text
	}
	b.WriteString(text[last:])
	return b.String()
}

// Leaks reports whether a form of a secret is in text, in any of the forms
// a reader may see: as is, whitespace and control characters collapsed or
// dropped, lines joined (also across the "; " that joins a detail's lines).
func (s *Set) Leaks(text string) bool {
	if s.Empty() {
		return false
	}
	sk := string(skeleton(text, nil))
	joined := string(skeleton(strings.ReplaceAll(text, "; ", ""), nil))
	for _, n := range s.needles {
		if strings.Contains(sk, string(n)) || strings.Contains(joined, string(n)) {
			return true
		}
	}
	return false
}

// Clean makes server text safe to show: the secrets are masked on the raw
// text, the text is normalised with norm (nil: as is), masked again, and
// checked in every normalised form. When a form of a secret would survive,
// or a secret is too short to mask, the text is replaced by Withheld (or
// WithheldShort).
func (s *Set) Clean(text string, norm func(string) string) string {
	if norm == nil {
		norm = func(t string) string { return t }
	}
	if s.Empty() {
		return norm(text)
	}
	if s.short {
		return WithheldShort
	}
	text, ok := s.Mask(text)
	if !ok {
		return Withheld
	}
	text, ok = s.Mask(norm(text))
	if !ok {
		return Withheld
	}
	return text
}
