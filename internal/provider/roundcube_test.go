package provider

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Markup as Roundcube 1.6.5 (elastic skin) sends it, shortened.
const (
	rcLoginPage = `<!DOCTYPE html><html lang="en"><head><title>Roundcube Webmail :: Welcome</title></head><body>
<form id="login-form" name="login-form" method="post" class="propform" action="%s">
<input type="hidden" name="_token" value="%s">
	<input type="hidden" name="_task" value="login"><input type="hidden" name="_action" value="login"><input type="hidden" name="_timezone" id="rcmlogintz" value="_default_"><input type="hidden" name="_url" id="rcmloginurl" value="_task=login"><table><tbody><tr><td class="title"><label for="rcmloginuser">Username</label></td><td class="input"><input name="_user" id="rcmloginuser" required size="40" class="form-control" autocapitalize="off" autocomplete="off" value="" type="text"></td></tr><tr><td class="title"><label for="rcmloginpwd">Password</label></td><td class="input"><input name="_pass" id="rcmloginpwd" required size="40" class="form-control" autocapitalize="off" autocomplete="off" type="password"></td></tr></tbody></table><p class="formbuttons"><button type="submit" id="rcmloginsubmit" class="button mainaction submit">Login</button></p>
	</form>
<script>
var rcmail = new rcube_webmail();
rcmail.set_env({"task":"login","locale":"en_US","request_token":"%[2]s"});
%s
$(document).ready(function(){
rcmail.init();
});
</script></body></html>`
	rcPasswordPage = `<!DOCTYPE html><html lang="en"><head><title>Roundcube Webmail :: Password</title></head><body>
<table><tr><td><form id="password-form" name="password-form" method="post" action="./?_task=settings&amp;_action=plugin.password-save">
<input type="hidden" name="_token" value="%s"><table class="propform"><tbody><tr><td class="title"><label for="curpasswd">Current Password:</label></td><td><input name="_curpasswd" id="curpasswd" size="20" autocomplete="off" type="password"></td></tr><tr><td class="title"><label for="newpasswd">New Password:</label></td><td><input name="_newpasswd" id="newpasswd" size="20" autocomplete="off" type="password"></td></tr><tr><td class="title"><label for="confpasswd">Confirm New Password:</label></td><td><input name="_confpasswd" id="confpasswd" size="20" autocomplete="off" type="password"></td></tr></tbody></table><ul id="ruleslist" class="hint proplist"><li class="required-length d-block">Password must be at least 8 characters long.</li></ul></form></td></tr></table>
<script>
var rcmail = new rcube_webmail();
%s
</script></body></html>`
)

func rcDisplay(text, typ string) string {
	return fmt.Sprintf(`rcmail.display_message(%q,%q);`, text, typ)
}

// fakeRoundcube imitates Roundcube's login and password plugin: session
// cookies, request tokens, the 302 after a login, 401 for a failed one, and
// the plugin's display_message verdict.
type fakeRoundcube struct {
	current string
	// loginMessage replaces "Login failed." on a 401 (another language, rate limit).
	loginMessage string
	// loginOK200: a failed login answers 200, as before Roundcube 1.5.
	loginOK200 bool
	noPlugin   bool
	// save answers the password-save POST; nil = "Successfully saved.".
	save func(w http.ResponseWriter, r *http.Request)

	rec *rcSaves // set by handler
}

type rcSaves struct {
	mu    sync.Mutex
	saves []map[string]string
}

