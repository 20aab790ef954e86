// Package aruba simulates Aruba PEC's mailbox management panel
// (gestionemail.pec.it) for the aruba back-end's tests, following the
// screens of Aruba's own how-to: a login form "Nome completo casella" +
// "Password" with a "Login" button; after login a left menu whose link
// "Cambio Password" opens "CAMBIA LA PASSWORD DELLA TUA CASELLA PEC" with
// "Password Attuale", "Nuova Password", "Ripeti Nuova Password" and a
// "Cambia Password" button. Aruba's published rules apply (8-256
// characters, upper and lower case, a digit, one special character of
// !#$%&()*+,./-:;=?[]_{|}\@), checked in this order: current password,
// confirmation, rules, different from the current one, not used before.
//
// The real panel's markup is not public; this simulator is deliberately
// unlike any fixed template: field names and ids are random per server, the
// login form uses <label for>, the change form a table with the label text in
// the cell before each field, and the change page shows the rules in an
// information box. A driver can only find its way by visible text.
//
// Variants (Options.Variant, Variants) serve the same panel in other
// markup, as a restyled or translated panel would: other labels and how
// they attach to fields (label for, wrapping labels, placeholders only),
// messages in other elements (div, p, span) with classes no driver knows,
// Italian or English wording, a CSRF token renewed on every page, and a 303
// after the login (a refused login may come back through a redirect, too).
// A driver must read them by structure, not by this simulator's words.
//
// Layouts (SetLayout) serve a changed panel; faults (SetFault) break the
// answer to the change. Everything runs over TLS on 127.0.0.1 with
// httptest's certificate (CAPool). It is a test fixture: it keeps passwords
// in memory and logs nothing.
package aruba

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"html"
	"io"
	"net/http"
	"strings"

	"github.com/credsync/credsync/internal/testkit/simulators/simhttp"
)

// Layout selects what the panel looks like.
type Layout int

const (
	// Standard is the panel of Aruba's how-to.
	Standard Layout = iota
	// VerificationCode adds "Codice di verifica" to the login form, as a
	// two-step verification would.
	VerificationCode
	// NoChangeLink has no "Cambio Password" in the menu after login (the
	// function moved under "Sicurezza").
	NoChangeLink
	// ChangedForm asks, on the change page, for a "Codice OTP" besides the
	// three passwords.
	ChangedForm
)

// Variant selects the panel's markup and wording.
type Variant int

const (
	// HowTo is the panel of Aruba's how-to: Italian, <label for> on the
	// login form, table cells on the change form, messages in
	// div.alert-danger / div.alert-success above the form, a 302 after the
	// login.
	HowTo Variant = iota
	// Restyled is a restyled Italian panel: wrapping labels, other words
	// ("Casella PEC", "Accedi", "Vecchia password", "Salva", "Modifica
	// password"), messages in p.esito-ko / p.esito-ok below the form, a CSRF
	// token renewed on every page, a 303 after the login and a refused login
	// shown through a 303 back to the login page (post/redirect/get).
	Restyled
	// English is an English panel with placeholder-only fields, messages in
	// a span without any telling class inside the form, a 303 after the
	// login, and a locked mailbox shown on a page of its own.
	English
)

// Variants are every markup variant, for tests that must pass on all.
var Variants = []Variant{HowTo, Restyled, English}

func (v Variant) String() string {
	switch v {
	case HowTo:
		return "howto"
	case Restyled:
		return "restyled"
	case English:
		return "english"
	}
	return fmt.Sprintf("variant%d", int(v))
}

// Fault breaks the answer to the change form.
type Fault int

const (
	NoFault Fault = iota
	// DropAfterChange applies the change, then closes the connection
	// without answering.
	DropAfterChange
	// DropBeforeChange reads the form, changes nothing and closes the
	// connection without answering.
	DropBeforeChange
	// Unrecognisable applies the change and answers a page that says
	// neither success nor failure.
	Unrecognisable
	// ServerError changes nothing and answers HTTP 500 with a bare page.
	ServerError
)

