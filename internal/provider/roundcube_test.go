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
	"slices"
	"testing"

	rcsim "github.com/credsync/credsync/internal/testkit/simulators/roundcube"
)

// Markup as Roundcube 1.6.5 (elastic skin) sends it, shortened, for the
// parsing tests (the back-end's tests run against
// internal/testkit/simulators/roundcube).
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

const (
	rcUser = "bob@example.org"
	rcOld  = "OldPass1!"
	rcNew  = "NewPass2!"
)

// Words no driver knows, refusing the new password (a password driver's
// own message): they reach the user as the provider's.
const (
	rcRefuseIT = "Scegli un'altra combinazione, grazie."
	rcRefuseEN = "The directory did not take this one; pick another."
)

// TestRoundcubeChange runs every outcome on every variant of the simulated
// Roundcube (skins, versions, languages): outcomes are read from the
// structure of the answers (the login form back, the password form back
// with a message and its type), never from the simulator's words.
func TestRoundcubeChange(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    rcsim.Options
		fault   rcsim.Fault
		current string
		want    Kind
		rule    string
		posts   []string // what the simulator received
		changed bool
		sent    string
		words   string // "" none, "*" any, else exactly
	}{
		{name: "ok", posts: []string{"login", "save"}, changed: true},
		{name: "ok without the current password field", opts: rcsim.Options{NoCurrentField: true}, posts: []string{"login", "save"}, changed: true},
		{name: "wrong current password", current: "Wrong-pw1!", want: WrongCurrent, posts: []string{"login"}, sent: SentCurrent, words: "*"},
		{name: "wrong current password, no message", fault: rcsim.QuietLoginFailure, current: "Wrong-pw1!", want: WrongCurrent, posts: []string{"login"}, sent: SentCurrent},
		{name: "locked by the rate limit", opts: rcsim.Options{Locked: []string{rcUser}}, want: Locked, posts: []string{"login"}, sent: SentCurrent, words: "*"},
		{name: "storage server down", fault: rcsim.StorageDown, want: Rejected, posts: []string{"login"}, sent: SentCurrent, words: "*"},
		{name: "login answered by an unknown page", fault: rcsim.LoginInterstitial, want: PageNotRecognised, posts: []string{"login"}, sent: SentCurrent},
		{name: "too short", opts: rcsim.Options{MinLength: 12}, want: Rejected, rule: "too_short", posts: []string{"login", "save"}, sent: SentChange, words: "*"},
		{name: "used before", want: RecentlyUsed, posts: []string{"login", "save"}, sent: SentChange, words: "*"},
		{name: "refused in unknown words (it)", opts: rcsim.Options{Refuse: rcRefuseIT}, want: Rejected, posts: []string{"login", "save"}, sent: SentChange, words: rcRefuseIT},
		{name: "refused in unknown words (en)", opts: rcsim.Options{Refuse: rcRefuseEN}, want: Rejected, posts: []string{"login", "save"}, sent: SentChange, words: rcRefuseEN},
		{name: "no verdict", fault: rcsim.NoVerdict, want: OutcomeUnknown, posts: []string{"login", "save"}, changed: true, sent: SentChange},
		{name: "server error", fault: rcsim.ServerError, want: OutcomeUnknown, posts: []string{"login", "save"}, sent: SentChange},
		{name: "connection lost after the change was sent", fault: rcsim.DropAfterSave, want: OutcomeUnknown, posts: []string{"login", "save"}, changed: true, sent: SentChange},
		{name: "no password plugin", opts: rcsim.Options{NoPlugin: true}, want: Unreachable, posts: []string{"login"}, sent: SentCurrent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range rcsim.Variants {
				t.Run(v.String(), func(t *testing.T) {
					opts := tc.opts
					opts.Variant = v
					if tc.name == "used before" {
						opts.Users = map[string]string{rcUser: rcNew}
					}
					opts.Users = defaultUsers(opts.Users, rcUser, rcOld)
					s := closeAtEnd(t, rcsim.Start(opts))
					setup := 0
					if tc.name == "used before" { // rcNew was the password before rcOld
						btKind(t, simChange(roundcube{}, s.CAPool, s.URL, rcUser, rcNew, rcOld), "", "")
						setup = len(s.Posts())
					}
					s.SetFault(tc.fault)
					current := rcOld
					if tc.current != "" {
						current = tc.current
					}
					e := btKind(t, simChange(roundcube{}, s.CAPool, s.URL, rcUser, current, rcNew), tc.want, tc.rule, current, rcNew)
					if posts := s.Posts()[setup:]; !slices.Equal(posts, tc.posts) {
						t.Fatalf("the simulator received %v (%v); want %v", posts, s.Log(), tc.posts)
					}
					if saves := s.Saves(); len(tc.posts) == 2 {
						got := saves[len(saves)-1]
						wantCur := current
						if opts.NoCurrentField {
							wantCur = ""
						}
						if got["_curpasswd"] != wantCur || got["_newpasswd"] != rcNew || got["_confpasswd"] != rcNew {
							t.Errorf("posted %v", got)
						}
					}
					if changed := s.Password(rcUser) == rcNew; changed != tc.changed {
						t.Fatalf("changed = %v; want %v", changed, tc.changed)
					}
					if e != nil {
						btSentWords(t, e, tc.sent, tc.words, current, rcNew)
					}
				})
			}
		})
	}
}

