package provider

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	sim "github.com/credsync/credsync/internal/testkit/simulators/aruba"
)

const (
	arubaUser = "utente@pec.it"
	arubaOld  = "Vecchia-Pass1!"
	arubaNew  = "Nuova-Pass2026!"
)

func arubaStart(t *testing.T, opts sim.Options) *sim.Server {
	opts.Users = defaultUsers(opts.Users, arubaUser, arubaOld)
	return closeAtEnd(t, sim.Start(opts))
}

func arubaChange(s *sim.Server, current, next string) error {
	return simChange(aruba{}, s.CAPool, s.URL, arubaUser, current, next)
}

// forVariants runs f once per markup variant of the simulated panel.
func forVariants(t *testing.T, f func(t *testing.T, v sim.Variant)) {
	for _, v := range sim.Variants {
		t.Run(v.String(), func(t *testing.T) { f(t, v) })
	}
}

func TestArubaChange(t *testing.T) {
	forVariants(t, func(t *testing.T, v sim.Variant) {
		s := arubaStart(t, sim.Options{Variant: v})
		btKind(t, arubaChange(s, arubaOld, arubaNew), "", "")
		if got := s.Password(arubaUser); got != arubaNew {
			t.Fatalf("the panel has %q", got)
		}
		if posts := s.Posts(); !slices.Equal(posts, []string{"/Login/Accedi", "/Account/CambioPassword"}) {
			t.Fatalf("posts %v; want one login and one change", posts)
		}
	})
}

// Words no driver knows, refusing a new password: they reach the user as
// the provider's.
const (
	arubaRefuseIT = "La combinazione scelta non è accettata dal sistema."
	arubaRefuseEN = "This choice is not accepted by the system, pick another one."
)

// TestArubaFailures runs every failure on every markup variant: the
// outcome is read from the pages' structure (the login form back, the
// change form back with a message), never from the simulator's words.
func TestArubaFailures(t *testing.T) {
	cases := []struct {
		name    string
		opts    sim.Options
		fault   sim.Fault
		current string
		next    string
		kind    Kind
		rule    string
		posts   int // POSTs the panel may see
		changed bool
		sent    string // Error.Sent
		words   string // Error.Words: "" none, "*" any non-empty text, else exactly
	}{
		{name: "wrong current password", current: "Sbagliata-1!", next: arubaNew, kind: WrongCurrent, posts: 1, sent: SentCurrent, words: "*"},
		{name: "locked mailbox", opts: sim.Options{Locked: []string{arubaUser}}, current: arubaOld, next: arubaNew, kind: Locked, posts: 1, sent: SentCurrent, words: "*"},
		{name: "rejected: stricter length", opts: sim.Options{MinLength: 16}, current: arubaOld, next: arubaNew, kind: Rejected, rule: "too_short", posts: 2, sent: SentChange, words: "*"},
		{name: "rejected: used before", current: arubaOld, next: arubaNew, kind: RecentlyUsed, posts: 2, sent: SentChange, words: "*"},
		{name: "rejected in unknown words (it)", opts: sim.Options{Refuse: arubaRefuseIT}, current: arubaOld, next: arubaNew, kind: Rejected, posts: 2, sent: SentChange, words: arubaRefuseIT},
		{name: "rejected in unknown words (en)", opts: sim.Options{Refuse: arubaRefuseEN}, current: arubaOld, next: arubaNew, kind: Rejected, posts: 2, sent: SentChange, words: arubaRefuseEN},
		{name: "lost after sending, applied", fault: sim.DropAfterChange, current: arubaOld, next: arubaNew, kind: OutcomeUnknown, posts: 2, changed: true, sent: SentChange},
		{name: "lost after sending, not applied", fault: sim.DropBeforeChange, current: arubaOld, next: arubaNew, kind: OutcomeUnknown, posts: 2, sent: SentChange},
		{name: "page says nothing", fault: sim.Unrecognisable, current: arubaOld, next: arubaNew, kind: OutcomeUnknown, posts: 2, changed: true, sent: SentChange},
		{name: "server error", fault: sim.ServerError, current: arubaOld, next: arubaNew, kind: OutcomeUnknown, posts: 2, sent: SentChange},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			forVariants(t, func(t *testing.T, v sim.Variant) {
				opts := c.opts
				opts.Variant = v
				if c.name == "rejected: used before" {
					// The panel remembers arubaNew: it was the password before arubaOld.
					opts.Users = map[string]string{arubaUser: arubaNew}
				}
				s := arubaStart(t, opts)
				setup := 0
				if c.name == "rejected: used before" {
					btKind(t, arubaChange(s, arubaNew, arubaOld), "", "")
					setup = len(s.Posts())
				}
				s.SetFault(c.fault)
				e := btKind(t, arubaChange(s, c.current, c.next), c.kind, c.rule, c.current, c.next)
				if n := len(s.Posts()) - setup; n != c.posts {
					t.Fatalf("%d POSTs (%v); want %d", n, s.Posts(), c.posts)
				}
				if changed := s.Password(arubaUser) == c.next; changed != c.changed {
					t.Fatalf("changed = %v; want %v", changed, c.changed)
				}
				btSentWords(t, e, c.sent, c.words, c.current, c.next)
			})
		})
	}
}