// Options configures a Server.
type Options struct {
	// Users maps full mailbox names (utente@pec.it) to passwords.
	Users map[string]string
	// Locked mailboxes refuse to log in ("casella bloccata").
	Locked []string
	Layout Layout
	// Variant is the panel's markup and wording.
	Variant Variant
	// Refuse, when set, is the panel's own message refusing every new
	// password that passes the other checks, in words no driver knows.
	Refuse string
	// MinLength, when above Aruba's 8, is a stricter length rule the panel
	// enforces but the published rules do not mention.
	MinLength int
}

// Server is a running simulated panel.
type Server struct {
	simhttp.Base[Fault]
	names map[string]string // field role → random name

	// Guarded by Mu.
	minLength int
	variant   Variant
	refuse    string
	requests  int
	log       []string
	layout    Layout
	history   map[string][]string
	locked    map[string]bool
	sessions  map[string]*session
	posts     []string
}

type session struct {
	user  string // "" until logged in
	token string
	flash string // a refused login's message, for the page after the redirect
}

// Start runs a panel on 127.0.0.1; its URL is https://127.0.0.1:port/.
func Start(opts Options) *Server {
	s := &Server{
		minLength: max(opts.MinLength, 8),
		layout:    opts.Layout,
		variant:   opts.Variant,
		refuse:    opts.Refuse,
		history:   map[string][]string{},
		locked:    map[string]bool{},
		sessions:  map[string]*session{},
		names:     map[string]string{},
	}
	for _, u := range opts.Locked {
		s.locked[u] = true
	}
	for _, role := range []string{"user", "pass", "otp", "login", "current", "new", "confirm", "code", "change", "token"} {
		s.names[role] = "f" + random(6)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	mux.HandleFunc("GET /{$}", s.loginPage)
	mux.HandleFunc("POST /Login/Accedi", s.login)
	mux.HandleFunc("GET /Home", s.home)
	mux.HandleFunc("GET /Account/CambioPassword", s.changePage)
	mux.HandleFunc("POST /Account/CambioPassword", s.change)
	mux.HandleFunc("GET /Logout", s.logout)
	mux.HandleFunc("GET /Bloccata", s.lockedPage)
	countAll := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Mu.Lock()
		s.requests++
		s.log = append(s.log, r.Method+" "+r.URL.Path)
		s.Mu.Unlock()
		mux.ServeHTTP(w, r)
	})
	simhttp.Start(&s.Base, countAll, "/", opts.Users)
	return s
}

// SetLayout changes the panel's look from the next page on.
func (s *Server) SetLayout(l Layout) { s.Mu.Lock(); s.layout = l; s.Mu.Unlock() }

// Posts lists the paths of every POST received, in order.
func (s *Server) Posts() []string {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	return append([]string(nil), s.posts...)
}

// Log lists every request received, as "METHOD /path", in order.
func (s *Server) Log() []string {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	return append([]string(nil), s.log...)
}

// Requests counts every request received.
func (s *Server) Requests() int {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	return s.requests
}

// ChangePosts counts the change forms received.
func (s *Server) ChangePosts() int {
	n := 0
	for _, p := range s.Posts() {
		if p == "/Account/CambioPassword" {
			n++
		}
	}
	return n
}

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

const cookieName = "GMSESSIONID"

// sess returns the request's session, creating one (and its cookie) if needed.
func (s *Server) sess(w http.ResponseWriter, r *http.Request) *session {
	if c, err := r.Cookie(cookieName); err == nil {
		if ss := s.sessions[c.Value]; ss != nil {
			return ss
		}
	}
	id := random(16)
	ss := &session{token: random(16)}
	s.sessions[id] = ss
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/", Secure: true, HttpOnly: true})
	return ss
}

