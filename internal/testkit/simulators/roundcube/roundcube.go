// Package roundcube simulates Roundcube webmail with the password plugin
// (Settings ▸ Password) for the roundcube back-end's tests, as
// providers.md §1 describes it: a login page with a session cookie and a
// request token (_token, Roundcube's CSRF protection), a redirect after a
// good login with a rotated session, the plugin's form and its full-page
// answer, whose verdict is only in rcmail.display_message(text, type).
//
// Variants (Options.Variant, Variants) serve the markup and wording of
// other skins, versions and languages: <label for> in a table, wrapping
// labels, placeholder-only fields; English, Italian and a hoster's own
// wording; a 401 or (before Roundcube 1.5) a 200 for a failed login; a 302
// or a 303 after a good one. Roundcube's field names (_user, _pass,
// _curpasswd, _newpasswd, _confpasswd) are its core's, not a skin's, so
// every variant keeps them.
//
// Faults (SetFault) break the answer to the save. Everything runs over TLS
// on 127.0.0.1 with httptest's certificate (CAPool); Handler serves the same
// over a server of the caller's (plain http on loopback). It is a test
// fixture: it keeps passwords in memory and logs nothing.
package roundcube

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/credsync/credsync/internal/testkit/simulators/simhttp"
)

// Variant selects the skin, version and language.
type Variant int

const (
	// Elastic is Roundcube 1.6 with the elastic skin in English: <label for>
	// in a table, a failed login answered 401, a 302 after a good one.
	Elastic Variant = iota
	// Larry is an older Roundcube with the larry skin in Italian: wrapping
	// labels, a failed login answered 200 with the login form (before 1.5),
	// a 303 after a good one.
	Larry
	// Hosted is a hoster's own skin and wording: placeholder-only fields,
	// labels of its own ("Sign-in did not succeed.", "That password was
	// used recently."), a 401 for a failed login, a 303 after a good one.
	Hosted
)

// Variants are every variant, for tests that must pass on all.
var Variants = []Variant{Elastic, Larry, Hosted}

func (v Variant) String() string {
	switch v {
	case Elastic:
		return "elastic"
	case Larry:
		return "larry"
	case Hosted:
		return "hosted"
	}
	return fmt.Sprintf("variant%d", int(v))
}

// Fault breaks the answer to the password save.
type Fault int

const (
	NoFault Fault = iota
	// DropAfterSave applies the change, then closes the connection.
	DropAfterSave
	// NoVerdict applies the change and answers a page without a message.
	NoVerdict
	// ServerError changes nothing and answers HTTP 500.
	ServerError
	// StorageDown refuses every login with Roundcube's storage error
	// (the IMAP server behind it is down).
	StorageDown
	// QuietLoginFailure answers a refused login with the login form and
	// no message at all.
	QuietLoginFailure
	// LoginInterstitial answers a good login with a page that is neither a
	// form nor a message (a single sign-on interstitial).
	LoginInterstitial
)

// Options configures a Server.
type Options struct {
	// Users maps login names to passwords.
	Users map[string]string
	// Locked users are refused by the login rate limit.
	Locked  []string
	Variant Variant
	// NoPlugin: the password plugin is not enabled.
	NoPlugin bool
	// NoCurrentField: password_confirm_current is off.
	NoCurrentField bool
	// MinLength is password_minimum_length (default 8).
	MinLength int
	// Refuse, when set, is the password driver's own message refusing
	// every new password that passes the plugin's checks.
	Refuse string
}

// Server is a running simulated Roundcube.
type Server struct {
	simhttp.Base[Fault]
	h http.Handler

	// Guarded by Mu.
	opts     Options
	sessions map[string]*session
	history  map[string][]string
	log      []string
	saves    []map[string]string
}

type session struct {
	user  string
	token string
}

// Start runs a Roundcube on 127.0.0.1; its URL is https://127.0.0.1:port/.
func Start(opts Options) *Server {
	if opts.MinLength == 0 {
		opts.MinLength = 8
	}
	s := &Server{opts: opts, sessions: map[string]*session{}, history: map[string][]string{}}
	s.h = http.HandlerFunc(s.serve)
	simhttp.Start(&s.Base, s.h, "/", opts.Users)
	return s
}

// Handler serves the same Roundcube, for a server of the caller's.
func (s *Server) Handler() http.Handler { return s.h }

// Log lists every request, as "METHOD /?query", in order.
func (s *Server) Log() []string {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	return slices.Clone(s.log)
}

