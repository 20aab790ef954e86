package provider

import (
	"bytes"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/credsync/credsync/internal/policy"
	"github.com/credsync/credsync/internal/redact"
)

// Detect names the back-end that a mail server's host name implies, when
// only one can apply: the back-end whose Info.HostSuffixes the host ends
// with. Only unambiguous suffixes belong there:
//
//   - *.pec.aruba.it and *.arubapec.it are Aruba PEC's own servers
//     (imaps.pec.aruba.it, smtps.pec.aruba.it, pop3s.pec.aruba.it); every
//     mailbox they serve, including PEC boxes under a customer's own
//     domain, is managed at gestionemail.pec.it → aruba.
//   - Not *.aruba.it in general: Aruba's ordinary (non-PEC) mail is
//     managed elsewhere (webmail.aruba.it), which the aruba back-end does
//     not speak.
//   - Zimbra, cPanel, DirectAdmin, poppassd, Roundcube and LDAP run under
//     any host name ("mail.example.org"): no host tells them apart, so
//     Detect answers nothing and the user picks.
//
// The extension applies the same suffixes, sent in hello.
func Detect(host string) (name string, ok bool) {
	h := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(host), "."))
	for _, info := range All() {
		for _, suffix := range info.HostSuffixes {
			if strings.HasSuffix(h, suffix) && len(h) > len(suffix) {
				return info.Name, true
			}
		}
	}
	return "", false
}

// refusalKinds map words of a provider's refusal (English and Italian) to
// the kinds that are more precise than Rejected.
var refusalKinds = []struct {
	kind  Kind
	words []string
}{
	{RecentlyUsed, []string{"recently used", "used recently", "already used", "already been used", "been used before", "used previously", "password history", "in history", "già utilizzata", "già stata utilizzata", "già usata", "utilizzata di recente", "utilizzata in precedenza", "usata in precedenza"}},
	{TooRecent, []string{"too soon", "can't be changed yet", "cannot be changed yet", "minimum password age", "changed too recently", "troppo presto", "troppo recente", "non può essere ancora", "non è ancora possibile"}},
	{Locked, []string{"locked", "bloccat", "disabled", "disabilitat", "sospes", "suspended", "too many failed", "too many login", "troppi tentativi"}},
}

// refusal builds the error for a provider's refusal of the new password:
// RecentlyUsed, TooRecent or Locked when its words say so, else Rejected
// with the rule its words name. text is the provider's message; it is
// scrubbed of secrets before it goes into the error.
func refusal(text string, secrets ...string) *Error {
	detail := scrubText(text, secrets...)
	words := collapseText(classifiable(text, secrets...))
	norm := policy.NormalizeText(words) // classify what is left after masking: a password's own words must not count
	for _, k := range refusalKinds {
		for _, w := range k.words {
			if strings.Contains(norm, w) {
				return &Error{Kind: k.kind, Detail: detail}
			}
		}
	}
	return &Error{Kind: Rejected, Detail: detail, Rule: policy.RuleFromMessage(words)}
}

// Words that, together, say the current password was wrong: one naming
// it and one negative ("La password attuale non è corretta", "Your old
// password is incorrect"). "Deve essere diversa da quella attuale" names it
// without a negative and stays a refusal of the new one.
var (
	currentWords  = []string{"attuale", "vecchia", "corrente", "current", "old password", "existing password", "old pass"}
	negativeWords = []string{"errat", "non è corrett", "non corrett", "non valid", "non è valid", "sbagliat", "non corrispond", "incorrect", "wrong", "invalid", "does not match", "doesn't match", "not correct"}
)

// saysWrongCurrent reports whether a provider's message blames the
// current password.
func saysWrongCurrent(text string) bool {
	norm := policy.NormalizeText(text)
	return containsAny(norm, currentWords) && containsAny(norm, negativeWords)
}

func containsAny(text string, words []string) bool {
	for _, w := range words {
		if strings.Contains(text, w) {
			return true
		}
	}
	return false
}

// htmlVisibleText is the text of an HTML page as shown, normalised
// (policy.NormalizeText), at most about 4 KiB.
func htmlVisibleText(body []byte) string {
	var b strings.Builder
	z := html.NewTokenizer(bytes.NewReader(body))
	skip := false
	for b.Len() < 4096 {
		switch z.Next() {
		case html.ErrorToken:
			return policy.NormalizeText(b.String())
		case html.StartTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			skip = a == atom.Script || a == atom.Style
		case html.EndTagToken:
			skip = false
		case html.TextToken:
			if !skip {
				b.Write(z.Text())
				b.WriteByte(' ')
			}
		}
	}
	return policy.NormalizeText(b.String())
}

// maxWords bounds the provider's own words kept in Error.Words, in
// characters.
const maxWords = 200

// minScrubbable is the shortest password that can be masked in a
// provider's text without masking ordinary words: with a shorter one the
// provider's words are dropped altogether.
const minScrubbable = 6

// providerWords makes a provider's message fit for Error.Words: scrubbed
// (scrubText), whitespace collapsed, at most maxWords characters. It is ""
// when a password is too short to scrub safely or when anything that still
// looks like one remains after scrubbing (a password with spaces or control
// characters, or in another case): better no words than a leak.
func providerWords(text string, secrets ...string) string {
	for _, s := range secrets {
		if s != "" && utf8.RuneCountInString(s) < minScrubbable {
			return ""
		}
	}
	w := scrubText(text, secrets...)
	norm := policy.NormalizeText(w)
	for _, s := range secrets {
		if s == "" {
			continue
		}
		if strings.Contains(w, s) || strings.Contains(norm, policy.NormalizeText(s)) {
			return ""
		}
	}
	if utf8.RuneCountInString(w) > maxWords {
		w = string([]rune(w)[:maxWords-1]) + "…"
	}
	return w
}

// reached reports whether err is a failure after its request was written
// to the provider (send), i.e. whatever the request carried may have
// arrived.
func reached(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.written
}

// stampSent sets Error.Sent on a back-end's error when the back-end did not.
func stampSent(err error, sent string) {
	var e *Error
	if errors.As(err, &e) && e.Sent == "" {
		e.Sent = sent
	}
}

// maxDetail bounds the provider text kept in an error.
const maxDetail = 300

// scrubText makes a provider's text safe for an error message: every form
// of a secret masked on the raw text and again once control characters are
// blanked and whitespace collapsed (redact.Set.Clean), at most maxDetail
// bytes. A secret too short to mask (redact.MinRunes) takes the whole text
// with it: the result is redact.WithheldShort.
func scrubText(text string, secrets ...string) string {
	text = redact.New(secrets...).Clean(text, collapseText)
	if len(text) > maxDetail {
		cut := maxDetail
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut] + "…"
	}
	return text
}

// collapseText blanks control characters and invalid UTF-8 and collapses
// whitespace.
func collapseText(text string) string {
	text = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(text, " "))
	return strings.Join(strings.Fields(text), " ")
}

// classifiable is text with the secrets masked, for matching a provider's
// words only (never shown): a password's own words must not count. A
// secret too short to mask is left in: masking it would break the words.
func classifiable(text string, secrets ...string) string {
	var long []string
	for _, s := range secrets {
		if !redact.New(s).Short() {
			long = append(long, s)
		}
	}
	masked, _ := redact.New(long...).Mask(text)
	return masked
}