const pageHead = `<!DOCTYPE html>
<html lang="it"><head><meta charset="utf-8"><title>Gestione Mail - Posta Certificata</title>
<link rel="stylesheet" href="/static/gm.css"></head><body>
<div class="header"><img src="/static/logo-pec.png" alt="Aruba PEC"><span class="brand">GESTIONE MAIL - POSTA CERTIFICATA</span></div>
`

const pageFoot = `<div class="footer">Aruba PEC S.p.A. - P.IVA 01879020517</div></body></html>`

func (s *Server) write(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	io.WriteString(w, pageHead+body+pageFoot)
}

// Messages the panel shows, per variant.
type msgKey int

const (
	mLoginFailed msgKey = iota
	mLocked
	mOTP
	mWrongCurrent
	mMismatch
	mSame
	mUsed
	mSuccess
)

var messages = map[Variant]map[msgKey]string{
	HowTo: {
		mLoginFailed:  "Nome casella o password errati.",
		mLocked:       "La casella è temporaneamente bloccata per troppi tentativi di accesso errati.",
		mOTP:          "Inserisci il codice di verifica.",
		mWrongCurrent: "La password attuale non è corretta.",
		mMismatch:     "I campi Nuova Password e Ripeti Nuova Password non coincidono.",
		mSame:         "La nuova password deve essere diversa da quella attuale.",
		mUsed:         "La nuova password è già stata utilizzata in precedenza: scegline un'altra.",
		mSuccess:      "La password è stata modificata correttamente.",
	},
	Restyled: {
		mLoginFailed:  "Accesso negato.",
		mLocked:       "Casella bloccata: troppi tentativi di accesso.",
		mOTP:          "Serve il codice di verifica.",
		mWrongCurrent: "Vecchia password errata.",
		mMismatch:     "Le due password nuove non coincidono.",
		mSame:         "La nuova password deve essere diversa da quella attuale.",
		mUsed:         "Password già usata di recente: scegline un'altra.",
		mSuccess:      "La password è stata aggiornata.",
	},
	English: {
		mLoginFailed:  "Sign-in did not succeed. Check your details and try again.",
		mLocked:       "This mailbox is locked after too many failed sign-ins. Try again in 30 minutes.",
		mOTP:          "Enter the verification code.",
		mWrongCurrent: "The current password is not correct.",
		mMismatch:     "The new passwords do not match.",
		mSame:         "The new password must differ from the current one.",
		mUsed:         "That password was used recently: choose another one.",
		mSuccess:      "Your password has been changed.",
	},
}

func (s *Server) msg(k msgKey) string { return messages[s.variant][k] }

// tokenName is the CSRF token's field name.
func (s *Server) tokenName() string {
	switch s.variant {
	case Restyled:
		return "__RequestVerificationToken"
	case English:
		return "csrf_token"
	}
	return s.names["token"]
}

// token is the CSRF token for a form about to be served: the session's, or
// a new one for every page (Restyled).
func (s *Server) token(ss *session) string {
	if s.variant == Restyled {
		ss.token = random(16)
	}
	return ss.token
}

// message renders a message box: ok says whether it is good news.
func (s *Server) message(text string, ok bool) string {
	if text == "" {
		return ""
	}
	t := html.EscapeString(text)
	switch s.variant {
	case Restyled:
		if ok {
			return `<p class="nota ok">` + t + `</p>`
		}
		return `<p class="nota ko">` + t + `</p>`
	case English:
		return `<span class="hint">` + t + `</span>`
	}
	if ok {
		return `<div class="alert alert-success">` + t + `</div>`
	}
	return `<div class="alert alert-danger" role="alert">` + t + `</div>`
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	ss := s.sess(w, r)
	if ss.user != "" {
		http.Redirect(w, r, "/Home", http.StatusFound)
		return
	}
	flash := ss.flash
	ss.flash = ""
	s.write(w, http.StatusOK, s.loginForm(ss, flash))
}