// btSentWords checks Error.Sent and Error.Words (words: "" none, "*" any
// text, else exactly that text); Words never carries a password.
func btSentWords(t *testing.T, e *Error, sent, words string, secrets ...string) {
	t.Helper()
	if e.Sent != sent {
		t.Errorf("Sent = %q; want %q (%v)", e.Sent, sent, e)
	}
	switch {
	case words == "*" && e.Words == "":
		t.Errorf("no provider's words in %v", e)
	case words != "*" && e.Words != words:
		t.Errorf("Words = %q; want %q", e.Words, words)
	}
	if len([]rune(e.Words)) > maxWords {
		t.Errorf("Words has %d characters", len([]rune(e.Words)))
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(e.Words, s) {
			t.Errorf("Words %q carries a password", e.Words)
		}
	}
}

// Aruba's rules are checked before anything is sent.
func TestArubaRulesBeforeAnyRequest(t *testing.T) {
	s := arubaStart(t, sim.Options{})
	for next, rule := range map[string]string{
		"Corta1!":          "too_short",
		"senzamaiuscole1!": "needs_upper",
		"SenzaNumeri!!":    "needs_digit",
		"SenzaSpeciali12":  "needs_special",
		"Con spazio1!":     "bad_character",
		"Virgolette\"1!":   "bad_character",
		arubaOld:           "same_as_current",
	} {
		btKind(t, arubaChange(s, arubaOld, next), Rejected, rule, arubaOld, next)
	}
	if n := s.Requests(); n != 0 {
		t.Fatalf("%d requests reached the panel", n)
	}
}

// A changed panel: the driver stops before submitting the form it does not
// know, on every markup variant, and says what it sent.
func TestArubaChangedLayout(t *testing.T) {
	for _, c := range []struct {
		name   string
		layout sim.Layout
		posts  []string
		sent   string
	}{
		{"login asks for a verification code", sim.VerificationCode, nil, SentNothing},
		{"no Cambio Password in the menu", sim.NoChangeLink, []string{"/Login/Accedi"}, SentCurrent},
		{"change form asks for more", sim.ChangedForm, []string{"/Login/Accedi"}, SentCurrent},
	} {
		t.Run(c.name, func(t *testing.T) {
			forVariants(t, func(t *testing.T, v sim.Variant) {
				s := arubaStart(t, sim.Options{Layout: c.layout, Variant: v})
				e := btKind(t, arubaChange(s, arubaOld, arubaNew), PageNotRecognised, "", arubaOld, arubaNew)
				if posts := s.Posts(); !slices.Equal(posts, c.posts) {
					t.Fatalf("posts %v; want %v", posts, c.posts)
				}
				if s.ChangePosts() != 0 || s.Password(arubaUser) != arubaOld {
					t.Fatal("the change was submitted")
				}
				if log := s.Log(); slices.Contains(log, "POST /Account/CambioPassword") {
					t.Fatalf("requests %v", log)
				}
				btSentWords(t, e, c.sent, "", arubaOld, arubaNew)
			})
		})
	}
}