// Posts lists the POSTs received: "login" or "save", in order.
func (s *Server) Posts() []string {
	var out []string
	for _, l := range s.Log() {
		switch {
		case strings.HasPrefix(l, "POST ") && strings.Contains(l, "_task=login"):
			out = append(out, "login")
		case strings.HasPrefix(l, "POST "):
			out = append(out, "save")
		}
	}
	return out
}

// Saves are the password forms received: _curpasswd, _newpasswd,
// _confpasswd.
func (s *Server) Saves() []map[string]string {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	return slices.Clone(s.saves)
}

func random() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Roundcube's labels, per variant.
type label int

const (
	lLoginFailed label = iota
	lLocked
	lStorage
	lSaved
	lIncorrect
	lMismatch
	lShort
	lHistory
	lSame
	lInvalid
)

var labels = map[Variant]map[label]string{
	Elastic: {
		lLoginFailed: "Login failed.",
		lLocked:      "Too many failed login attempts. Try again later.",
		lStorage:     "Connection to storage server failed.",
		lSaved:       "Successfully saved.",
		lIncorrect:   "Current password incorrect.",
		lMismatch:    "Passwords do not match, please try again.",
		lShort:       "Password must be at least %d characters long.",
		lHistory:     "This password has already been used.",
		lSame:        "New password cannot be the same as old password.",
		lInvalid:     "Invalid request! No data was saved.",
	},
	Larry: {
		lLoginFailed: "Accesso non riuscito.",
		lLocked:      "Troppi tentativi di accesso falliti. Riprova più tardi.",
		lStorage:     "Connessione al server di archiviazione non riuscita.",
		lSaved:       "Salvataggio completato.",
		lIncorrect:   "Password attuale errata.",
		lMismatch:    "Le password non corrispondono, riprova.",
		lShort:       "La password deve essere lunga almeno %d caratteri.",
		lHistory:     "Questa password è già stata utilizzata.",
		lSame:        "La nuova password deve essere diversa da quella attuale.",
		lInvalid:     "Richiesta non valida! Nessun dato salvato.",
	},
	Hosted: {
		lLoginFailed: "Sign-in did not succeed.",
		lLocked:      "Your account is locked for 15 minutes.",
		lStorage:     "Connection to storage server failed.",
		lSaved:       "Your new password is active.",
		lIncorrect:   "The current password is not correct.",
		lMismatch:    "The two new passwords do not match.",
		lShort:       "Use at least %d characters.",
		lHistory:     "That password was used recently.",
		lSame:        "Choose a password you have not used here.",
		lInvalid:     "Invalid request! No data was saved.",
	},
}

func (s *Server) label(l label) string { return labels[s.opts.Variant][l] }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	s.log = append(s.log, r.Method+" /?"+r.URL.RawQuery)
	q := r.URL.Query()
	var ss *session
	if c, err := r.Cookie("roundcube_sessid"); err == nil {
		ss = s.sessions[c.Value]
	}
	switch {
	case r.Method == http.MethodGet && (q.Get("_task") == "login" || q.Get("_task") == "" && ss == nil):
		ss = s.newSession(w)
		s.page(w, http.StatusOK, s.loginPage(ss, "", ""))
	case r.Method == http.MethodPost && q.Get("_task") == "login":
		s.login(w, r, ss)
	case ss == nil || ss.user == "":
		// Roundcube shows the login page when the session is missing.
		ss = s.newSession(w)
		s.page(w, http.StatusOK, s.loginPage(ss, "", ""))
	case r.Method == http.MethodGet && q.Get("_task") == "mail":
		s.page(w, http.StatusOK, `<div id="mailview">Inbox</div><script>var rcmail = new rcube_webmail();</script>`)
	case r.Method == http.MethodGet && q.Get("_action") == "plugin.password":
		if s.opts.NoPlugin {
			s.page(w, http.StatusOK, script(display(s.label(lInvalid), "error")))
			return
		}
		s.page(w, http.StatusOK, s.passwordPage(ss, ""))
	case r.Method == http.MethodPost && q.Get("_action") == "plugin.password-save":
		s.save(w, r, ss)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) newSession(w http.ResponseWriter) *session {
	id := random()
	ss := &session{token: random()}
	s.sessions[id] = ss
	http.SetCookie(w, &http.Cookie{Name: "roundcube_sessid", Value: id, Path: "/", HttpOnly: true})
	return ss
}

