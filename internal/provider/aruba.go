package provider

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/credsync/credsync/internal/policy"
)

// aruba changes an Aruba PEC password the way Aruba's how-to tells users
// to, on the GestioneMail panel (https://gestionemail.pec.it): log in with
// "Nome completo casella" and "Password", open "Cambio Password" in the
// menu, fill "Password Attuale", "Nuova Password", "Ripeti Nuova Password"
// and press "Cambia Password" (notes: providers.md §11, seeds).
//
// Aruba publishes no API, so the pages are read like a person reads them:
// forms, fields, links and buttons are found by their visible text (labels,
// the text before a field, placeholders), never by field names, which the
// panel may change at any time. Hidden fields (tokens) are sent back as they
// came; every field the driver cannot fill (a verification code, a new
// question) means the page is not the one it knows: it then stops with
// PageNotRecognised before submitting that form. In particular a login page
// that asks for more than the mailbox and its password is left without
// posting anything, and a change page that asks for more is left without
// posting the change.
//
// Outcomes are read from the pages' structure, not from their wording,
// which a restyled or translated panel changes (internal/testkit/
// simulators/aruba serves several variants):
//   - After posting the login: the login form shown again (a form posting
//     where the login form posted, or one that looks like a login form),
//     directly or after a redirect, is the panel refusing the credentials:
//     WrongCurrent, Locked when its words say the mailbox is locked. A page
//     that is neither the login form nor leads to the change form is
//     PageNotRecognised (nothing further is submitted), unless it carries a
//     message whose words say locked, too soon or wrong password.
//   - After posting the change: a success message (by class or words) is
//     success; an error message, or the change form shown again with text
//     that was not on the page it was posted from, is the provider's
//     refusal: its known words refine the kind (WrongCurrent, RecentlyUsed,
//     TooRecent, Locked, a rule), else Rejected. No message, both kinds, or
//     a lost answer is OutcomeUnknown: the flow then tries the new password
//     once.
//
// Every error says what was sent (Error.Sent: nothing, the current password
// to the login form, or the change) and carries the provider's own words
// (Error.Words: the message nearest the form, scrubbed of the passwords)
// when it gave any.
//
// Aruba's rules (8-256 characters, upper and lower case, a digit, one
// special of !#$%&()*+,./-:;=?[]_{|}\@) are checked before any request.
//
// Limits: with two-step verification on, the panel asks for a code (→
// PageNotRecognised) and mail programs use a generated "password per
// programmi di posta" rather than the mailbox password, so changing the
// latter would not change what IMAP and SMTP accept. The panel's real markup
// was not available when this was written; internal/testkit/simulators/aruba
// follows the how-to's screens.
type aruba struct{}

// arubaURL is the GestioneMail panel.
const arubaURL = "https://gestionemail.pec.it/"

// arubaRules are Aruba PEC's password rules (providers.md §12).
var arubaRules = &policy.Rules{
	MinLength: 8, MaxLength: 256,
	NeedsUpper: true, NeedsLower: true, NeedsDigit: true, NeedsSpecial: true,
	Specials: `!#$%&()*+,./-:;=?[]_{|}\@`,
}

// arubaTimeout bounds a change when the context has no deadline.
const arubaTimeout = 90 * time.Second

func (aruba) Info() Info {
	return Info{
		Name:         "aruba",
		HostSuffixes: []string{".pec.aruba.it", ".arubapec.it"},
		WebPage:      arubaURL,
		Description:  "Aruba PEC: the GestioneMail panel (" + arubaURL + "), Cambio Password; not with two-step verification",
		NeedsURL:     false,
		NeedsCurrent: true,
		Rules:        arubaRules,
	}
}