func (s *Server) loginForm(ss *session, alert string) string {
	n := s.names
	tok := s.token(ss)
	var b strings.Builder
	switch s.variant {
	case Restyled:
		fmt.Fprintf(&b, `<main class="accesso"><h1>Gestione Mail PEC</h1>
<form method="post" action="/Login/Accedi" class="f-accesso">
<input type="hidden" name="%s" value="%s">
<div class="riga"><label>Casella PEC <input type="text" name="%s" autocomplete="username"></label></div>
<div class="riga"><label>Password <input type="password" name="%s" autocomplete="current-password"></label></div>
`, s.tokenName(), tok, n["user"], n["pass"])
		if s.layout == VerificationCode {
			fmt.Fprintf(&b, `<div class="riga"><label>Codice di verifica <input type="text" name="%s"></label></div>
`, n["otp"])
		}
		fmt.Fprintf(&b, `<button type="submit" name="%s" value="1">Accedi</button>
</form>
%s
<nav><a href="/reset_password/index">Hai dimenticato la password?</a></nav></main>
`, n["login"], s.message(alert, false))
		return b.String()
	case English:
		fmt.Fprintf(&b, `<section id="signin"><h1>PEC mailbox management</h1><p>Sign in with your full mailbox name.</p>
<form method="post" action="/Login/Accedi">
<input type="hidden" name="%s" value="%s">
<input type="email" name="%s" placeholder="Email">
<input type="password" name="%s" placeholder="Password">
`, s.tokenName(), tok, n["user"], n["pass"])
		if s.layout == VerificationCode {
			fmt.Fprintf(&b, `<input type="text" inputmode="numeric" name="%s" placeholder="Verification code">
`, n["otp"])
		}
		fmt.Fprintf(&b, `<label><input type="checkbox" name="remember" value="1"> Keep me signed in</label>
%s
<button type="submit">Sign in</button>
</form>
<a href="/reset_password/index">Forgot your password?</a></section>
`, s.message(alert, false))
		return b.String()
	}
	b.WriteString(`<div class="login-box"><h1>GESTIONE MAIL - POSTA CERTIFICATA</h1>`)
	b.WriteString(s.message(alert, false))
	fmt.Fprintf(&b, `<p>Inserisci nei campi sottostanti i tuoi dati di accesso:</p>
<form method="post" action="/Login/Accedi" id="frmLogin" autocomplete="off">
<input type="hidden" name="%s" value="%s">
<div class="form-group"><label for="i%s">Nome completo casella</label><input type="text" class="form-control" id="i%s" name="%s" placeholder="es. utente@pec.it"></div>
<div class="form-group"><label for="i%s">Password</label><input type="password" class="form-control" id="i%s" name="%s"></div>
`, s.tokenName(), tok, n["user"], n["user"], n["user"], n["pass"], n["pass"], n["pass"])
	if s.layout == VerificationCode {
		fmt.Fprintf(&b, `<div class="form-group"><label for="i%s">Codice di verifica</label><input type="text" inputmode="numeric" id="i%s" name="%s"></div>
`, n["otp"], n["otp"], n["otp"])
	}
	fmt.Fprintf(&b, `<div class="checkbox"><label><input type="checkbox" name="ricorda" value="1"> Ricorda casella</label></div>
<button type="submit" class="btn btn-primary" name="%s" value="1">Login</button>
</form>
<div class="links"><a href="/reset_password/index">Password dimenticata?</a> <a href="https://webmail.pec.it/">Webmail</a></div></div>
`, n["login"])
	return b.String()
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	s.posts = append(s.posts, r.URL.Path)
	ss := s.sess(w, r)
	if !s.formFromPage(w, r, ss) {
		return
	}
	user := strings.TrimSpace(r.PostForm.Get(s.names["user"]))
	pass := r.PostForm.Get(s.names["pass"])
	want, known := s.Users[user]
	fail := func(msg string) {
		if s.variant == Restyled { // post/redirect/get
			ss.flash = msg
			http.Redirect(w, r, "/?esito=ko", http.StatusSeeOther)
			return
		}
		s.write(w, http.StatusOK, s.loginForm(ss, msg))
	}
	switch {
	case s.layout == VerificationCode && r.PostForm.Get(s.names["otp"]) == "":
		fail(s.msg(mOTP))
	case s.locked[user] && s.variant == English:
		http.Redirect(w, r, "/Bloccata", http.StatusSeeOther)
	case s.locked[user]:
		fail(s.msg(mLocked))
	case !known || subtle.ConstantTimeCompare([]byte(pass), []byte(want)) != 1:
		fail(s.msg(mLoginFailed))
	default:
		ss.user = user
		code := http.StatusFound
		if s.variant != HowTo {
			code = http.StatusSeeOther
		}
		http.Redirect(w, r, "/Home", code)
	}
}