func (s *Server) page(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/html; charset=UTF-8")
	w.WriteHeader(status)
	lang := map[Variant]string{Elastic: "en", Larry: "it", Hosted: "en"}[s.opts.Variant]
	io.WriteString(w, `<!DOCTYPE html><html lang="`+lang+`"><head><title>Webmail</title></head><body>`+body+`</body></html>`)
}

func script(cmds string) string {
	return "<script>\nvar rcmail = new rcube_webmail();\n" + cmds + "\n$(document).ready(function(){ rcmail.init(); });\n</script>"
}

func display(text, typ string) string {
	t, _ := json.Marshal(text)
	return fmt.Sprintf("rcmail.display_message(%s,%q,0);", t, typ)
}

func (s *Server) loginPage(ss *session, msg, typ string) string {
	var b strings.Builder
	hidden := fmt.Sprintf(`<input type="hidden" name="_token" value="%s"><input type="hidden" name="_task" value="login"><input type="hidden" name="_action" value="login"><input type="hidden" name="_timezone" id="rcmlogintz" value="_default_"><input type="hidden" name="_url" id="rcmloginurl" value="">`, ss.token)
	switch s.opts.Variant {
	case Larry:
		fmt.Fprintf(&b, `<div id="login-form"><div class="box-inner"><form name="form" method="post" action="./?_task=login">%s
<p><label>Nome utente <input name="_user" id="rcmloginuser" required size="40" autocomplete="off" type="text"></label></p>
<p><label>Password <input name="_pass" id="rcmloginpwd" required size="40" autocomplete="off" type="password"></label></p>
<p class="formbuttons"><input type="submit" id="rcmloginsubmit" class="button mainaction" value="Accedi"></p>
</form></div></div>`, hidden)
	case Hosted:
		fmt.Fprintf(&b, `<main class="signin"><img src="logo.svg" alt="Example Hosting"><form method="post" action="?_task=login" class="signin-form">%s
<input name="_user" type="email" placeholder="Email" autocomplete="username">
<input name="_pass" type="password" placeholder="Password" autocomplete="current-password">
<button type="submit">Sign in</button></form></main>`, hidden)
	default:
		fmt.Fprintf(&b, `<form id="login-form" name="login-form" method="post" class="propform" action="/?_task=login">%s<table><tbody><tr><td class="title"><label for="rcmloginuser">Username</label></td><td class="input"><input name="_user" id="rcmloginuser" required size="40" class="form-control" autocapitalize="off" autocomplete="off" value="" type="text"></td></tr><tr><td class="title"><label for="rcmloginpwd">Password</label></td><td class="input"><input name="_pass" id="rcmloginpwd" required size="40" class="form-control" autocapitalize="off" autocomplete="off" type="password"></td></tr></tbody></table><p class="formbuttons"><button type="submit" id="rcmloginsubmit" class="button mainaction submit">Login</button></p></form>`, hidden)
	}
	cmds := fmt.Sprintf(`rcmail.set_env({"task":"login","request_token":"%s"});`, ss.token)
	if msg != "" {
		cmds += "\n" + display(msg, typ)
	}
	b.WriteString(script(cmds))
	return b.String()
}

func (s *Server) login(w http.ResponseWriter, r *http.Request, ss *session) {
	if ss == nil || r.ParseForm() != nil || r.PostForm.Get("_token") != ss.token {
		s.page(w, http.StatusOK, `<div class="boxerror"><h3>REQUEST CHECK FAILED</h3><p>For your protection, access to this resource is secured against CSRF.</p></div>`)
		return
	}
	user, pass := r.PostForm.Get("_user"), r.PostForm.Get("_pass")
	want, known := s.Users[user]
	fail := func(l label) {
		status := http.StatusUnauthorized
		if s.opts.Variant == Larry {
			status = http.StatusOK // before Roundcube 1.5
		}
		ss.token = random()
		s.page(w, status, s.loginPage(ss, s.label(l), "warning"))
	}
	switch {
	case s.Fault == StorageDown:
		fail(lStorage)
	case slices.Contains(s.opts.Locked, user):
		fail(lLocked)
	case !known || subtle.ConstantTimeCompare([]byte(pass), []byte(want)) != 1:
		if s.Fault == QuietLoginFailure {
			ss.token = random()
			s.page(w, http.StatusUnauthorized, s.loginPage(ss, "", ""))
			return
		}
		fail(lLoginFailed)
	default:
		if s.Fault == LoginInterstitial {
			s.page(w, http.StatusOK, `<div class="loading"><img src="spinner.gif" alt=""></div>`)
			return
		}
		// A new session (the id rotates), logged in.
		ns := s.newSession(w)
		ns.user = user
		http.SetCookie(w, &http.Cookie{Name: "roundcube_sessauth", Value: random(), Path: "/", HttpOnly: true})
		code := http.StatusFound
		if s.opts.Variant != Elastic {
			code = http.StatusSeeOther
		}
		http.Redirect(w, r, "./?_task=mail&_token="+ns.token, code)
	}
}