func TestArubaUnreachable(t *testing.T) {
	err := aruba{}.Change(context.Background(), Request{Username: arubaUser, Current: arubaOld, New: arubaNew, URL: "https://" + btDeadAddr(t) + "/"})
	btKind(t, err, Unreachable, "", arubaOld, arubaNew)
}

func TestArubaRefusesUntrustedPanel(t *testing.T) {
	s := arubaStart(t, sim.Options{})
	err := aruba{}.Change(context.Background(), Request{Username: arubaUser, Current: arubaOld, New: arubaNew, URL: s.URL}) // system roots
	btKind(t, err, Unreachable, "", arubaOld, arubaNew)
	if s.Password(arubaUser) != arubaOld || len(s.Posts()) != 0 {
		t.Fatal("something was sent to an untrusted server")
	}
}

func TestArubaURL(t *testing.T) {
	for _, raw := range []string{"http://gestionemail.pec.it/", "ftp://x/", "https://user:pw@gestionemail.pec.it/", "::"} {
		if _, err := arubaBase(raw); KindOf(err) != Unreachable {
			t.Errorf("arubaBase(%q) = %v", raw, err)
		}
	}
	if u, err := arubaBase(""); err != nil || u.String() != arubaURL {
		t.Fatalf("default URL %v, %v", u, err)
	}
	if i := (aruba{}).Info(); i.Rules != arubaRules || i.NeedsURL || !i.NeedsCurrent {
		t.Fatalf("Info() = %+v", i)
	}
}

var arubaPageURL, _ = url.Parse("https://gestionemail.pec.it/Account/CambioPassword")

func arubaPageOf(body string) *arubaPage {
	return arubaReadPage([]byte(body), arubaPageURL)
}

// Labels are found however the page attaches them.
func TestArubaReadPageLabels(t *testing.T) {
	pages := map[string]string{
		"label for": `<form method=post><label for=a>Password Attuale</label><input type=password id=a name=x1>
			<label for=b>Nuova Password</label><input type=password id=b name=x2>
			<label for=c>Ripeti Nuova Password</label><input type=password id=c name=x3><button>Cambia Password</button></form>`,
		"wrapping label": `<form method=POST><label>Password attuale <input type=password name=x1></label>
			<label>Nuova password: <input type=password name=x2></label>
			<label><b>Ripeti</b> nuova password * <input type=password name=x3></label><input type=submit value="Cambia password"></form>`,
		"placeholders": `<form method=post><input type=password name=x1 placeholder="Password attuale">
			<input type=password name=x2 aria-label="Nuova password"><input type=password name=x3 title="Conferma nuova password">
			<input type=image alt="Cambia Password" src=b.png></form>`,
		"table cells": `<form method=post><table><tr><td>Password Attuale:</td><td><input type=password name=x1></td></tr>
			<tr><th>Nuova&nbsp;Password</th><td><input type=password name=x2></td></tr>
			<tr><td>Ripeti Nuova Password <span class=req>*</span></td><td><input type=password name=x3></td></tr>
			<tr><td colspan=2><button type=submit name=go value=1><i class=icon></i> Cambia Password</button></td></tr></table></form>`,
	}
	for name, body := range pages {
		t.Run(name, func(t *testing.T) {
			f, why := arubaPageOf(body).changeForm()
			if f == nil {
				t.Fatalf("changeForm() = nil: %s", why)
			}
			if f.current.name != "x1" || f.next.name != "x2" || f.confirm.name != "x3" {
				t.Fatalf("fields %s %s %s", f.current.name, f.next.name, f.confirm.name)
			}
		})
	}
}