// lockedPage is English's page for a locked mailbox: a message, no form.
func (s *Server) lockedPage(w http.ResponseWriter, r *http.Request) {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	s.write(w, http.StatusOK, `<section><h1>PEC mailbox management</h1><p class="notice">`+html.EscapeString(s.msg(mLocked))+`</p><a href="/">Back</a></section>`)
}

// loggedIn returns the session, or redirects to the login page.
func (s *Server) loggedIn(w http.ResponseWriter, r *http.Request) *session {
	ss := s.sess(w, r)
	if ss.user == "" {
		http.Redirect(w, r, "/", http.StatusFound)
		return nil
	}
	return ss
}

// formFromPage parses a posted form and checks that it carries the token of
// the page the session was served; if not it answers "session expired".
func (s *Server) formFromPage(w http.ResponseWriter, r *http.Request, ss *session) bool {
	if r.ParseForm() != nil || r.PostForm.Get(s.tokenName()) != ss.token {
		s.write(w, http.StatusBadRequest, `<div class="alert alert-danger">Sessione scaduta. Ricarica la pagina.</div>`)
		return false
	}
	return true
}

func (s *Server) menu() string {
	text := map[Variant]string{HowTo: "Cambio Password", Restyled: "Modifica password", English: "Change password"}[s.variant]
	href := "/Account/CambioPassword"
	if s.layout == NoChangeLink {
		text, href = map[Variant]string{HowTo: "Sicurezza", Restyled: "Sicurezza", English: "Security"}[s.variant], "/Account/Sicurezza"
	}
	link := `<li><a href="` + href + `"><i class="icon-key"></i> ` + text + `</a></li>`
	if s.variant == English {
		return `<nav class="side"><a href="/Home">Overview</a> <a href="/Account/Inoltro">Forwarding</a> ` +
			`<a href="` + href + `">` + text + `</a> <a href="/Logout">Sign out</a></nav>
`
	}
	return `<div class="sidebar"><ul class="menu">
<li><a href="/Home">Riepilogo casella</a></li>
<li><a href="/Account/Inoltro">Inoltro</a></li>
<li><a href="/Account/RispostaAutomatica">Risposta automatica</a></li>
` + link + `
<li><a href="/Logout">Esci</a></li></ul></div>
`
}

func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	ss := s.loggedIn(w, r)
	if ss == nil {
		return
	}
	if s.variant == English {
		s.write(w, http.StatusOK, s.menu()+`<div class="content"><h2>Overview</h2><p>Mailbox: `+html.EscapeString(ss.user)+`</p><p>Space used: 12%</p></div>`)
		return
	}
	s.write(w, http.StatusOK, s.menu()+`<div class="content"><h2>RIEPILOGO CASELLA</h2><p>Casella: `+html.EscapeString(ss.user)+`</p><p>Spazio occupato: 12%</p></div>`)
}

func (s *Server) changePage(w http.ResponseWriter, r *http.Request) {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	ss := s.loggedIn(w, r)
	if ss == nil {
		return
	}
	s.write(w, http.StatusOK, s.changeForm(ss, "", false))
}