func (aruba) Change(ctx context.Context, r Request) (err error) {
	sent := SentNothing
	defer func() { stampSent(err, sent) }()
	if v := policy.Check(r.Current, r.New, arubaRules); v != nil {
		return &Error{Kind: Rejected, Rule: v.Rule, Detail: "aruba: refused before sending: " + v.Message}
	}
	if r.Current == "" || r.Username == "" {
		return &Error{Kind: Rejected, Detail: "aruba: the mailbox name and its current password are required"}
	}
	base, err := arubaBase(r.URL)
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, arubaTimeout)
		defer cancel()
	}
	secrets := []string{r.Current, r.New}
	client := newHTTPClient(r.Roots)
	defer client.CloseIdleConnections()

	// 1. The login page.
	loginPage, err := arubaGet(ctx, client, base)
	if err != nil {
		return err
	}
	login, why := loginPage.loginForm()
	if login == nil {
		return &Error{Kind: PageNotRecognised, Detail: "aruba: login page: " + why + "; nothing was sent"}
	}
	vals := login.form.values(login.submit)
	vals.Set(login.user.name, r.Username)
	vals.Set(login.pass.name, r.Current)

	// 2. Log in with the current password.
	page, err := arubaPost(ctx, client, loginPage, login.form, vals, false)
	if reached(err) {
		sent = SentCurrent
	}
	if err != nil {
		return err
	}
	sent = SentCurrent
	// The login form back (after a redirect, too) is the panel refusing the
	// credentials, whatever its words.
	if again := page.loginLike(login.form); again != nil {
		return arubaLoginRefused(loginPage, page, again, secrets)
	}

	// 3. The change form: on this page, or behind "Cambio Password".
	form, _ := page.changeForm()
	changePage := page
	if form == nil {
		link, lwhy := page.changeLink()
		if link == nil {
			return page.unrecognised("aruba: after login: "+lwhy, secrets)
		}
		if changePage, err = arubaGet(ctx, client, link); err != nil {
			return err
		}
		if form, why = changePage.changeForm(); form == nil {
			return changePage.unrecognised("aruba: change page: "+why, secrets)
		}
	}
	vals = form.form.values(form.submit)
	vals.Set(form.current.name, r.Current)
	vals.Set(form.next.name, r.New)
	vals.Set(form.confirm.name, r.New)

	// 4. Submit the change and read the verdict.
	result, err := arubaPost(ctx, client, changePage, form.form, vals, true)
	if reached(err) {
		sent = SentChange
	}
	if err != nil {
		return err
	}
	sent = SentChange
	return result.verdict(changePage, secrets)
}

// arubaLoginRefused is the error for the login form shown again after the
// credentials were posted: WrongCurrent, unless the panel's words say the
// mailbox is locked, with the panel's words (the new text nearest the form)
// when it gave any.
func arubaLoginRefused(before, after *arubaPage, form *arubaForm, secrets []string) *Error {
	text := after.newText(before, form)
	if text == "" {
		text = after.messageText(arubaError)
	}
	words := providerWords(text, secrets...)
	if text != "" {
		if e := refusal(text, secrets...); e.Kind == Locked {
			e.Detail, e.Words = "aruba: login: "+e.Detail, words
			return e
		}
	}
	detail := "aruba: the panel showed its login form again after the current password was posted: it refused the login"
	if t := scrubText(text, secrets...); t != "" && words != "" {
		detail += ": " + t
	}
	return &Error{Kind: WrongCurrent, Detail: detail, Words: words}
}

// unrecognised is the error for a page after the login that is neither the
// login form nor leads to the change form. Without a message it is
// PageNotRecognised; a message whose words the driver knows (a locked
// mailbox, a change too soon, a wrong password) gives that kind; any other
// message stays PageNotRecognised but carries the panel's words.
func (p *arubaPage) unrecognised(why string, secrets []string) *Error {
	text := p.messageText(arubaError)
	if text == "" {
		text = p.messageText(arubaNeutral)
	}
	e := &Error{Kind: PageNotRecognised, Detail: why + "; the password was not changed"}
	if text == "" {
		return e
	}
	e.Words = providerWords(text, secrets...)
	if r := refusal(text, secrets...); r.Kind == Locked || r.Kind == TooRecent {
		r.Detail, r.Words = "aruba: "+r.Detail, e.Words
		return r
	}
	if saysWrongCurrent(classifiable(text, secrets...)) {
		return &Error{Kind: WrongCurrent, Detail: "aruba: " + scrubText(text, secrets...), Words: e.Words}
	}
	return e
}

// arubaBase is the panel's address: rawURL or the default, https only.
func arubaBase(rawURL string) (*url.URL, error) {
	if rawURL == "" {
		rawURL = arubaURL
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return nil, &Error{Kind: Unreachable, Detail: "aruba: the panel's URL must be https://host/"}
	}
	if u.Path == "" {
		u.Path = "/"
	}
	return u, nil
}

// arubaGet loads a page; a GET changes nothing.
func arubaGet(ctx context.Context, client *http.Client, u *url.URL) (*arubaPage, error) {
	req, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, &Error{Kind: Unreachable, Detail: "aruba: bad URL"}
	}
	resp, body, err := send(ctx, client, req, false)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &Error{Kind: Unreachable, Detail: "aruba: " + resp.Request.URL.Redacted() + " answered HTTP " + resp.Status}
	}
	return arubaReadPage(body, resp.Request.URL), nil
}