func TestArubaReadPageRefusals(t *testing.T) {
	for name, body := range map[string]string{
		"extra field":      `<form method=post>Password Attuale <input type=password name=a> Nuova Password <input type=password name=b> Ripeti Nuova Password <input type=password name=c> Codice <input name=d><button>Cambia Password</button></form>`,
		"unlabelled field": `<form method=post>Password Attuale <input type=password name=a> Nuova Password <input type=password name=b> Ripeti Nuova Password <input type=password name=c><div><input name=d></div><button>Cambia Password</button></form>`,
		"no button":        `<form method=post>Password Attuale <input type=password name=a> Nuova Password <input type=password name=b> Ripeti Nuova Password <input type=password name=c></form>`,
		"two forms":        strings.Repeat(`<form method=post>Password Attuale <input type=password name=a> Nuova Password <input type=password name=b> Ripeti Nuova Password <input type=password name=c><button>Cambia Password</button></form>`, 2),
		"confirm is text":  `<form method=post>Password Attuale <input type=password name=a> Nuova Password <input type=password name=b> Ripeti Nuova Password <input name=c><button>Cambia Password</button></form>`,
		"duplicated label": `<form method=post>Password Attuale <input type=password name=a> Password Attuale <input type=password name=b> Ripeti Nuova Password <input type=password name=c><button>Cambia Password</button></form>`,
	} {
		if f, _ := arubaPageOf(body).changeForm(); f != nil {
			t.Errorf("%s: recognised", name)
		}
	}
	// A form that would send the password in the address is not submitted.
	p := arubaPageOf(`<form action=/x>Password Attuale <input type=password name=a> Nuova Password <input type=password name=b> Ripeti Nuova Password <input type=password name=c><button>Cambia Password</button></form>`)
	f, _ := p.changeForm()
	if f == nil {
		t.Fatal("GET form not read")
	}
	if _, err := arubaPost(context.Background(), nil, p, f.form, url.Values{}, true); KindOf(err) != PageNotRecognised {
		t.Fatalf("arubaPost(GET form) = %v", err)
	}
	// So is one that posts to another site.
	p = arubaPageOf(`<form method=post action="https://evil.example/steal">Password Attuale <input type=password name=a> Nuova Password <input type=password name=b> Ripeti Nuova Password <input type=password name=c><button>Cambia Password</button></form>`)
	if f, _ = p.changeForm(); f == nil {
		t.Fatal("form not read")
	}
	if _, err := arubaPost(context.Background(), nil, p, f.form, url.Values{}, true); KindOf(err) != PageNotRecognised {
		t.Fatalf("arubaPost(other site) = %v", err)
	}
}

func TestArubaFormValues(t *testing.T) {
	p := arubaPageOf(`<form method=post><input type=hidden name=tok value=T1>
		<label>Nome completo casella <input name=u></label> <label>Password <input type=password name=p></label>
		<select name=lang><option value="">--</option><option value=it selected>Italiano</option></select>
		<input type=checkbox name=remember value=1> <input type=checkbox name=tos value=y checked>
		<input name=off disabled value=z><button name=b value=go>Accedi</button></form>`)
	f, why := p.loginForm()
	if f == nil {
		t.Fatal(why)
	}
	got := f.form.values(f.submit).Encode()
	if got != "b=go&lang=it&tok=T1&tos=y" {
		t.Fatalf("values %s", got)
	}
}