func (s *Server) changeForm(ss *session, alert string, ok bool) string {
	n := s.names
	tok := s.token(ss)
	var b strings.Builder
	b.WriteString(s.menu())
	switch s.variant {
	case Restyled:
		fmt.Fprintf(&b, `<div class="content"><h2>Modifica password</h2>
<div class="riquadro">La password deve contenere da 8 a 256 caratteri, almeno una lettera maiuscola, una minuscola, un numero e un carattere speciale.</div>
<form method="post" action="/Account/CambioPassword">
<input type="hidden" name="%s" value="%s">
<div class="riga"><label for="v1">Vecchia password</label><input type="password" id="v1" name="%s"></div>
<div class="riga"><label for="v2">Nuova password</label><input type="password" id="v2" name="%s"></div>
<div class="riga"><label for="v3">Conferma nuova password</label><input type="password" id="v3" name="%s"></div>
`, s.tokenName(), tok, n["current"], n["new"], n["confirm"])
		if s.layout == ChangedForm {
			fmt.Fprintf(&b, `<div class="riga"><label for="v4">Codice OTP</label><input type="text" id="v4" name="%s"></div>
`, n["code"])
		}
		fmt.Fprintf(&b, `<button type="submit" name="%s" value="1">Salva</button>
</form>
%s</div>
`, n["change"], s.message(alert, ok))
		return b.String()
	case English:
		fmt.Fprintf(&b, `<div class="content"><h2>Change your password</h2>
<p>Use 8 to 256 characters with upper and lower case letters, a digit and a special character.</p>
<form method="post" action="/Account/CambioPassword">
<input type="hidden" name="%s" value="%s">
<input type="password" name="%s" placeholder="Current password">
<input type="password" name="%s" placeholder="New password">
<input type="password" name="%s" placeholder="Confirm new password">
`, s.tokenName(), tok, n["current"], n["new"], n["confirm"])
		if s.layout == ChangedForm {
			fmt.Fprintf(&b, `<input type="text" name="%s" placeholder="One-time code">
`, n["code"])
		}
		fmt.Fprintf(&b, `%s
<button type="submit">Change password</button>
</form></div>
`, s.message(alert, ok))
		return b.String()
	}
	b.WriteString(`<div class="content"><h2>CAMBIA LA PASSWORD DELLA TUA CASELLA PEC</h2>`)
	b.WriteString(s.message(alert, ok))
	b.WriteString(`<div class="info-box">La password deve contenere da 8 a 256 caratteri, almeno una lettera maiuscola, una lettera minuscola, un numero e un carattere speciale tra !#$%&amp;()*+,./-:;=?[]_{|}\@. Si consiglia di non usare parole comuni o dati personali.</div>
`)
	current, confirm := "Password Attuale", "Ripeti Nuova Password"
	if s.layout == ChangedForm {
		current, confirm = "Password attuale", "Conferma nuova password"
	}
	fmt.Fprintf(&b, `<form method="post" action="/Account/CambioPassword">
<input type="hidden" name="%s" value="%s">
<table class="form-table">
<tr><td class="lbl">%s:</td><td><input type="password" name="%s" size="30"></td></tr>
<tr><td class="lbl">Nuova Password:</td><td><input type="password" name="%s" size="30"></td></tr>
<tr><td class="lbl">%s:</td><td><input type="password" name="%s" size="30"></td></tr>
`, s.tokenName(), tok, current, n["current"], n["new"], confirm, n["confirm"])
	if s.layout == ChangedForm {
		fmt.Fprintf(&b, `<tr><td class="lbl">Codice OTP:</td><td><input type="text" name="%s" size="8"></td></tr>
`, n["code"])
	}
	fmt.Fprintf(&b, `<tr><td></td><td><input type="submit" name="%s" value="Cambia Password" class="btn"></td></tr>
</table></form></div>
`, n["change"])
	return b.String()
}

