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
	requests  int
	layout    Layout
	history   map[string][]string
	locked    map[string]bool
	sessions  map[string]*session
	posts     []string
}

type session struct {
	user  string // "" until logged in
	token string
}

// Start runs a panel on 127.0.0.1; its URL is https://127.0.0.1:port/.
func Start(opts Options) *Server {
	s := &Server{
		minLength: max(opts.MinLength, 8),
		layout:    opts.Layout,
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
	countAll := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Mu.Lock()
		s.requests++
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

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	ss := s.sess(w, r)
	if ss.user != "" {
		http.Redirect(w, r, "/Home", http.StatusFound)
		return
	}
	s.write(w, http.StatusOK, s.loginForm(ss, ""))
}

func (s *Server) loginForm(ss *session, alert string) string {
	n := s.names
	var b strings.Builder
	b.WriteString(`<div class="login-box"><h1>GESTIONE MAIL - POSTA CERTIFICATA</h1>`)
	if alert != "" {
		fmt.Fprintf(&b, `<div class="alert alert-danger" role="alert">%s</div>`, html.EscapeString(alert))
	}
	fmt.Fprintf(&b, `<p>Inserisci nei campi sottostanti i tuoi dati di accesso:</p>
<form method="post" action="/Login/Accedi" id="frmLogin" autocomplete="off">
<input type="hidden" name="%s" value="%s">
<div class="form-group"><label for="i%s">Nome completo casella</label><input type="text" class="form-control" id="i%s" name="%s" placeholder="es. utente@pec.it"></div>
<div class="form-group"><label for="i%s">Password</label><input type="password" class="form-control" id="i%s" name="%s"></div>
`, n["token"], ss.token, n["user"], n["user"], n["user"], n["pass"], n["pass"], n["pass"])
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
	switch {
	case s.layout == VerificationCode && r.PostForm.Get(s.names["otp"]) == "":
		s.write(w, http.StatusOK, s.loginForm(ss, "Inserisci il codice di verifica."))
	case s.locked[user]:
		s.write(w, http.StatusOK, s.loginForm(ss, "La casella è temporaneamente bloccata per troppi tentativi di accesso errati."))
	case !known || subtle.ConstantTimeCompare([]byte(pass), []byte(want)) != 1:
		s.write(w, http.StatusOK, s.loginForm(ss, "Nome casella o password errati."))
	default:
		ss.user = user
		http.Redirect(w, r, "/Home", http.StatusFound)
	}
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
	if r.ParseForm() != nil || r.PostForm.Get(s.names["token"]) != ss.token {
		s.write(w, http.StatusBadRequest, `<div class="alert alert-danger">Sessione scaduta. Ricarica la pagina.</div>`)
		return false
	}
	return true
}

func (s *Server) menu() string {
	link := `<li><a href="/Account/CambioPassword"><i class="icon-key"></i> Cambio Password</a></li>`
	if s.layout == NoChangeLink {
		link = `<li><a href="/Account/Sicurezza"><i class="icon-key"></i> Sicurezza</a></li>`
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
	s.write(w, http.StatusOK, s.menu()+`<div class="content"><h2>RIEPILOGO CASELLA</h2><p>Casella: `+html.EscapeString(ss.user)+`</p><p>Spazio occupato: 12%</p></div>`)
}

func (s *Server) changePage(w http.ResponseWriter, r *http.Request) {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	ss := s.loggedIn(w, r)
	if ss == nil {
		return
	}
	s.write(w, http.StatusOK, s.changeForm(ss, "", ""))
}

func (s *Server) changeForm(ss *session, alertClass, alert string) string {
	n := s.names
	var b strings.Builder
	b.WriteString(s.menu())
	b.WriteString(`<div class="content"><h2>CAMBIA LA PASSWORD DELLA TUA CASELLA PEC</h2>`)
	if alert != "" {
		fmt.Fprintf(&b, `<div class="alert %s">%s</div>`, alertClass, html.EscapeString(alert))
	}
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
`, n["token"], ss.token, current, n["current"], n["new"], confirm, n["confirm"])
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
	fail := func(msg string) { s.write(w, http.StatusOK, s.changeForm(ss, "alert-danger", msg)) }
	switch {
	case subtle.ConstantTimeCompare([]byte(current), []byte(s.Users[ss.user])) != 1:
		fail("La password attuale non è corretta.")
	case next != confirm:
		fail("I campi Nuova Password e Ripeti Nuova Password non coincidono.")
	case ruleError(next, s.minLength) != "":
		fail(ruleError(next, s.minLength))
	case next == current:
		fail("La nuova password deve essere diversa da quella attuale.")
	case s.used(ss.user, next):
		fail("La nuova password è già stata utilizzata in precedenza: scegline un'altra.")
	default:
		s.history[ss.user] = append(s.history[ss.user], current)
		s.Users[ss.user] = next
		switch fault {
		case DropAfterChange:
			s.drop(w, fault)
		case Unrecognisable:
			s.write(w, http.StatusOK, `<div class="content"><p>Operazione in corso…</p></div>`)
		default:
			s.write(w, http.StatusOK, s.changeForm(ss, "alert-success", "La password è stata modificata correttamente."))
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

// ruleError is Aruba's message for a new password that breaks a rule, or "".
func ruleError(pw string, minLength int) string {
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
	switch {
	case n < minLength:
		return fmt.Sprintf("La nuova password deve essere lunga almeno %d caratteri.", minLength)
	case n > 256:
		return "La nuova password può essere lunga al massimo 256 caratteri."
	case bad:
		return "La nuova password contiene caratteri non consentiti."
	case !upper:
		return "La nuova password non rispetta i requisiti: deve contenere almeno una lettera maiuscola."
	case !lower:
		return "La nuova password non rispetta i requisiti: deve contenere almeno una lettera minuscola."
	case !digit:
		return "La nuova password non rispetta i requisiti: deve contenere almeno un numero."
	case !special:
		return "La nuova password non rispetta i requisiti: deve contenere almeno un carattere speciale."
	}
	return ""
}