func TestArubaVerdict(t *testing.T) {
	secrets := []string{arubaOld, arubaNew}
	for _, c := range []struct {
		name, body string
		kind       Kind
		rule       string
	}{
		{"success with the rules shown", `<div class="info-box">La password deve contenere almeno 8 caratteri e un carattere speciale</div><div class="alert alert-success">La password è stata modificata correttamente.</div>`, "", ""},
		{"success by words", `<div role="status">Operazione completata: password cambiata con successo</div>`, "", ""},
		{"wrong current", `<div class="alert alert-danger">La password attuale non è corretta.</div>`, WrongCurrent, ""},
		{"wrong current, field message", `<span class="field-validation-error">Password attuale errata</span>`, WrongCurrent, ""},
		{"same as current is no wrong current", `<div class="alert alert-danger">La nuova password deve essere diversa da quella attuale.</div>`, Rejected, "same_as_current"},
		{"mismatch", `<p class="errore">Le password non coincidono</p>`, Rejected, "mismatch"},
		{"needs special", `<div class="msg">Errore: la password deve contenere almeno un carattere speciale</div>`, Rejected, "needs_special"},
		{"history", `<div class="alert alert-danger">La nuova password è già stata utilizzata</div>`, RecentlyUsed, ""},
		{"both", `<div class="alert-success">Fatto: modificata correttamente</div><div class="alert-danger">Errore</div>`, OutcomeUnknown, ""},
		{"nothing", `<h2>Benvenuto</h2><p>Pagina iniziale</p>`, OutcomeUnknown, ""},
		{"neutral alert without verdict", `<div class="alert">Ricorda di aggiornare i tuoi programmi di posta</div>`, OutcomeUnknown, ""},
		{"message box around the form is no message", `<div class="message-area">Errore? <form><input name=q></form></div>`, OutcomeUnknown, ""},
		{"error echoes the password", `<div class="error">La password Nuova-Pass2026! non è valida</div>`, Rejected, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := arubaPageOf(`<html><head><title>GM</title></head><body>`+c.body+`</body></html>`).verdict(nil, secrets)
			btKind(t, err, c.kind, c.rule, secrets...)
		})
	}
}

// The change form shown again with text that was not there before is the
// provider's answer, whatever element and class carry it: its words refine
// the kind, and are passed on as the provider's.
func TestArubaVerdictByStructure(t *testing.T) {
	form := `<form method=post><label>Vecchia password <input type=password name=a></label>
		<label>Nuova password <input type=password name=b></label><label>Conferma nuova password <input type=password name=c></label>
		%s<button>Salva</button></form>`
	page := func(inForm, after string) *arubaPage {
		return arubaPageOf(`<h2>Modifica password</h2><p>Regole: da 8 a 256 caratteri.</p>` + fmt.Sprintf(form, inForm) + after + `<footer>Aruba PEC S.p.A.</footer>`)
	}
	before := page("", "")
	secrets := []string{arubaOld, arubaNew}
	for _, c := range []struct {
		name          string
		inForm, after string
		kind          Kind
		rule, words   string
	}{
		{"unknown words after the form", "", `<p class="nota ko">La combinazione scelta non è accettata.</p>`, Rejected, "", "La combinazione scelta non è accettata."},
		{"unknown words in a span inside", `<span>Choice   not
			accepted.</span>`, "", Rejected, "", "Choice not accepted."},
		{"the nearest of two", `<span class=x>Vicino al modulo</span>`, `<div>x</div><div>y</div><p>Lontano</p>`, Rejected, "", "Vicino al modulo"},
		{"known words refine", "", `<p>Password già usata di recente.</p>`, RecentlyUsed, "", "Password già usata di recente."},
		{"a rule", "", `<div class=b>Serve almeno un carattere speciale</div>`, Rejected, "needs_special", "Serve almeno un carattere speciale"},
		{"wrong current", "", `<p>Vecchia password errata.</p>`, WrongCurrent, "", "Vecchia password errata."},
		{"success words", "", `<p>La password è stata aggiornata.</p>`, "", "", ""},
		{"the password echoed", "", `<p>` + arubaNew + ` non è accettata</p>`, Rejected, "", "*** non è accettata"},
		{"nothing new", "", ``, OutcomeUnknown, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := btKind(t, page(c.inForm, c.after).verdict(before, secrets), c.kind, c.rule, secrets...)
			if e != nil && e.Words != c.words {
				t.Fatalf("Words = %q; want %q", e.Words, c.words)
			}
		})
	}
}

