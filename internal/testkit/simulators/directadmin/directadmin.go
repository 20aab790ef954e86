// Package directadmin simulates DirectAdmin's CMD_CHANGE_EMAIL_PASSWORD
// (directadm.in/commands/email; Roundcube's directadmin driver): an
// end-user call without a DirectAdmin login, the old password proving the
// identity. POST (or GET) /CMD_CHANGE_EMAIL_PASSWORD with email (the full
// address), oldpassword, password1, password2 and api; with api the answer
// is a URL-encoded array "error=0|1&text=…&details=…" (text/plain),
// without it an HTML page.
//
// It runs over TLS on 127.0.0.1 (CAPool trusts it); a test fixture that
// keeps passwords in memory and logs nothing. The error texts imitate
// DirectAdmin's style; the real wording varies between versions.
package directadmin

import (
	"crypto/subtle"
	"fmt"
	"io"
	"net/http"
	"net/url"

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
	// Garbage applies the change and answers its HTML page, as without api.
	Garbage
	// ServerError changes nothing and answers 500.
	ServerError
)

// Options configures the server.
type Options struct {
	Users map[string]string // full address → password
	// MinLength refuses shorter new passwords ("not secure enough").
	MinLength int
	// Blacklisted makes every call fail as from a blacklisted IP.
	Blacklisted bool
}

// Server is a running simulated DirectAdmin.
type Server struct {
	simhttp.Base[Fault]
	opts  Options
	calls int
}

// Start runs the server; its URL is the server's root, https://127.0.0.1:port/.
func Start(opts Options) *Server {
	s := &Server{opts: opts}
	mux := http.NewServeMux()
	mux.HandleFunc("/CMD_CHANGE_EMAIL_PASSWORD", s.change)
	simhttp.Start(&s.Base, mux, "/", opts.Users)
	return s
}

// Calls counts the requests to CMD_CHANGE_EMAIL_PASSWORD.
func (s *Server) Calls() int {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	return s.calls
}

func (s *Server) change(w http.ResponseWriter, r *http.Request) {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	s.calls++
	if r.ParseForm() != nil {
		s.reply(w, true, 1, "Invalid request", "")
		return
	}
	_, api := r.Form["api"]
	email := r.Form.Get("email")
	old := r.Form.Get("oldpassword")
	p1, p2 := r.Form.Get("password1"), r.Form.Get("password2")
	switch s.Fault {
	case DropBeforeChange:
		simhttp.Drop(w)
		return
	case ServerError:
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, "Internal Server Error")
		return
	}
	want, known := s.Users[email]
	switch {
	case s.opts.Blacklisted:
		s.reply(w, api, 1, "Your IP has been blacklisted", "Too many failed attempts from your IP address")
	case email == "":
		s.reply(w, api, 1, "Unable to change the password", "No email address given")
	case !known || subtle.ConstantTimeCompare([]byte(old), []byte(want)) != 1:
		s.reply(w, api, 1, "Unable to change the password", "Invalid email address or old password is incorrect")
	case p1 != p2:
		s.reply(w, api, 1, "Unable to change the password", "The new passwords do not match")
	case len(p1) < s.opts.MinLength:
		s.reply(w, api, 1, "Unable to change the password", fmt.Sprintf("Password is not secure enough: it must be at least %d characters long", s.opts.MinLength))
	default:
		s.Users[email] = p1
		switch s.Fault {
		case DropAfterChange:
			simhttp.Drop(w)
		case Garbage:
			s.reply(w, false, 0, "Password Changed", "")
		default:
			s.reply(w, api, 0, "Password Changed", "The password for "+email+" has been changed")
		}
	}
}

func (s *Server) reply(w http.ResponseWriter, api bool, errCode int, text, details string) {
	if !api {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "<html><head><title>DirectAdmin</title></head><body><h3>%s</h3><p>%s</p></body></html>", text, details)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	v := url.Values{"error": {fmt.Sprint(errCode)}, "text": {text}, "details": {details}}
	io.WriteString(w, v.Encode())
}