func (s *Server) change(w http.ResponseWriter, r *http.Request) {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	s.posts = append(s.posts, r.URL.Path)
	ss := s.loggedIn(w, r)
	if ss == nil || !s.formFromPage(w, r, ss) {
		return
	}
	current := r.PostForm.Get(s.names["current"])
	next := r.PostForm.Get(s.names["new"])
	confirm := r.PostForm.Get(s.names["confirm"])
	fault := s.Fault

	if fault == DropBeforeChange || fault == ServerError {
		s.drop(w, fault)
		return
	}
	fail := func(msg string) { s.write(w, http.StatusOK, s.changeForm(ss, msg, false)) }
	rule := ruleError(next, s.minLength, s.variant == English)
	switch {
	case subtle.ConstantTimeCompare([]byte(current), []byte(s.Users[ss.user])) != 1:
		fail(s.msg(mWrongCurrent))
	case next != confirm:
		fail(s.msg(mMismatch))
	case rule != "":
		fail(rule)
	case next == current:
		fail(s.msg(mSame))
	case s.used(ss.user, next):
		fail(s.msg(mUsed))
	case s.refuse != "":
		fail(s.refuse)
	default:
		s.history[ss.user] = append(s.history[ss.user], current)
		s.Users[ss.user] = next
		switch fault {
		case DropAfterChange:
			s.drop(w, fault)
		case Unrecognisable:
			s.write(w, http.StatusOK, `<div class="content"><p>Operazione in corso…</p></div>`)
		default:
			s.write(w, http.StatusOK, s.changeForm(ss, s.msg(mSuccess), true))
		}
	}
}

func (s *Server) used(user, pw string) bool {
	for _, old := range s.history[user] {
		if old == pw {
			return true
		}
	}
	return false
}

// drop answers a fault: a closed connection or a bare HTTP 500.
func (s *Server) drop(w http.ResponseWriter, f Fault) {
	if f == ServerError {
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, "<html><body>Internal Server Error</body></html>")
		return
	}
	simhttp.Drop(w)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	s.sess(w, r).user = ""
	http.Redirect(w, r, "/", http.StatusFound)
}

// Specials are the special characters Aruba accepts.
const Specials = `!#$%&()*+,./-:;=?[]_{|}\@`

// ruleError is Aruba's message for a new password that breaks a rule, or
// "", in Italian or English.
func ruleError(pw string, minLength int, english bool) string {
	n := len([]rune(pw))
	var upper, lower, digit, special, bad bool
	for _, c := range pw {
		switch {
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= 'a' && c <= 'z':
			lower = true
		case c >= '0' && c <= '9':
			digit = true
		case strings.ContainsRune(Specials, c):
			special = true
		default:
			bad = true
		}
	}
	var it, en string
	switch {
	case n < minLength:
		it = fmt.Sprintf("La nuova password deve essere lunga almeno %d caratteri.", minLength)
		en = fmt.Sprintf("The new password must be at least %d characters long.", minLength)
	case n > 256:
		it, en = "La nuova password può essere lunga al massimo 256 caratteri.", "The new password can be at most 256 characters long."
	case bad:
		it, en = "La nuova password contiene caratteri non consentiti.", "The new password contains characters that are not allowed."
	case !upper:
		it, en = "La nuova password non rispetta i requisiti: deve contenere almeno una lettera maiuscola.", "The new password must contain an upper case letter."
	case !lower:
		it, en = "La nuova password non rispetta i requisiti: deve contenere almeno una lettera minuscola.", "The new password must contain a lower case letter."
	case !digit:
		it, en = "La nuova password non rispetta i requisiti: deve contenere almeno un numero.", "The new password must contain a digit."
	case !special:
		it, en = "La nuova password non rispetta i requisiti: deve contenere almeno un carattere speciale.", "The new password must contain a special character."
	}
	if english {
		return en
	}
	return it
}