func TestProviderWords(t *testing.T) {
	long := strings.Repeat("parola ", 60)
	for _, c := range []struct {
		text    string
		secrets []string
		want    string
	}{
		{"  Password\t non\n accettata  ", []string{"Segreta-1!"}, "Password non accettata"},
		{"la tua Segreta-1! non va", []string{"Segreta-1!"}, "la tua *** non va"},
		{"echoed with a tab: two words", []string{"two\twords"}, "echoed with a tab: ***"}, // masked in its blanked form too (internal/redact)
		{"echoed in upper case: SEGRETA-1!", []string{"Segreta-1!"}, ""},
		{"any text", []string{"abc"}, ""},
		{long, []string{"Segreta-1!"}, strings.TrimSpace(long)[:199] + "…"},
	} {
		if got := providerWords(c.text, c.secrets...); got != c.want {
			t.Errorf("providerWords(%q) = %q; want %q", c.text, got, c.want)
		}
	}
}

func TestArubaChangeLink(t *testing.T) {
	p := arubaPageOf(`<ul><li><a href="/Home">Home</a></li><li><a href="../Account/CambioPassword?x=1"><img alt=""> Cambio Password</a></li></ul>`)
	u, why := p.changeLink()
	if u == nil || u.String() != "https://gestionemail.pec.it/Account/CambioPassword?x=1" {
		t.Fatalf("changeLink() = %v, %s", u, why)
	}
	for name, body := range map[string]string{
		"none":          `<a href="/Sicurezza">Sicurezza</a>`,
		"other site":    `<a href="https://evil.example/">Cambio Password</a>`,
		"two different": `<a href="/a">Cambio Password</a><a href="/b">Modifica password</a>`,
	} {
		if u, _ := arubaPageOf(body).changeLink(); u != nil {
			t.Errorf("%s: changeLink() = %v", name, u)
		}
	}
}

// arubaFuzzBefore is the page FuzzArubaPage's pages answer: a change form.
var arubaFuzzBefore = arubaPageOf(`<h2>Modifica password</h2><form method=post><label>Vecchia password <input type=password name=a></label>
	<label>Nuova password <input type=password name=b></label><label>Conferma nuova password <input type=password name=c></label><button>Salva</button></form>`)

// FuzzArubaPage: any page, however broken, is read without panicking, and
// the verdict never carries the passwords.
func FuzzArubaPage(f *testing.F) {
	f.Add([]byte(`<form method=post><label for=a>Nome completo casella</label><input id=a name=u><label for=b>Password</label><input type=password id=b name=p><button>Login</button></form>`))
	f.Add([]byte(`<div class="alert alert-danger">La password attuale non è corretta.</div>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p := arubaReadPage(body, arubaPageURL)
		p.loginForm()
		p.changeForm()
		p.changeLink()
		p.looksLikeLogin()
		if f, _ := p.changeForm(); f != nil {
			f.form.values(f.submit)
		}
		for _, fm := range p.forms {
			if fm.action == nil {
				t.Fatal("a form without action URL")
			}
		}
		for _, before := range []*arubaPage{p, arubaFuzzBefore} {
			err := p.verdict(before, []string{"Old-S3cret!", "New-S3cret!"})
			var e *Error
			if err != nil && (strings.Contains(err.Error(), "Old-S3cret!") || strings.Contains(err.Error(), "New-S3cret!")) {
				t.Fatalf("verdict carries a password: %v", err)
			}
			if errors.As(err, &e) && (strings.Contains(e.Words, "Old-S3cret!") || strings.Contains(e.Words, "New-S3cret!") || len([]rune(e.Words)) > maxWords) {
				t.Fatalf("the provider's words %q", e.Words)
			}
		}
		if e := arubaLoginRefused(arubaFuzzBefore, p, p.loginLike(nil), []string{"Old-S3cret!", "New-S3cret!"}); strings.Contains(e.Words+e.Detail, "S3cret!") {
			t.Fatalf("login refusal carries a password: %v %q", e, e.Words)
		}
	})
}