func (s *Server) passwordPage(ss *session, cmds string) string {
	type field struct{ name, label string }
	fields := []field{{"_curpasswd", "Current Password:"}, {"_newpasswd", "New Password:"}, {"_confpasswd", "Confirm New Password:"}}
	if s.opts.Variant == Larry {
		fields = []field{{"_curpasswd", "Password attuale:"}, {"_newpasswd", "Nuova password:"}, {"_confpasswd", "Conferma nuova password:"}}
	}
	if s.opts.NoCurrentField {
		fields = fields[1:]
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<div id="preferences-box"><form id="password-form" name="password-form" method="post" action="./?_task=settings&amp;_action=plugin.password-save"><input type="hidden" name="_token" value="%s">`, ss.token)
	switch s.opts.Variant {
	case Larry:
		for _, f := range fields {
			fmt.Fprintf(&b, `<p><label>%s <input name="%s" size="20" autocomplete="off" type="password"></label></p>`, f.label, f.name)
		}
		b.WriteString(`<p class="formbuttons"><input type="button" class="button mainaction" value="Salva" onclick="rcmail.command('plugin.password-save')"></p>`)
	case Hosted:
		for _, f := range fields {
			fmt.Fprintf(&b, `<input name="%s" type="password" placeholder="%s">`, f.name, strings.TrimSuffix(f.label, ":"))
		}
		b.WriteString(`<button type="submit">Save</button>`)
	default:
		b.WriteString(`<table class="propform"><tbody>`)
		for _, f := range fields {
			fmt.Fprintf(&b, `<tr><td class="title"><label for="%s">%s</label></td><td><input name="%[1]s" id="%[1]s" size="20" autocomplete="off" type="password"></td></tr>`, f.name, f.label)
		}
		fmt.Fprintf(&b, `</tbody></table><ul id="ruleslist" class="hint proplist"><li class="required-length d-block">`+s.label(lShort)+`</li></ul>`, s.opts.MinLength)
	}
	b.WriteString(`</form></div>`)
	b.WriteString(script(cmds))
	return b.String()
}

func (s *Server) save(w http.ResponseWriter, r *http.Request, ss *session) {
	if r.ParseForm() != nil || r.PostForm.Get("_token") != ss.token {
		s.page(w, http.StatusOK, `<div class="boxerror"><h3>REQUEST CHECK FAILED</h3></div>`)
		return
	}
	cur, next, conf := r.PostForm.Get("_curpasswd"), r.PostForm.Get("_newpasswd"), r.PostForm.Get("_confpasswd")
	s.saves = append(s.saves, map[string]string{"_curpasswd": cur, "_newpasswd": next, "_confpasswd": conf})
	if s.Fault == ServerError {
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	answer := func(text, typ string) { s.page(w, http.StatusOK, s.passwordPage(ss, display(text, typ))) }
	have := s.Users[ss.user]
	switch {
	case next == "" || next != conf:
		answer(s.label(lMismatch), "error")
	case !s.opts.NoCurrentField && subtle.ConstantTimeCompare([]byte(cur), []byte(have)) != 1:
		answer(s.label(lIncorrect), "error")
	case len(next) < s.opts.MinLength:
		answer(fmt.Sprintf(s.label(lShort), s.opts.MinLength), "error")
	case next == have:
		answer(s.label(lSame), "error")
	case slices.Contains(s.history[ss.user], next):
		answer(s.label(lHistory), "error")
	case s.opts.Refuse != "":
		answer(s.opts.Refuse, "error")
	default:
		s.history[ss.user] = append(s.history[ss.user], have)
		s.Users[ss.user] = next
		switch s.Fault {
		case DropAfterSave:
			simhttp.Drop(w)
		case NoVerdict:
			s.page(w, http.StatusOK, s.passwordPage(ss, ""))
		default:
			answer(s.label(lSaved), "confirmation")
		}
	}
}