func (f *fakeRoundcube) handler(t *testing.T) http.Handler {
	if f.rec == nil {
		f.rec = &rcSaves{}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		sess, _ := r.Cookie("roundcube_sessid")
		switch {
		case r.Method == http.MethodGet && q.Get("_task") == "login":
			http.SetCookie(w, &http.Cookie{Name: "roundcube_sessid", Value: "s1", Path: "/", HttpOnly: true})
			fmt.Fprintf(w, rcLoginPage, "/?_task=login", "T1", "")
		case r.Method == http.MethodPost && q.Get("_task") == "login":
			if sess == nil || sess.Value != "s1" || r.FormValue("_token") != "T1" || r.FormValue("_action") != "login" ||
				r.FormValue("_timezone") != "_default_" || r.FormValue("_user") != "bob@example.org" {
				t.Errorf("login POST: cookie %v, form %v", sess, r.PostForm)
				http.Error(w, "REQUEST CHECK FAILED", http.StatusOK)
				return
			}
			if r.FormValue("_pass") != f.current {
				msg := f.loginMessage
				if msg == "" {
					msg = "Login failed."
				}
				if !f.loginOK200 {
					w.WriteHeader(http.StatusUnauthorized)
				}
				fmt.Fprintf(w, rcLoginPage, "/?_task=login", "T1b", rcDisplay(msg, "warning"))
				return
			}
			http.SetCookie(w, &http.Cookie{Name: "roundcube_sessid", Value: "s2", Path: "/", HttpOnly: true})
			http.SetCookie(w, &http.Cookie{Name: "roundcube_sessauth", Value: "a2", Path: "/", HttpOnly: true})
			http.Redirect(w, r, "/?_task=mail&_token=T2", http.StatusFound)
		case sess == nil || sess.Value != "s2":
			// Roundcube shows the login page when the session is missing.
			fmt.Fprintf(w, rcLoginPage, "/?_task=login", "T9", "")
		case r.Method == http.MethodGet && q.Get("_action") == "plugin.password":
			if f.noPlugin {
				fmt.Fprint(w, `<html><body><script>rcmail.display_message("Invalid request! No data was saved.","error");</script></body></html>`)
				return
			}
			fmt.Fprintf(w, rcPasswordPage, "T2", "")
		case r.Method == http.MethodPost && q.Get("_action") == "plugin.password-save":
			if r.FormValue("_token") != "T2" {
				t.Errorf("password-save POST without the session's token: %v", r.PostForm)
			}
			f.rec.mu.Lock()
			f.rec.saves = append(f.rec.saves, map[string]string{
				"_curpasswd": r.FormValue("_curpasswd"), "_newpasswd": r.FormValue("_newpasswd"), "_confpasswd": r.FormValue("_confpasswd"),
			})
			f.rec.mu.Unlock()
			if f.save != nil {
				f.save(w, r)
				return
			}
			fmt.Fprintf(w, rcPasswordPage, "T2", rcDisplay("Successfully saved.", "confirmation"))
		default:
			http.NotFound(w, r)
		}
	})
}

func (f *fakeRoundcube) saveCount() int {
	f.rec.mu.Lock()
	defer f.rec.mu.Unlock()
	return len(f.rec.saves)
}

func saveWith(text, typ string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, rcPasswordPage, "T2", rcDisplay(text, typ))
	}
}

func TestRoundcubeChange(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fake    fakeRoundcube
		current string
		want    Kind
		detail  string
		saves   int
	}{
		{name: "ok", saves: 1},
		{name: "wrong current password", current: "Wrong1!", want: WrongCurrent, saves: 0},
		{name: "wrong current password, Roundcube < 1.5", current: "Wrong1!", fake: fakeRoundcube{loginOK200: true}, want: WrongCurrent, saves: 0},
		{name: "login refused otherwise", current: "Wrong1!", fake: fakeRoundcube{loginMessage: "Accesso non riuscito."}, want: Rejected, detail: "Accesso non riuscito.", saves: 0},
		{name: "too short", fake: fakeRoundcube{save: saveWith("Password must be at least 8 characters long.", "error")}, want: Rejected, detail: "at least 8 characters", saves: 1},
		{name: "driver error", fake: fakeRoundcube{save: saveWith("Could not save new password. Connection error.", "error")}, want: Rejected, detail: "Connection error", saves: 1},
		{name: "current password incorrect", fake: fakeRoundcube{save: saveWith("Current password incorrect.", "error")}, want: WrongCurrent, saves: 1},
		{name: "message echoing the password", fake: fakeRoundcube{save: saveWith("NewPass2! is too weak", "error")}, want: Rejected, detail: "*** is too weak", saves: 1},
		{name: "no verdict", fake: fakeRoundcube{save: func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, "<html><body>REQUEST CHECK FAILED</body></html>")
		}}, want: OutcomeUnknown, saves: 1},
		{name: "server error", fake: fakeRoundcube{save: func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "oops", http.StatusInternalServerError)
		}}, want: OutcomeUnknown, saves: 1},
		{name: "connection lost after the change was sent", fake: fakeRoundcube{save: func(w http.ResponseWriter, _ *http.Request) {
			c, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				c.Close()
			}
		}}, want: OutcomeUnknown, saves: 1},
		{name: "no password plugin", fake: fakeRoundcube{noPlugin: true}, want: Unreachable, detail: "password plugin", saves: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := tc.fake
			fake.current = "OldPass1!"
			srv := httptest.NewUnstartedServer(fake.handler(t))
			srv.EnableHTTP2 = false // Hijack needs HTTP/1.1
			srv.StartTLS()
			defer srv.Close()
			current := "OldPass1!"
			if tc.current != "" {
				current = tc.current
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := roundcube{}.Change(ctx, Request{
				Username: "bob@example.org", Current: current, New: "NewPass2!",
				URL: srv.URL + "/", Roots: certPool(srv),
			})
			checkKind(t, err, tc.want, tc.detail)
			if n := fake.saveCount(); n != tc.saves {
				t.Fatalf("the password form was posted %d times, want %d", n, tc.saves)
			}
			if tc.saves > 0 {
				got := fake.rec.saves[0]
				if got["_curpasswd"] != current || got["_newpasswd"] != "NewPass2!" || got["_confpasswd"] != "NewPass2!" {
					t.Errorf("posted %v", got)
				}
			}
			if err != nil && (strings.Contains(err.Error(), "OldPass1!") || strings.Contains(err.Error(), "NewPass2!")) {
				t.Errorf("error carries a password: %v", err)
			}
		})
	}
}

