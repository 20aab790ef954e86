package sandbox

import (
	"encoding/json"
	"net/http"
	"time"
)

// newChangeServer serves the provider's password change:
//
//	POST /change  username=…&current=…&new=…  (application/x-www-form-urlencoded)
//	200 {"ok":true}
//	403 {"ok":false,"error":"wrong_current_password"}   (also for an unknown user)
//	400 {"ok":false,"error":"missing_field","field":"new"}
//	405 {"ok":false,"error":"method_not_allowed"}
//
// and when a password expires:
//
//	POST /expiry  username=…&password=…
//	200 {"ok":true,"state":"expires","at":"2027-01-12T09:30:00Z"}   (or "never", "expired")
//	403 {"ok":false,"error":"wrong_current_password"}
func newChangeServer(s *Sandbox) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/change", s.handleChange)
	mux.HandleFunc("/expiry", s.handleExpiry)
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          quiet,
	}
}

// replyJSON writes one JSON answer of the sandbox's endpoints.
func replyJSON(w http.ResponseWriter, status int, body map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// readPost parses a form POST of at most 64 KiB; anything else is answered
// (405, 400) and reported false.
func readPost(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		replyJSON(w, http.StatusMethodNotAllowed, map[string]any{"ok": false, "error": "method_not_allowed"})
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		replyJSON(w, http.StatusBadRequest, map[string]any{"ok": false, "error": "bad_request"})
		return false
	}
	return true
}

func (s *Sandbox) handleChange(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.changeRequests++
	s.mu.Unlock()
	if !readPost(w, r) {
		return
	}
	fields := make(map[string]string)
	for _, name := range []string{"username", "current", "new"} {
		v := r.PostForm.Get(name)
		if v == "" {
			replyJSON(w, http.StatusBadRequest, map[string]any{"ok": false, "error": "missing_field", "field": name})
			return
		}
		fields[name] = v
	}
	if !s.changePassword(fields["username"], fields["current"], fields["new"]) {
		replyJSON(w, http.StatusForbidden, map[string]any{"ok": false, "error": "wrong_current_password"})
		return
	}
	replyJSON(w, http.StatusOK, map[string]any{"ok": true})
}

func (s *Sandbox) handleExpiry(w http.ResponseWriter, r *http.Request) {
	if !readPost(w, r) {
		return
	}
	if r.PostForm.Get("username") == "" || r.PostForm.Get("password") == "" {
		replyJSON(w, http.StatusBadRequest, map[string]any{"ok": false, "error": "bad_request"})
		return
	}
	state, at, ok := s.expiryOf(s.ExpiryURL, r.PostForm.Get("username"), r.PostForm.Get("password"))
	if !ok {
		replyJSON(w, http.StatusForbidden, map[string]any{"ok": false, "error": "wrong_current_password"})
		return
	}
	body := map[string]any{"ok": true, "state": state}
	if !at.IsZero() {
		body["at"] = at.Format(time.RFC3339)
	}
	replyJSON(w, http.StatusOK, body)
}

// ChangeRequests is how many requests the password-change endpoint has
// received, whatever they asked: a test that must prove nothing reached the
// provider compares it before and after.
func (s *Sandbox) ChangeRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changeRequests
}