// arubaPost submits form from page with vals. changes says whether the
// submission may change the password (then a lost answer is OutcomeUnknown,
// and so is a server error).
func arubaPost(ctx context.Context, client *http.Client, page *arubaPage, form *arubaForm, vals url.Values, changes bool) (*arubaPage, error) {
	target := form.action
	if form.method != "post" {
		return nil, &Error{Kind: PageNotRecognised, Detail: "aruba: the form would put the password in the address (method GET); nothing was sent"}
	}
	if target.Scheme != "https" || target.Host != page.url.Host {
		return nil, &Error{Kind: PageNotRecognised, Detail: "aruba: the form posts to another site (" + target.Redacted() + "); nothing was sent"}
	}
	req, err := http.NewRequest(http.MethodPost, target.String(), strings.NewReader(vals.Encode()))
	if err != nil {
		return nil, &Error{Kind: Unreachable, Detail: "aruba: bad form action"}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Referer", page.url.String())
	resp, body, err := send(ctx, client, req, changes)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 500 {
		kind := Unreachable
		if changes {
			kind = OutcomeUnknown
		}
		return nil, &Error{Kind: kind, Detail: "aruba: the panel answered HTTP " + resp.Status, written: true}
	}
	return arubaReadPage(body, resp.Request.URL), nil
}

// Texts the driver recognises, normalised (arubaLabel).
var (
	arubaUserLabels    = arubaSet("nome completo casella", "nome casella", "casella", "casella pec", "indirizzo pec", "indirizzo casella", "nome utente", "utente", "username", "user name", "email", "e-mail", "indirizzo email", "indirizzo e-mail")
	arubaPassLabels    = arubaSet("password")
	arubaLoginButtons  = arubaSet("login", "log in", "accedi", "entra", "sign in")
	arubaCurrentLabels = arubaSet("password attuale", "vecchia password", "password corrente", "current password", "old password")
	arubaNewLabels     = arubaSet("nuova password", "new password")
	arubaConfirmLabels = arubaSet("ripeti nuova password", "ripeti la nuova password", "conferma nuova password", "conferma la nuova password", "ripeti password", "conferma password", "confirm new password", "repeat new password", "confirm password")
	arubaChangeButtons = arubaSet("cambia password", "modifica password", "cambia", "modifica", "conferma", "salva", "invia", "aggiorna", "change password")
	arubaChangeLinks   = arubaSet("cambio password", "cambia password", "modifica password", "change password")
)

// Words of the page's messages.
var (
	arubaSuccessWords = []string{"modificata correttamente", "cambiata correttamente", "aggiornata correttamente", "modificata con successo", "cambiata con successo", "aggiornata con successo", "è stata modificata", "è stata cambiata", "è stata aggiornata", "password changed", "password has been changed", "password has been updated", "password was changed", "password was updated", "successfully", "operazione completata", "operazione eseguita"}
	arubaErrorWords   = []string{"errat", "non è corrett", "non corrett", "non è valid", "non valid", "non rispett", "non coincid", "non corrispond", "non consentit", "non ammess", "non è possibile", "non è stato possibile", "impossibile", "errore", "deve contenere", "deve essere", "incorrect", "wrong", "invalid", "error", "failed", "must "}
)

func arubaSet(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

// arubaLabel normalises a visible text for comparison: lower case, single
// spaces, without the decorations around labels (":", "*", "(obbligatorio)").
func arubaLabel(s string) string {
	s = policy.NormalizeText(s)
	s = strings.TrimSuffix(s, "(obbligatorio)")
	return strings.Trim(s, " :*")
}

// arubaPage is what the driver reads of a page.
type arubaPage struct {
	url      *url.URL
	title    string
	forms    []*arubaForm
	links    []arubaLink
	messages []arubaMessage
	// blocks are the page's visible texts between block boundaries, in
	// order, with their position (the index of the token they start at).
	blocks []arubaBlock
}

type arubaBlock struct {
	text string
	pos  int
}

type arubaForm struct {
	action   *url.URL
	method   string
	controls []*arubaControl
	// start and end are the positions of <form> and </form>.
	start, end int
}

// arubaControl is one form control: input, select, textarea or button.
type arubaControl struct {
	tag, typ, name, value, id string
	checked, disabled         bool
	chosen                    bool // a select's value comes from a selected option
	hasOption                 bool
	// label is the strongest visible text naming the control: <label for>,
	// an enclosing <label>, aria-label, placeholder, title, else the text
	// just before it. For a button: its text or value.
	label     string
	labelFor  string // from <label for>
	labelWrap string // from an enclosing <label>
	labelAttr string // aria-label, placeholder or title
	before    string // the text just before the control
}

type arubaLink struct {
	text string
	href *url.URL
}

// Message kinds.
const (
	arubaNeutral = iota
	arubaError
	arubaSuccess
)

type arubaMessage struct {
	kind int
	text string
}

// fillable reports whether a person would have to type into c.
func (c *arubaControl) fillable() bool {
	if c.disabled {
		return false
	}
	switch c.tag {
	case "textarea":
		return true
	case "input":
		switch c.typ {
		case "", "text", "password", "email", "tel", "number", "search", "url":
			return true
		}
	}
	return false
}

// submits reports whether c is a submit button.
func (c *arubaControl) submits() bool {
	if c.disabled {
		return false
	}
	switch c.tag {
	case "button":
		return c.typ == "" || c.typ == "submit"
	case "input":
		return c.typ == "submit" || c.typ == "image"
	}
	return false
}

func (c *arubaControl) finish() {
	for _, l := range []string{c.labelFor, c.labelWrap, c.labelAttr, c.before} {
		if l = arubaLabel(l); l != "" {
			c.label = l
			return
		}
	}
}

// values are what a browser sends for f when submit is pressed, minus the
// fields the caller fills: hidden fields, checked boxes, selects' choices and
// the pressed button.
func (f *arubaForm) values(submit *arubaControl) url.Values {
	v := url.Values{}
	for _, c := range f.controls {
		if c.name == "" || c.disabled {
			continue
		}
		switch {
		case c.tag == "input" && c.typ == "hidden":
			v.Add(c.name, c.value)
		case c.tag == "input" && (c.typ == "checkbox" || c.typ == "radio") && c.checked:
			v.Add(c.name, c.value)
		case c.tag == "select":
			v.Add(c.name, c.value)
		}
	}
	if submit != nil && submit.name != "" {
		v.Set(submit.name, submit.value)
	}
	return v
}

// arubaRecognised is a form whose every fillable field has a known role.
type arubaRecognised struct {
	form                               *arubaForm
	user, pass, current, next, confirm *arubaControl
	submit                             *arubaControl
}

// match assigns each fillable control of f a role from labels (role name →
// accepted labels and input type). It fails unless every role is filled
// exactly once, no other field needs typing and one submit button's text is
// in buttons.
func (f *arubaForm) match(roles []arubaRole, buttons map[string]bool) (map[string]*arubaControl, string) {
	got := map[string]*arubaControl{}
	for _, c := range f.controls {
		if !c.fillable() {
			continue
		}
		matched := false
		for _, r := range roles {
			if r.labels[c.label] && (c.typ == "password") == r.password {
				if got[r.name] != nil {
					return nil, "two fields are labelled “" + c.label + "”"
				}
				got[r.name], matched = c, true
				break
			}
		}
		if !matched {
			if c.label == "" {
				return nil, "it has a field without a label"
			}
			return nil, "it asks for “" + c.label + "”, which credsync does not know"
		}
	}
	for _, r := range roles {
		if got[r.name] == nil {
			return nil, "no field “" + r.title + "”"
		}
	}
	var submit *arubaControl
	for _, c := range f.controls {
		if c.submits() && buttons[c.label] {
			if submit != nil {
				return nil, "two buttons could submit it"
			}
			submit = c
		}
	}
	if submit == nil {
		return nil, "no button to submit it"
	}
	got["submit"] = submit
	return got, ""
}

type arubaRole struct {
	name, title string
	labels      map[string]bool
	password    bool
}

var (
	arubaLoginRoles = []arubaRole{
		{"user", "Nome completo casella", arubaUserLabels, false},
		{"pass", "Password", arubaPassLabels, true},
	}
	arubaChangeRoles = []arubaRole{
		{"current", "Password Attuale", arubaCurrentLabels, true},
		{"new", "Nuova Password", arubaNewLabels, true},
		{"confirm", "Ripeti Nuova Password", arubaConfirmLabels, true},
	}
)

// find returns the one form of p that matches roles and buttons. why says
// what was wrong when none (or more than one) does, for the error message.
func (p *arubaPage) find(roles []arubaRole, buttons map[string]bool, what string) (*arubaRecognised, string) {
	var found *arubaRecognised
	why := "no " + what
	for _, f := range p.forms {
		got, reason := f.match(roles, buttons)
		if got == nil {
			if f.passwordFields() > 0 {
				why = "the " + what + " is not the expected one: " + reason
			}
			continue
		}
		if found != nil {
			return nil, "more than one " + what
		}
		found = &arubaRecognised{form: f, user: got["user"], pass: got["pass"], current: got["current"],
			next: got["new"], confirm: got["confirm"], submit: got["submit"]}
	}
	if found == nil {
		return nil, why
	}
	return found, ""
}

func (p *arubaPage) loginForm() (*arubaRecognised, string) {
	return p.find(arubaLoginRoles, arubaLoginButtons, "login form (“Nome completo casella”, “Password”, “Login”)")
}

func (p *arubaPage) changeForm() (*arubaRecognised, string) {
	return p.find(arubaChangeRoles, arubaChangeButtons, "change form (“Password Attuale”, “Nuova Password”, “Ripeti Nuova Password”, “Cambia Password”)")
}

func (f *arubaForm) passwordFields() int {
	n := 0
	for _, c := range f.controls {
		if c.tag == "input" && c.typ == "password" {
			n++
		}
	}
	return n
}

// looksLikeLogin tells the login page shown again after a refused login
// (perhaps with a captcha added) from a logged-in page.
func (p *arubaPage) looksLikeLogin() bool { return p.loginLike(nil) != nil }

// loginLike is the form of p that is the login form shown again: one that
// posts where the login form posted (posted, when known) with one password
// field, or any form with one password field and a login button or a
// mailbox-name field.
func (p *arubaPage) loginLike(posted *arubaForm) *arubaForm {
	for _, f := range p.forms {
		if f.passwordFields() != 1 {
			continue
		}
		if posted != nil && f.action.String() == posted.action.String() {
			return f
		}
		for _, c := range f.controls {
			if c.submits() && arubaLoginButtons[c.label] || c.fillable() && arubaUserLabels[c.label] {
				return f
			}
		}
	}
	return nil
}

// changeLike is the change form shown again: a form with two or more
// password fields.
func (p *arubaPage) changeLike() *arubaForm {
	for _, f := range p.forms {
		if f.passwordFields() >= 2 {
			return f
		}
	}
	return nil
}

// newText is the panel's message about a form it showed again: the text of
// after that was not on before, the page the form was posted from. Text
// blocks next to each other make one message; the one nearest form wins
// (the earlier on a tie). "" when nothing new is shown.
func (after *arubaPage) newText(before *arubaPage, form *arubaForm) string {
	if before == nil || form == nil {
		return ""
	}
	seen := make(map[string]bool, len(before.blocks))
	for _, b := range before.blocks {
		seen[policy.NormalizeText(b.text)] = true
	}
	best, bestDist := "", -1
	var group []string
	var first, last int
	flush := func() {
		if len(group) == 0 {
			return
		}
		dist := 0
		switch {
		case last < form.start:
			dist = form.start - last
		case first > form.end:
			dist = first - form.end
		}
		if bestDist < 0 || dist < bestDist {
			best, bestDist = strings.Join(strings.Fields(strings.Join(group, " ")), " "), dist
		}
		group = nil
	}
	for _, b := range after.blocks {
		if seen[policy.NormalizeText(b.text)] {
			flush()
			continue
		}
		if len(group) == 0 {
			first = b.pos
		}
		group, last = append(group, b.text), b.pos
	}
	flush()
	return arubaCap(best)
}

// changeLink is the menu's "Cambio Password", on the same site.
func (p *arubaPage) changeLink() (*url.URL, string) {
	var found *url.URL
	for _, l := range p.links {
		if !arubaChangeLinks[arubaLabel(l.text)] {
			continue
		}
		if l.href.Scheme != "https" || l.href.Host != p.url.Host {
			return nil, "“Cambio Password” leads to another site"
		}
		if found != nil && found.String() != l.href.String() {
			return nil, "two different “Cambio Password” links"
		}
		found = l.href
	}
	if found == nil {
		return nil, "no “Cambio Password” link in the menu"
	}
	return found, ""
}

// messageText joins the messages of one kind.
func (p *arubaPage) messageText(kind int) string {
	var parts []string
	for _, m := range p.messages {
		if m.kind == kind {
			parts = append(parts, m.text)
		}
	}
	return strings.Join(parts, " ")
}

// verdict reads the page shown after the change form (from page before)
// was submitted:
//   - a success message (by its class or its words) and no error: changed;
//   - an error message (by its class or its words): the provider's refusal,
//     its words refining the kind (WrongCurrent, RecentlyUsed, TooRecent,
//     Locked, a rule) else Rejected;
//   - no message the driver can classify, but the change form shown again
//     with text that was not there before: Rejected (unless the words say
//     success), with that text as the provider's words;
//   - both, or nothing: OutcomeUnknown.
//
// The provider's words are the new text nearest the form when the form came
// back, else the error message's.
func (p *arubaPage) verdict(before *arubaPage, secrets []string) error {
	errText, okText := p.messageText(arubaError), p.messageText(arubaSuccess)
	text := p.newText(before, p.changeLike())
	switch {
	case errText != "" && okText == "":
		if text == "" {
			text = errText
		}
		return arubaRefused(errText, text, secrets)
	case okText != "" && errText == "":
		return nil
	case okText != "":
		return &Error{Kind: OutcomeUnknown, Detail: "aruba: the page shows both success and an error: " + scrubText(okText+" / "+errText, secrets...)}
	case text != "":
		if arubaWords(text) == arubaSuccess {
			return nil
		}
		return arubaRefused(text, text, secrets)
	}
	return &Error{Kind: OutcomeUnknown, Detail: "aruba: the page after “Cambia Password” says neither success nor failure (" + scrubText(p.title, secrets...) + ")"}
}

// arubaRefused is the error for a refused change: text decides the kind,
// words are the provider's.
func arubaRefused(text, words string, secrets []string) *Error {
	w := providerWords(words, secrets...)
	if saysWrongCurrent(classifiable(text, secrets...)) {
		return &Error{Kind: WrongCurrent, Detail: "aruba: " + scrubText(text, secrets...), Words: w}
	}
	e := refusal(text, secrets...)
	e.Detail, e.Words = "aruba: "+e.Detail, w
	return e
}

// arubaClassify says whether an element is a message box and of which
// kind, from its class and role: an error/danger/invalid class is an
// error, a success class a success, an alert/message/notice box neutral (its
// words decide). -1: not a message box.
func arubaClassify(class, role string) int {
	kind := -1
	if role == "alert" || role == "status" {
		kind = arubaNeutral
	}
	for _, tok := range strings.Fields(strings.ToLower(class)) {
		switch {
		case containsAny(tok, []string{"error", "errore", "danger", "invalid", "fail"}):
			return arubaError
		case containsAny(tok, []string{"success", "successo"}):
			kind = arubaSuccess
		case kind < 0 && containsAny(tok, []string{"alert", "message", "messaggio", "msg", "notice", "notifica", "esito", "feedback", "warning", "avviso", "validation"}):
			kind = arubaNeutral
		}
	}
	return kind
}

// arubaWords classifies a neutral message by its words.
func arubaWords(text string) int {
	norm := policy.NormalizeText(text)
	switch {
	case containsAny(norm, arubaErrorWords):
		return arubaError
	case containsAny(norm, arubaSuccessWords):
		return arubaSuccess
	}
	return arubaNeutral
}

// Limits on what a page may make the reader hold.
const (
	arubaMaxDepth    = 256
	arubaMaxControls = 512
	arubaMaxText     = 1024 // bytes of text kept per label, link or message
	arubaMaxBlocks   = 4096 // text blocks and messages kept per page
)

// arubaOpen is an open element with what its text feeds.
type arubaOpen struct {
	tag      string
	text     *strings.Builder
	message  int // -1: not a message box
	label    bool
	labelFor string
	wrapped  []*arubaControl // controls inside this <label>
	link     *url.URL
	button   *arubaControl
	option   bool
	hasInput bool // a message box that holds controls is a container, not a message
	optVal   string
	optSel   bool
	optHasV  bool
}

// arubaInline are elements that do not separate the text before a field.
var arubaInline = map[atom.Atom]bool{atom.B: true, atom.Strong: true, atom.I: true, atom.Em: true, atom.U: true,
	atom.Span: true, atom.Font: true, atom.Small: true, atom.Abbr: true, atom.Sup: true}

// arubaReadPage reads a page as a person sees it: forms with their controls
// and labels, links, message boxes. Controls belong to the form open
// before them in the source (or named by their form attribute), as browsers
// associate them.
func arubaReadPage(body []byte, pageURL *url.URL) *arubaPage {
	p := &arubaPage{url: pageURL}
	z := html.NewTokenizer(bytes.NewReader(body))
	var (
		stack     []*arubaOpen
		form      *arubaForm
		formsByID = map[string]*arubaForm{}
		labelsFor = map[string]string{}
		byID      = map[string]*arubaControl{}
		controls  []*arubaControl
		select_   *arubaControl
		before    strings.Builder // text since the last block boundary
		boundary  bool
		inTitle   bool
		skip      int // inside script/style/template
		pos       int // index of the current token
		blk       strings.Builder
		blkPos    int
	)
	flushBlock := func() {
		if t := strings.TrimSpace(blk.String()); t != "" && len(p.blocks) < arubaMaxBlocks {
			p.blocks = append(p.blocks, arubaBlock{text: t, pos: blkPos})
		}
		blk.Reset()
	}
	resolve := func(ref string) *url.URL {
		u, err := url.Parse(strings.TrimSpace(ref))
		if err != nil {
			return nil
		}
		return pageURL.ResolveReference(u)
	}
	addText := func(t string) {
		if skip > 0 {
			return
		}
		if inTitle {
			p.title = arubaCap(p.title + t)
			return
		}
		for _, o := range stack {
			if o.text != nil && o.text.Len() < arubaMaxText {
				o.text.WriteString(t)
			}
		}
		switch {
		case blk.Len() == 0 && strings.TrimSpace(t) != "":
			blkPos = pos
			blk.WriteString(t)
		case blk.Len() > 0 && blk.Len() < arubaMaxText:
			blk.WriteString(t)
		}
		if strings.TrimSpace(t) != "" {
			if boundary {
				before.Reset()
				boundary = false
			}
			if before.Len() < arubaMaxText {
				before.WriteString(t)
			}
		}
	}
	closeTop := func() {
		o := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		text := ""
		if o.text != nil {
			text = o.text.String()
		}
		switch {
		case o.label:
			for _, c := range o.wrapped {
				if c.labelWrap == "" {
					c.labelWrap = text
				}
			}
			if o.labelFor != "" {
				if _, seen := labelsFor[o.labelFor]; !seen {
					labelsFor[o.labelFor] = text
				}
			}
		case o.link != nil:
			if strings.TrimSpace(text) != "" {
				p.links = append(p.links, arubaLink{text: text, href: o.link})
			}
		case o.button != nil:
			if o.button.labelAttr == "" {
				o.button.labelAttr = text
			}
		case o.option && select_ != nil:
			v := o.optVal
			if !o.optHasV {
				v = strings.TrimSpace(text)
			}
			if !select_.chosen && (o.optSel || !select_.hasOption) {
				select_.value, select_.chosen = v, o.optSel
			}
			select_.hasOption = true
		case o.tag == "select":
			select_ = nil
		}
		if o.message >= 0 && !o.hasInput {
			if t := strings.TrimSpace(policy.NormalizeText(text)); t != "" {
				kind := o.message
				if kind == arubaNeutral {
					kind = arubaWords(text)
				} else if kind == arubaSuccess && arubaWords(text) == arubaError {
					kind = arubaError
				}
				if len(p.messages) < arubaMaxBlocks {
					p.messages = append(p.messages, arubaMessage{kind: kind, text: arubaCap(strings.TrimSpace(text))})
				}
			}
		}
	}
	addControl := func(c *arubaControl, formAttr string) {
		if len(controls) >= arubaMaxControls {
			return
		}
		owner := form
		if formAttr != "" {
			owner = formsByID[formAttr]
		}
		if owner == nil {
			return
		}
		c.before = before.String()
		before.Reset()
		owner.controls = append(owner.controls, c)
		controls = append(controls, c)
		if c.id != "" {
			if _, dup := byID[c.id]; !dup {
				byID[c.id] = c
			}
		}
		for i := len(stack) - 1; i >= 0; i-- {
			o := stack[i]
			if o.message >= 0 {
				o.hasInput = true
			}
			if o.label && (o.labelFor == "" || o.labelFor == c.id) {
				o.wrapped = append(o.wrapped, c)
			}
		}
	}

	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		pos++
		switch tt {
		case html.TextToken:
			addText(string(z.Text()))
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			a := arubaAttrs(tok)
			if !arubaInline[tok.DataAtom] {
				boundary = true
				flushBlock()
			}
			switch tok.DataAtom {
			case atom.Script, atom.Style, atom.Template:
				if tt == html.StartTagToken {
					skip++
				}
				continue
			case atom.Title:
				inTitle = tt == html.StartTagToken
				continue
			case atom.Form:
				if form == nil && tt == html.StartTagToken {
					action := resolve(a["action"])
					if _, has := a["action"]; !has || action == nil {
						action = pageURL
					}
					if action != nil {
						form = &arubaForm{action: action, method: strings.ToLower(a["method"]), start: pos, end: -1}
						p.forms = append(p.forms, form)
						if a["id"] != "" {
							formsByID[a["id"]] = form
						}
					}
				}
				continue
			case atom.Input:
				c := &arubaControl{tag: "input", typ: strings.ToLower(a["type"]), name: a["name"], value: a["value"], id: a["id"]}
				_, c.checked = a["checked"]
				_, c.disabled = a["disabled"]
				c.labelAttr = arubaFirst(a["aria-label"], a["placeholder"], a["title"])
				if c.submits() || c.typ == "button" || c.typ == "reset" {
					c.labelAttr = arubaFirst(a["value"], a["alt"], a["aria-label"], a["title"])
					if c.labelAttr == "" && c.typ == "submit" {
						c.labelAttr = "invia"
					}
				}
				addControl(c, a["form"])
				continue
			case atom.Textarea, atom.Select, atom.Button:
				c := &arubaControl{tag: tok.Data, typ: strings.ToLower(a["type"]), name: a["name"], value: a["value"], id: a["id"]}
				_, c.disabled = a["disabled"]
				c.labelAttr = arubaFirst(a["aria-label"], a["placeholder"], a["title"])
				addControl(c, a["form"])
				if tt == html.SelfClosingTagToken || len(stack) >= arubaMaxDepth {
					continue
				}
				o := &arubaOpen{tag: tok.Data, message: -1}
				switch tok.DataAtom {
				case atom.Button:
					c.labelAttr = a["aria-label"]
					o.text, o.button = &strings.Builder{}, c
				case atom.Select:
					select_ = c
				case atom.Textarea:
					skip++ // its content is the field's value, not page text
					o.tag = "textarea"
				}
				stack = append(stack, o)
				continue
			}
			if tt == html.SelfClosingTagToken || arubaVoid[tok.DataAtom] || len(stack) >= arubaMaxDepth {
				continue
			}
			o := &arubaOpen{tag: tok.Data, message: arubaClassify(a["class"], a["role"])}
			if o.message >= 0 {
				o.text = &strings.Builder{}
			}
			switch tok.DataAtom {
			case atom.Label:
				o.label, o.labelFor = true, a["for"]
				if o.text == nil {
					o.text = &strings.Builder{}
				}
			case atom.A:
				if href, ok := a["href"]; ok {
					if u := resolve(href); u != nil {
						o.link = u
						if o.text == nil {
							o.text = &strings.Builder{}
						}
						o.text.WriteString(arubaFirst(a["aria-label"], a["title"]))
					}
				}
			case atom.Option:
				o.option = true
				o.optVal, o.optHasV = a["value"]
				_, o.optSel = a["selected"]
				if o.text == nil {
					o.text = &strings.Builder{}
				}
			}
			stack = append(stack, o)
		case html.EndTagToken:
			tok := z.Token()
			if !arubaInline[tok.DataAtom] {
				boundary = true
				flushBlock()
			}
			switch tok.DataAtom {
			case atom.Script, atom.Style, atom.Template:
				if skip > 0 {
					skip--
				}
				continue
			case atom.Title:
				inTitle = false
				continue
			case atom.Form:
				if form != nil {
					form.end = pos
				}
				form = nil
				continue
			}
			for i := len(stack) - 1; i >= 0; i-- {
				if stack[i].tag == tok.Data {
					for len(stack) > i {
						if stack[len(stack)-1].tag == "textarea" && skip > 0 {
							skip--
						}
						closeTop()
					}
					break
				}
			}
		}
	}
	for len(stack) > 0 {
		closeTop()
	}
	flushBlock()
	for _, f := range p.forms {
		if f.end < 0 {
			f.end = pos
		}
	}
	for _, c := range controls {
		if c.id != "" {
			c.labelFor = labelsFor[c.id]
		}
		c.finish()
	}
	p.title = strings.TrimSpace(p.title)
	return p
}

// arubaVoid are elements without an end tag.
var arubaVoid = map[atom.Atom]bool{atom.Area: true, atom.Base: true, atom.Br: true, atom.Col: true, atom.Embed: true,
	atom.Hr: true, atom.Img: true, atom.Input: true, atom.Link: true, atom.Meta: true, atom.Param: true,
	atom.Source: true, atom.Track: true, atom.Wbr: true}

func arubaAttrs(t html.Token) map[string]string {
	m := make(map[string]string, len(t.Attr))
	for _, a := range t.Attr {
		if _, dup := m[a.Key]; !dup {
			m[a.Key] = a.Val
		}
	}
	return m
}

func arubaFirst(values ...string) string {
	for _, v := range values {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}

func arubaCap(s string) string {
	if len(s) > arubaMaxText {
		return strings.ToValidUTF8(s[:arubaMaxText], "")
	}
	return s
}
