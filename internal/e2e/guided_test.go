//go:build e2e && !windows

package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/testkit/sandbox"
	"github.com/credsync/credsync/internal/testkit/tbharness"
)

// providerPage is a provider's web site on 127.0.0.1 (HTTPS with the
// sandbox's certificate, which Thunderbird and the host trust): every page
// is a GestioneMail-like login that also asks for a verification code, as
// Aruba's panel does with two-step verification. It records every request.
type providerPage struct {
	URL string // https://127.0.0.1:port/

	mu   sync.Mutex
	hits []string // "GET /path"
}

const providerPageHTML = `<!DOCTYPE html>
<html lang="it"><head><meta charset="utf-8"><title>Gestione mail - Posta certificata</title></head>
<body><h1>GESTIONE MAIL - POSTA CERTIFICATA</h1>
<p>Inserisci nei campi sottostanti i tuoi dati di accesso:</p>
<form method="post" action="/login">
<label for="user">Nome completo casella</label> <input id="user" name="user" type="text">
<label for="pass">Password</label> <input id="pass" name="pass" type="password">
<label for="otp">Codice di verifica</label> <input id="otp" name="otp" type="text" inputmode="numeric">
<button type="submit">Login</button>
</form></body></html>`

func startProviderPage(t *testing.T, sb *sandbox.Sandbox) *providerPage {
	t.Helper()
	p := &providerPage{}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.mu.Lock()
			p.hits = append(p.hits, r.Method+" "+r.URL.Path)
			p.mu.Unlock()
			if r.Method != http.MethodGet {
				http.Error(w, "not in this test", http.StatusForbidden)
				return
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte(providerPageHTML))
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.URL = "https://" + ln.Addr().String() + "/"
	go func() { _ = srv.Serve(tls.NewListener(ln, sb.ServerTLSConfig())) }()
	t.Cleanup(func() { srv.Close() })
	return p
}

// requests returns the requests seen, and how many were not GETs.
func (p *providerPage) requests() (all []string, posts int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, h := range p.hits {
		if !strings.HasPrefix(h, "GET ") {
			posts++
		}
	}
	return append([]string(nil), p.hits...), posts
}

// wantView fails the test unless the popup shows view (within 20 s).
func (s *scenario) wantView(view string) tbharness.PopupView {
	s.t.Helper()
	v, err := s.popup.WaitView(s.ctx, view, 20*time.Second)
	if err != nil {
		s.t.Fatal(err)
	}
	return v
}

// wantTab waits for a Thunderbird tab showing url and closes it when the
// test ends.
func (s *scenario) wantTab(url string) {
	s.t.Helper()
	start := time.Now()
	tab, err := s.e.tb.WaitTab(s.ctx, url, 20*time.Second)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := s.e.tb.CloseTabs(c, url); err != nil {
			s.t.Errorf("closing the provider's tab: %v", err)
		}
	})
	if tab.Mode != "contentTab" {
		s.t.Errorf("the provider's page opened in a %q tab, want a Thunderbird content tab", tab.Mode)
	}
	s.t.Logf("Thunderbird tab %s shows %s (%s)", tab.Mode, tab.URL, time.Since(start).Round(time.Millisecond))
}

// guidedAccount is the account the background remembers as sent to its
// provider's page ("" for none).
func (s *scenario) guidedAccount() string {
	s.t.Helper()
	var r struct {
		Guided *struct {
			AccountID string `json:"accountId"`
		} `json:"guided"`
	}
	if err := s.popup.Command(s.ctx, map[string]any{"cmd": "guided"}, &r); err != nil {
		s.t.Fatal(err)
	}
	if r.Guided == nil {
		return ""
	}
	return r.Guided.AccountID
}