func certPool(srv *httptest.Server) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return pool
}

func TestRoundcubeTransport(t *testing.T) {
	fake := fakeRoundcube{current: "OldPass1!"}
	req := Request{Username: "bob@example.org", Current: "OldPass1!", New: "NewPass2!"}
	ctx := context.Background()

	// Plain http only to this machine.
	plain := httptest.NewServer(fake.handler(t))
	defer plain.Close()
	req.URL = plain.URL // no trailing slash: added
	checkKind(t, roundcube{}.Change(ctx, req), "", "")
	before := fake.saveCount()
	for _, u := range []string{"http://webmail.example.org/", "ftp://127.0.0.1/", "https://user@webmail.example.org/", "", "::"} {
		req.URL = u
		checkKind(t, roundcube{}.Change(ctx, req), Unreachable, "")
	}
	if fake.saveCount() != before {
		t.Error("a refused URL was used")
	}

	// An untrusted certificate: nothing is sent.
	tlsSrv := httptest.NewUnstartedServer(fake.handler(t))
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	req.URL, req.Roots = tlsSrv.URL+"/roundcube/", x509.NewCertPool()
	checkKind(t, roundcube{}.Change(ctx, req), Unreachable, "certificate")

	// A login page that redirects to another site: no password goes there.
	other := httptest.NewTLSServer(fake.handler(t))
	defer other.Close()
	redirecting := httptest.NewTLSServer(http.RedirectHandler(other.URL+"/?_task=login", http.StatusFound))
	defer redirecting.Close()
	pool := certPool(other)
	pool.AddCert(redirecting.Certificate())
	req.URL, req.Roots = redirecting.URL+"/", pool
	checkKind(t, roundcube{}.Change(ctx, req), Unreachable, "another site")

	// Nothing listening.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	req.URL, req.Roots = "https://"+addr+"/", nil
	checkKind(t, roundcube{}.Change(ctx, req), Unreachable, "")
	if fake.saveCount() != before {
		t.Error("the password form was posted")
	}
}

func TestRoundcubePageParsing(t *testing.T) {
	page := []byte(fmt.Sprintf(rcLoginPage, "/?_task=login", "tok", rcDisplay(`Say "hi" & <go>`, "warning")+rcDisplay("Login failed.", "warning")))
	text, typ, ok := rcMessage(page)
	if !ok || text != "Login failed." || typ != "warning" {
		t.Errorf("rcMessage = %q, %q, %v; want the last message", text, typ, ok)
	}
	if _, _, ok := rcMessage([]byte(`<p>rcmail.display_message("not a script","error")</p>`)); ok {
		t.Error("rcMessage read a message outside <script>")
	}
	form, ok := findForm(page, func(f htmlForm) bool { return f.value("_task") == "login" })
	if !ok || form.action != "/?_task=login" || form.value("_token") != "tok" || !form.has("_pass") {
		t.Fatalf("findForm = %+v, %v", form, ok)
	}
	if v := form.values(); v.Get("_token") != "tok" || v.Has("_user") || v.Has("_pass") || v.Get("_url") != "_task=login" {
		t.Errorf("hidden values = %v", v)
	}
	pw, ok := findForm([]byte(fmt.Sprintf(rcPasswordPage, "T2", "")), func(f htmlForm) bool { return f.id == "password-form" })
	if !ok || pw.action != "./?_task=settings&_action=plugin.password-save" || !pw.has("_curpasswd") || pw.value("_token") != "T2" {
		t.Errorf("password form = %+v, %v", pw, ok)
	}
}