// The password form's answer, read from the message's type: the plugin's
// own "current password incorrect" is WrongCurrent, known words refine a
// refusal, a message echoing the password is scrubbed.
func TestRoundcubeVerdict(t *testing.T) {
	secrets := []string{rcOld, rcNew}
	for _, c := range []struct {
		name, cmds  string
		kind        Kind
		rule, words string
	}{
		{"saved", rcDisplay("Successfully saved.", "confirmation"), "", "", ""},
		{"current password incorrect", rcDisplay("Current password incorrect.", "error"), WrongCurrent, "", "Current password incorrect."},
		{"driver error", rcDisplay("Could not save new password. Connection error.", "error"), Rejected, "", "Could not save new password. Connection error."},
		{"echoing the password", rcDisplay(rcNew+" is too weak", "error"), Rejected, "too_weak", "*** is too weak"},
		{"in history, raw label", rcDisplay("passwdinhistory", "error"), Rejected, "", "passwdinhistory"},
		{"a notice", rcDisplay("Parola d'ordine cambiata?", "notice"), OutcomeUnknown, "", ""},
		{"nothing", "", OutcomeUnknown, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := []byte(fmt.Sprintf(rcPasswordPage, "T2", c.cmds))
			e := btKind(t, rcVerdict(body, secrets), c.kind, c.rule, secrets...)
			if e != nil && c.words != "" && e.Words != c.words {
				t.Fatalf("Words = %q; want %q", e.Words, c.words)
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
	fake := closeAtEnd(t, rcsim.Start(rcsim.Options{Users: map[string]string{rcUser: rcOld}}))
	req := Request{Username: rcUser, Current: rcOld, New: rcNew}
	ctx := context.Background()

	// Plain http only to this machine.
	plain := httptest.NewServer(fake.Handler())
	defer plain.Close()
	req.URL = plain.URL // no trailing slash: added
	checkKind(t, roundcube{}.Change(ctx, req), "", "")
	req.Current, req.New = rcNew, rcOld+"x"
	before := len(fake.Saves())
	for _, u := range []string{"http://webmail.example.org/", "ftp://127.0.0.1/", "https://user@webmail.example.org/", "", "::"} {
		req.URL = u
		checkKind(t, roundcube{}.Change(ctx, req), Unreachable, "")
	}
	if len(fake.Saves()) != before {
		t.Error("a refused URL was used")
	}

	// An untrusted certificate: nothing is sent.
	tlsSrv := httptest.NewUnstartedServer(fake.Handler())
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	req.URL, req.Roots = tlsSrv.URL+"/roundcube/", x509.NewCertPool()
	checkKind(t, roundcube{}.Change(ctx, req), Unreachable, "certificate")

	// A login page that redirects to another site: no password goes there.
	other := httptest.NewTLSServer(fake.Handler())
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
	if len(fake.Saves()) != before {
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