// noPasswordsStored checks that the add-on's storage holds none of the
// passwords.
func (s *scenario) noPasswordsStored(passwords ...string) {
	s.t.Helper()
	var stored any
	if err := s.popup.Eval(s.ctx, `
const session = messenger.storage.session ? await messenger.storage.session.get(null) : {};
return { local: await messenger.storage.local.get(null), session };`, nil, &stored); err != nil {
		s.t.Fatal(err)
	}
	b, _ := json.Marshal(stored)
	for _, pw := range passwords {
		if strings.Contains(string(b), pw) {
			s.t.Errorf("the add-on's storage holds %s", s.which(pw))
		}
	}
}

// (a) Guided mode: no back-end is configured (nor implied by the server
// name), so the popup offers the provider's page instead of an error. The
// user types its address once (a page on 127.0.0.1); "Open" opens it in a
// Thunderbird tab and the popup switches to "I already changed it", also
// when it is opened again (the toolbar popup closes when the tab opens).
// The password, changed there, typed once, is stored for both logins and
// Thunderbird logs in with it.
func (e *env) testGuided(t *testing.T) {
	const user, old, new = "ona", "Ona-old-pw-1", "Ona-new-pw-2"
	e.sb.SetPassword(user, old)
	page := startProviderPage(t, e.sb)
	pageURL := page.URL + "webmail/" + user
	s := e.newScenarioWith(t, e.imapAccount(t, user, old), old, new, "", "")
	if err := s.popup.Select(s.ctx, s.acct.Key); err != nil {
		t.Fatal(err)
	}
	v := s.wantView("guided")
	if !strings.Contains(v.GuidedIntro, "cannot change the password of this mailbox by itself") || !v.GuidedURLField ||
		v.SubmitVisible || v.StatusKind == "error" || v.ArubaHint != "" {
		t.Errorf("guided view %+v: want the offer with an address field, no Change button, no error", v)
	}
	t.Logf("guided view: %q / %q", v.BackendText, v.GuidedIntro)

	v, err := s.popup.OpenGuided(s.ctx, s.acct.Key, pageURL, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s.wantTab(pageURL)
	if v.GuidedNote != "When you have changed it there, type the new password here once." ||
		v.Status != "The provider's page is open in a Thunderbird tab." || !v.SubmitVisible {
		t.Errorf("after opening the page the popup shows %+v", v)
	}
	if hits, _ := page.requests(); len(hits) == 0 || hits[0] != "GET /webmail/"+user {
		t.Errorf("the provider's page saw %v, want Thunderbird's GET /webmail/%s", hits, user)
	}
	accts, err := s.popup.Accounts(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accts {
		if a.ID == s.acct.Key && (a.Page == nil || a.Page.URL != pageURL || a.Page.Source != "local") {
			t.Errorf("the typed page is not remembered for the account: %+v", a.Page)
		}
	}
	if got := s.guidedAccount(); got != s.acct.Key {
		t.Errorf("guided account %q, want %s", got, s.acct.Key)
	}

	// The toolbar popup closed when the tab opened; opened again, it asks
	// for the password changed there.
	if err := s.popup.Reload(s.ctx); err != nil {
		t.Fatal(err)
	}
	v = s.wantView("sync")
	if v.Account != s.acct.Key || v.GuidedNote == "" {
		t.Errorf("reopened popup shows %+v: want the account in sync mode with the instruction", v)
	}

	e.sb.SetPassword(user, new) // changed on the provider's page
	o := s.sync(new)
	if o.Kind != "success" || !strings.HasPrefix(o.Text, "Done. The password works for incoming and outgoing mail") {
		t.Fatalf("popup shows %s: %q (steps %v, field errors %v)", o.Kind, o.Text, o.Steps, o.FieldErrors)
	}
	s.wantLogin("imap://127.0.0.1", user, new)
	s.wantLogin("smtp://127.0.0.1", user, new)
	s.wantOneLogin("imap://127.0.0.1", user)
	s.wantOneLogin("smtp://127.0.0.1", user)
	if got := s.guidedAccount(); got != "" {
		t.Errorf("guided mode still remembered for %q after the password was saved", got)
	}
	if v, err := s.popup.View(s.ctx); err != nil || v.GuidedNote != "" {
		t.Errorf("after saving, the popup still shows the instruction: %+v, %v", v, err)
	}
	s.noPasswordsStored(old, new)
	s.noPrompts()
	s.thunderbirdLogsIn("imap", user, e.sb.Logins, user, e.sb.Logins, new)
}

// Aruba PEC with two-step verification: the back-end's rules are checked
// while the user types, naming each rule, and nothing is sent while one is
// broken; the popup explains the "password per programmi di posta". The
// panel then asks for a verification code: the host answers
// page_not_recognised (having posted nothing), the popup offers guided
// mode, its Aruba button opens the panel (here on 127.0.0.1) in a
// Thunderbird tab, and the generated password, typed once, is stored for
// both logins.
func (e *env) testArubaTwoFactor(t *testing.T) {
	const user, old, next, app = "pia", "Pia-old-pw-1", "Pia-new-pw-2", "Pia-app-pw-3"
	e.sb.SetPassword(user, old)
	page := startProviderPage(t, e.sb)
	s := e.newScenarioWith(t, e.imapAccount(t, user, old), old, next, "aruba", page.URL)
	if err := s.popup.Select(s.ctx, s.acct.Key); err != nil {
		t.Fatal(err)
	}
	v := s.wantView("change")
	if !strings.Contains(v.ArubaHint, "“password per programmi di posta”") || !strings.Contains(v.RulesHint, "8–256 characters") {
		t.Errorf("Aruba account: hint %q, rules %q", v.ArubaHint, v.RulesHint)
	}
	t.Logf("rules: %q", v.RulesHint)

	for _, c := range []struct {
		new   string
		rules []string
		text  string
	}{
		{"pia", []string{"too_short", "needs_upper", "needs_digit", "needs_special"}, "at least 8 characters"},
		{"Pia new-pw-2", []string{"bad_character"}, "does not accept"},
		{"pia-new-pw-2", []string{"needs_upper"}, "upper-case"},
		{old, []string{"same_as_current"}, "differ from the current one"},
	} {
		v, err := s.popup.Type(s.ctx, tbharness.Field{ID: "current", Value: old}, tbharness.Field{ID: "new", Value: c.new},
			tbharness.Field{ID: "repeat", Value: c.new})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(v.FieldRules["new"], c.rules) || !strings.Contains(v.FieldErrors["new"], c.text) {
			t.Errorf("new password %s: the popup reports %v %q, want %v and %q", tbharness.Mask(c.new), v.FieldRules["new"], v.FieldErrors["new"], c.rules, c.text)
		}
	}
	if _, err := s.popup.Type(s.ctx, tbharness.Field{ID: "new", Value: "pia"}, tbharness.Field{ID: "repeat", Value: "pia-"}); err != nil {
		t.Fatal(err)
	}
	if err := s.popup.Click(s.ctx, "change"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	v, err := s.popup.View(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if hits, _ := page.requests(); len(hits) > 0 || v.StatusKind != "" || len(v.FieldRules["new"]) == 0 || !reflect.DeepEqual(v.FieldRules["repeat"], []string{"mismatch"}) {
		t.Errorf("submitting a password that breaks the rules: provider saw %v, popup %+v; want nothing sent", hits, v)
	}

	o := s.change()
	if o.Kind != "error" || !strings.Contains(o.Text, "did not recognise the provider's web pages") || o.Steps["changing"] != "failed" {
		t.Fatalf("popup shows %s %q (steps %v), want page_not_recognised", o.Kind, o.Text, o.Steps)
	}
	if hits, posts := page.requests(); len(hits) == 0 || posts != 0 {
		t.Errorf("the panel saw %v: want the host's GET and no POST", hits)
	}
	s.wantLogin("imap://127.0.0.1", user, old)
	s.wantLogin("smtp://127.0.0.1", user, old)
	if v, err := s.popup.View(s.ctx); err != nil || !v.GuidedOffer {
		t.Fatalf("after page_not_recognised the popup does not offer guided mode: %+v, %v", v, err)
	}
	if err := s.popup.Click(s.ctx, "guided-offer"); err != nil {
		t.Fatal(err)
	}
	v = s.wantView("guided")
	if !strings.Contains(v.GuidedIntro, "could not change the password through the provider's web site") ||
		v.GuidedPage != "Page: "+page.URL || v.ArubaHint == "" {
		t.Errorf("guided view after the failure: %+v", v)
	}
	if err := s.popup.Click(s.ctx, "aruba-open"); err != nil {
		t.Fatal(err)
	}
	v = s.wantView("sync")
	s.wantTab(page.URL)
	if !strings.Contains(v.GuidedNote, "“password per programmi di posta”") {
		t.Errorf("sync view after the Aruba panel opened: %+v", v)
	}
	t.Logf("instruction: %q", v.GuidedNote)

	e.sb.SetPassword(user, app) // generated on the panel; only it works for IMAP and SMTP now
	s.new = app
	o = s.sync(app)
	if o.Kind != "success" {
		t.Fatalf("popup shows %s: %q (steps %v, field errors %v)", o.Kind, o.Text, o.Steps, o.FieldErrors)
	}
	s.wantLogin("imap://127.0.0.1", user, app)
	s.wantLogin("smtp://127.0.0.1", user, app)
	s.noPasswordsStored(old, next, app)
	s.noPrompts()
	s.thunderbirdLogsIn("imap", user, e.sb.Logins, user, e.sb.Logins, app)
}

// (b) Automatic propagation the other way round: the password was changed
// at the provider and Thunderbird's SMTP prompt saved the new OUTGOING
// password first (on the first send). The incoming login follows, without
// a prompt, and the servers accept Thunderbird's own logins with it.
func (e *env) testPropagateOutgoingFirst(t *testing.T) {
	const user, old, new = "quin", "Quin-old-pw-1", "Quin-new-pw-2"
	e.sb.SetPassword(user, old)
	s := e.newScenario(t, e.imapAccount(t, user, old), old, new)
	e.sb.SetPassword(user, new)
	if err := e.tb.ClearAlerts(s.ctx); err != nil {
		t.Fatal(err)
	}
	mark := len(e.sb.Logins())
	since := time.Now()
	if err := e.tb.SaveLoginAsPrompt(s.ctx, "smtp://127.0.0.1", user, new, "add"); err != nil {
		t.Fatal(err)
	}
	s.waitLogin("imap://127.0.0.1", user, new)
	p := s.waitPropagation(since, s.acct.Key)
	if p.Side != "outgoing" || !p.Enabled || len(p.Results) != 1 {
		t.Fatalf("propagation %+v: want outgoing, one account", p)
	}
	if r := p.Results[0]; r.ID != s.acct.Key || !r.Stored || len(r.Sides) != 1 || r.Sides[0] != "incoming" {
		t.Errorf("propagation result %+v: want the incoming login stored", r)
	}
	// The host checked the password on the incoming server only: the
	// outgoing login is the one Thunderbird just saved.
	for _, l := range mailLogins(e.sb.Logins()[mark:]) {
		if l.Username == user && l.Protocol != "imap" {
			t.Errorf("credsync logged in to %s; only the incoming server needed the check", l.Protocol)
		}
	}
	if p.Notification == nil || p.Notification.Title != "Mail password updated" ||
		!strings.Contains(p.Notification.Message, "Thunderbird saved a new password for outgoing mail.") ||
		!strings.Contains(p.Notification.Message, "now saved for incoming mail too") {
		t.Errorf("notification %+v", p.Notification)
	}
	s.wantAlert(p)
	s.wantLogin("smtp://127.0.0.1", user, new)
	s.wantOneLogin("imap://127.0.0.1", user)
	s.wantOneLogin("smtp://127.0.0.1", user)
	s.noPrompts()
	s.thunderbirdLogsIn("imap", user, e.sb.Logins, user, e.sb.Logins, new)
}
