// Package cpanel simulates cPanel's webmail UAPI call Email::passwd_pop
// (https://api.docs.cpanel.net/openapi/cpanel/operation/passwd_pop/) as a
// mailbox user reaches it on the webmail port 2096: POST
// /execute/Email/passwd_pop with HTTP Basic authentication as the mailbox
// (full address, current password) and form fields email (the local part),
// password (the new one) and optionally domain. Answers:
//
//   - authentication refused: HTTP 401 with cpsrvd's HTML login page; when
//     cPHulk has locked the account the page says so;
//   - otherwise HTTP 200 JSON in UAPI's /execute form:
//     {"status":1,"errors":null,"messages":null,"data":null,"metadata":{},"warnings":null}
//     or status 0 with "errors": ["…"], e.g. cPanel's strength refusal.
//
// It runs over TLS on 127.0.0.1 (CAPool trusts it); a test fixture that
// keeps passwords in memory and logs nothing.
package cpanel

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/credsync/credsync/internal/testkit/simulators/simhttp"
)

// Fault breaks the answer to a change.
type Fault int

const (
	NoFault Fault = iota
	// DropAfterChange applies the change and closes the connection unanswered.
	DropAfterChange
	// DropBeforeChange closes the connection unanswered, changing nothing.
	DropBeforeChange
	// Garbage applies the change and answers 200 with an HTML page.
	Garbage
	// ServerError changes nothing and answers 500 in HTML.
	ServerError
)

// Options configures the server.
type Options struct {
	Users map[string]string // full address → password
	// MinStrength refuses new passwords shorter than this with cPanel's
	// strength message (cPanel rates strength 0-100; length stands in).
	MinStrength int
	// Locked addresses are locked out by cPHulk.
	Locked []string
}

// Server is a running simulated cPanel webmail.
type Server struct {
	simhttp.Base[Fault]
	opts  Options
	calls int
}

const endpointPath = "/execute/Email/passwd_pop"

// Start runs the server; its URL is https://127.0.0.1:port/execute/Email/passwd_pop.
func Start(opts Options) *Server {
	s := &Server{opts: opts}
	mux := http.NewServeMux()
	mux.HandleFunc(endpointPath, s.passwdPop)
	simhttp.Start(&s.Base, mux, endpointPath, opts.Users)
	return s
}

// Calls counts the requests to passwd_pop.
func (s *Server) Calls() int {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	return s.calls
}

const loginPage = `<!DOCTYPE html><html><head><title>Webmail Login</title></head><body><div id="login-status" class="error-notice">%s</div><form action="/login/" method="post"><input name="user"><input type="password" name="pass"><button>Log in</button></form></body></html>`

func (s *Server) passwdPop(w http.ResponseWriter, r *http.Request) {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	s.calls++
	user, pass, ok := r.BasicAuth()
	want, known := s.Users[user]
	switch {
	case ok && slices.Contains(s.opts.Locked, user):
		s.html(w, http.StatusUnauthorized, "This account is currently locked out because a brute force attempt was detected. Please wait 10 minutes and try again.")
		return
	case !ok || !known || subtle.ConstantTimeCompare([]byte(pass), []byte(want)) != 1:
		s.html(w, http.StatusUnauthorized, "The login is invalid.")
		return
	}
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		s.json(w, 0, "Unsupported method.")
		return
	}
	if r.ParseForm() != nil {
		s.json(w, 0, "Invalid parameters.")
		return
	}
	local, domain, _ := strings.Cut(user, "@")
	email, dom := r.Form.Get("email"), r.Form.Get("domain")
	if full, d, has := strings.Cut(email, "@"); has {
		email, dom = full, d
	}
	if dom == "" {
		dom = domain
	}
	next := r.Form.Get("password")
	switch s.Fault {
	case DropBeforeChange:
		simhttp.Drop(w)
		return
	case ServerError:
		s.html(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	switch {
	case email != local || dom != domain:
		s.json(w, 0, fmt.Sprintf("You do not have an email account named “%s@%s”.", email, dom))
	case next == "":
		s.json(w, 0, "You must specify the “password” parameter.")
	case len(next) < s.opts.MinStrength:
		s.json(w, 0, fmt.Sprintf("Sorry, the password you selected cannot be used because it is too weak and would be too easy to guess. Please select a password with strength rating of %d or higher.", s.opts.MinStrength))
	default:
		s.Users[user] = next
		switch s.Fault {
		case DropAfterChange:
			simhttp.Drop(w)
		case Garbage:
			s.html(w, http.StatusOK, "")
		default:
			s.json(w, 1, "")
		}
	}
}

func (s *Server) html(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, loginPage, msg)
}

func (s *Server) json(w http.ResponseWriter, status int, errMsg string) {
	reply := map[string]any{"status": status, "errors": nil, "messages": nil, "data": nil, "metadata": map[string]any{}, "warnings": nil}
	if errMsg != "" {
		reply["errors"] = []string{errMsg}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(reply)
}
