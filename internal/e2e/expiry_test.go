//go:build e2e && !windows

package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/testkit/sandbox"
	"github.com/credsync/credsync/internal/testkit/tbharness"
)

// expiryRun is the background's checkExpiry answer.
type expiryRun struct {
	Checked  []string `json:"checked"`
	Notified []string `json:"notified"`
}

// expiryLogins are the sandbox's expiry checks (logins of protocol
// "expiry") since mark.
func expiryLogins(sb *sandbox.Sandbox, mark int) []sandbox.Login {
	var out []sandbox.Login
	for _, l := range sb.LoginsSince(mark) {
		if l.Protocol == "expiry" {
			out = append(out, l)
		}
	}
	return out
}

// mailLogins are the logins to mail servers among ls: without the expiry
// checks (protocol "expiry"), which the extension makes after a change and
// once a day, whenever they fall.
func mailLogins(ls []sandbox.Login) []sandbox.Login {
	return slices.DeleteFunc(slices.Clone(ls), func(l sandbox.Login) bool { return l.Protocol == "expiry" })
}

// checkExpiry runs the background's expiry check now (forced: the daily
// limit does not hold it back, the setting and a refused password do).
func (s *scenario) checkExpiry() expiryRun {
	s.t.Helper()
	var r expiryRun
	if err := s.popup.Command(s.ctx, map[string]any{"cmd": "checkExpiry", "force": true}, &r); err != nil {
		s.t.Fatal(err)
	}
	return r
}

// expiryAlert waits for the notification of the account and returns it.
func (s *scenario) expiryAlert(accountID string) tbharness.Alert {
	s.t.Helper()
	name := "credsync-expiry-" + accountID
	deadline := time.Now().Add(10 * time.Second)
	for {
		as, err := s.e.tb.Alerts(s.ctx)
		if err != nil {
			s.t.Fatal(err)
		}
		for _, a := range as {
			if a.Name == name {
				return a
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("no notification %s; shown: %+v", name, as)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// popupExpiry waits until the background has handled the click, then
// reloads the popup page (as a popup opened now) and returns the account it
// chose and its expiry line. (The harness's popup is a tab: Thunderbird
// switches to an open tab of the same address rather than open a second.)
func (s *scenario) popupExpiry(accountID string) (string, string) {
	s.t.Helper()
	var chosen struct {
		AccountID string `json:"accountId"`
		Opened    string `json:"opened"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := s.popup.Command(s.ctx, map[string]any{"cmd": "chosenAccount"}, &chosen); err != nil {
			s.t.Fatal(err)
		}
		if chosen.AccountID == accountID && chosen.Opened != "" {
			break
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("after the click the background's chosen account is %+v, want %s", chosen, accountID)
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Logf("the click opened the popup by %s", chosen.Opened)
	if err := s.popup.Reload(s.ctx); err != nil {
		s.t.Fatal(err)
	}
	var shown struct {
		Account string `json:"account"`
		Line    string `json:"line"`
	}
	wctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
	defer cancel()
	if err := s.popup.WaitFor(wctx, `
if (document.documentElement.dataset.ready !== "true") return null;
const line = document.getElementById("expiry-line");
return { account: document.getElementById("account").value, line: line.hidden ? "" : line.textContent };`,
		nil, 100*time.Millisecond, &shown); err != nil {
		s.t.Fatalf("popup: %v", err)
	}
	return shown.Account, shown.Line
}

// testExpiry: the notification ahead of the expiry, in English with the
// date; a click opens the popup on that account with its expiry line;
// nothing is asked when the feature is off, nor for a password the
// directory refused.
func (e *env) testExpiry(t *testing.T) {
	const (
		user, old   = "ivy", "Ivy-old-pw-1"
		other, pw   = "jon", "Jon-pw-1"
		refused, rp = "lea", "Lea-pw-1"
	)
	e.sb.SetPassword(user, old)
	e.sb.SetPassword(other, pw)
	e.sb.SetPassword(refused, rp)
	expires := time.Now().Add(5*24*time.Hour - time.Hour).Truncate(time.Second)
	e.sb.SetExpiresAt(other, expires)
	t.Cleanup(func() { e.sb.SetExpiresAt(other, time.Time{}) })
	s := e.newScenario(t, e.imapAccount(t, user, old), old, old)
	b := s.addAccount(e.imapAccount(t, other, pw))
	if err := s.popup.SetBackend(s.ctx, b.Key, "sandbox", e.sb.ChangeURL); err != nil {
		t.Fatal(err)
	}
	if err := e.tb.ClearAlerts(s.ctx); err != nil {
		t.Fatal(err)
	}

	// On (the default): one check per account with the sandbox back-end,
	// and the notification for the one that expires in 5 days.
	mark := len(e.sb.Logins())
	r := s.checkExpiry()
	if !slices.Contains(r.Checked, b.Key) || !slices.Contains(r.Checked, s.acct.Key) || !slices.Equal(r.Notified, []string{b.Key}) {
		t.Fatalf("checkExpiry %+v: want both accounts checked, %s notified", r, b.Key)
	}
	checks := expiryLogins(e.sb, mark)
	if len(checks) != 2 {
		t.Errorf("the directory saw %d expiry checks %+v, want 2 (one per account)", len(checks), checks)
	}
	for _, c := range checks {
		if !c.OK {
			t.Errorf("expiry check %s/%s: not with the saved password", c.Username, tbharness.Mask(c.Password))
		}
	}
	a := s.expiryAlert(b.Key)
	want := fmt.Sprintf("The password of %s@example.test expires on %s (in 5 days). Change it now with credsync.", other, expires.Local().Format("January 2"))
	if a.Text != want {
		t.Errorf("notification %q, want %q", a.Text, want)
	}
	t.Logf("notification: %s: %s", a.Title, a.Text)

	// Within a day: nothing asked again, nothing shown again.
	mark = len(e.sb.Logins())
	var again expiryRun
	if err := s.popup.Command(s.ctx, map[string]any{"cmd": "checkExpiry"}, &again); err != nil {
		t.Fatal(err)
	}
	if len(again.Checked) != 0 || len(again.Notified) != 0 || len(expiryLogins(e.sb, mark)) != 0 {
		t.Errorf("second check within a day: %+v, %d checks; want nothing", again, len(expiryLogins(e.sb, mark)))
	}

	// The click (the alert's own click callback: a headless Thunderbird
	// shows no alert window) opens the popup on that account.
	if err := e.tb.ClickAlert(s.ctx, "credsync-expiry-"+b.Key); err != nil {
		t.Fatal(err)
	}
	chosen, line := s.popupExpiry(b.Key)
	if chosen != b.Key {
		t.Errorf("popup after the click chose %q, want %s", chosen, b.Key)
	}
	wantLine := fmt.Sprintf("Password expires on %s (in 5 days).", expires.Local().Format("January 2"))
	if line != wantLine {
		t.Errorf("popup's expiry line %q, want %q", line, wantLine)
	}

	// A password the directory refuses: asked once, never again.
	c := s.addAccount(tbharness.AccountSpec{
		Type:     "imap",
		Incoming: sslServer(t, e.sb.IMAPS, refused, rp),
	})
	if err := s.popup.SetBackend(s.ctx, c.Key, "sandbox", e.sb.ChangeURL); err != nil {
		t.Fatal(err)
	}
	e.sb.SetPassword(refused, "Lea-changed-elsewhere-2")
	mark = len(e.sb.Logins())
	s.checkExpiry()
	n := 0
	for _, l := range expiryLogins(e.sb, mark) {
		if l.Username == refused {
			n++
		}
	}
	if n != 1 {
		t.Errorf("first check of a wrong saved password: %d checks, want 1", n)
	}
	mark = len(e.sb.Logins())
	s.checkExpiry()
	for _, l := range expiryLogins(e.sb, mark) {
		if l.Username == refused {
			t.Errorf("the refused password was tried again: %+v", l)
		}
	}

	// Off: nothing asked, nothing shown.
	if err := s.popup.Command(s.ctx, map[string]any{"cmd": "setSettings", "expiryWarnings": false}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.popup.Command(c, map[string]any{"cmd": "setSettings", "expiryWarnings": true}, nil); err != nil {
			t.Errorf("turning the expiry warnings on again: %v", err)
		}
	})
	if err := e.tb.ClearAlerts(s.ctx); err != nil {
		t.Fatal(err)
	}
	mark = len(e.sb.Logins())
	r = s.checkExpiry()
	if len(r.Checked) != 0 || len(r.Notified) != 0 {
		t.Errorf("with the feature off: %+v, want nothing", r)
	}
	if checks := expiryLogins(e.sb, mark); len(checks) != 0 {
		t.Errorf("with the feature off the directory saw expiry checks %+v", checks)
	}
	s.noAlerts()
}

// waitFailedLogin waits up to 30 s until the background keeps the failed
// login of key (want true) or no longer does (want false); it returns
// whether the background keeps it at the end.
func (s *scenario) waitFailedLogin(key string, want bool) bool {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var state struct {
			FailedLogins map[string]int64 `json:"failedLogins"`
		}
		if err := s.popup.Command(s.ctx, map[string]any{"cmd": "expiry"}, &state); err != nil {
			s.t.Fatal(err)
		}
		_, kept := state.FailedLogins[key]
		if kept == want || time.Now().After(deadline) {
			return kept
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// reopenPopup reloads the popup page, as a popup opened now, waits until
// it shows all it shows on opening, chooses the scenario's account and
// returns the view.
func (s *scenario) reopenPopup() tbharness.PopupView {
	s.t.Helper()
	if err := s.popup.Reload(s.ctx); err != nil {
		s.t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
	defer cancel()
	if err := s.popup.WaitFor(wctx, `return document.documentElement.dataset.ready === "true";`, nil, 100*time.Millisecond, nil); err != nil {
		s.t.Fatalf("popup: %v", err)
	}
	if err := s.popup.Select(s.ctx, s.acct.Key); err != nil {
		s.t.Fatal(err)
	}
	v, err := s.popup.View(s.ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	return v
}

// testExpiryAfterFailedLogin: Thunderbird's own login with the saved
// password was just refused (its "Login to server … failed" question, here
// during a check for new mail): the expiry check asks nothing with that
// password, and the popup says so under the account with a button to "I
// already changed it". Once the saved password changes, the popup says
// nothing and the check asks again.
func (e *env) testExpiryAfterFailedLogin(t *testing.T) {
	const user, saved, elsewhere = "max", "Max-saved-pw-1", "Max-changed-elsewhere-2"
	e.sb.SetPassword(user, saved)
	s := e.newScenario(t, e.imapAccount(t, user, saved), saved, saved)
	failedKey := strings.ToLower(s.acct.IncomingOrigin) + "\n" + user

	// The password changed elsewhere; Thunderbird checks for new mail with
	// the saved one.
	e.sb.SetPassword(user, elsewhere)
	mark := len(e.sb.Logins())
	if err := e.tb.CheckMail(s.ctx, s.acct.Key); err != nil {
		t.Fatal(err)
	}
	// Thunderbird asks after each refused login (and tries again after
	// the watcher's Cancel); Marionette fails a command sent while one of
	// its questions is open, so the test waits, on the server's side,
	// until Thunderbird gave up.
	refusals := func() int {
		n := 0
		for _, l := range e.sb.LoginsSince(mark) {
			if l.Protocol == "imap" && l.Username == user && !l.OK && l.Password == saved {
				n++
			}
		}
		return n
	}
	for last, quiet := -1, time.Now(); refusals() == 0 || time.Since(quiet) < 2*time.Second; time.Sleep(100 * time.Millisecond) {
		if n := refusals(); n != last {
			last, quiet = n, time.Now()
		}
		if time.Since(quiet) > 30*time.Second {
			t.Fatalf("the IMAP server saw no refused login with the saved password: %+v", e.sb.LoginsSince(mark))
		}
	}
	if failed := s.waitFailedLogin(failedKey, true); !failed {
		ps, _ := e.tb.Prompts(s.ctx)
		t.Fatalf("the background has no failed login %q; server saw %+v; prompts %+v", failedKey, e.sb.LoginsSince(mark), ps)
	}
	ps, err := e.tb.Prompts(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Thunderbird asked: %+v", ps)

	// The popup says so under the account, and offers "I already changed it".
	v := s.reopenPopup()
	const hint = "Thunderbird could not log in with the saved password. Was it changed elsewhere?"
	if v.FailedHint != hint || !v.FailedSync {
		t.Errorf("popup: failed hint %q, its button shown %v; want %q and the button", v.FailedHint, v.FailedSync, hint)
	}
	if err := s.popup.Click(s.ctx, "failed-sync"); err != nil {
		t.Fatal(err)
	}
	if v, err := s.popup.WaitView(s.ctx, "sync", 10*time.Second); err != nil {
		t.Fatal(err)
	} else if v.FailedHint != hint || v.FailedSync {
		t.Errorf("popup in the sync view: failed hint %q, button shown %v; want the hint, no button", v.FailedHint, v.FailedSync)
	}

	// Forced (the daily limit does not hold it back): nothing asked.
	mark = len(e.sb.Logins())
	if r := s.checkExpiry(); slices.Contains(r.Checked, s.acct.Key) {
		t.Errorf("checkExpiry %+v checked the account whose saved password just failed", r)
	}
	if checks := expiryLogins(e.sb, mark); len(checks) != 0 {
		t.Errorf("the directory saw expiry checks %+v with a saved password Thunderbird just failed with", checks)
	}

	// The user types the new password at Thunderbird's prompt: the failure
	// is forgotten, and the check asks again, with the new password.
	if err := e.tb.SaveLoginAsPrompt(s.ctx, s.acct.IncomingOrigin, user, elsewhere, "modify"); err != nil {
		t.Fatal(err)
	}
	if s.waitFailedLogin(failedKey, false) {
		t.Fatalf("the failed login %q is still kept after the saved password changed", failedKey)
	}
	if v := s.reopenPopup(); v.FailedHint != "" {
		t.Errorf("popup after the saved password changed: failed hint %q, want none", v.FailedHint)
	}
	mark = len(e.sb.Logins())
	if r := s.checkExpiry(); !slices.Contains(r.Checked, s.acct.Key) {
		t.Errorf("checkExpiry %+v after the saved password changed: want the account checked", r)
	}
	checks := expiryLogins(e.sb, mark)
	if len(checks) != 1 || checks[0].Username != user || !checks[0].OK {
		t.Errorf("expiry checks after the change %+v: want one, accepted, with the new saved password", checks)
	}
}

var italianMonths = [...]string{"gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio",
	"agosto", "settembre", "ottobre", "novembre", "dicembre"}

// testItalianExpiry, in the Italian administrator's Thunderbird (its
// expiryWarnDays 7, locked): after the change the new password's expiry
// was asked at once; the notification and the popup's line in Italian.
func testItalianExpiry(t *testing.T, e *env, s *scenario, user, password string) {
	var settings struct {
		ExpiryWarnings bool            `json:"expiryWarnings"`
		ExpiryWarnDays int             `json:"expiryWarnDays"`
		Locked         map[string]bool `json:"locked"`
	}
	if err := s.popup.Command(s.ctx, map[string]any{"cmd": "settings"}, &settings); err != nil {
		t.Fatal(err)
	}
	if !settings.ExpiryWarnings || settings.ExpiryWarnDays != 7 || !settings.Locked["expiryWarnDays"] || settings.Locked["expiryWarnings"] {
		t.Errorf("expiry settings %+v: want on, 7 days locked by the administrator", settings)
	}
	// The successful change asked the new password's expiry at once.
	deadline := time.Now().Add(10 * time.Second)
	for !slices.ContainsFunc(expiryLogins(e.sb, 0), func(l sandbox.Login) bool {
		return l.Username == user && l.Password == password && l.OK
	}) {
		if time.Now().After(deadline) {
			t.Fatalf("no expiry check with the new password after the change: %+v", expiryLogins(e.sb, 0))
		}
		time.Sleep(100 * time.Millisecond)
	}
	expires := time.Now().Add(5*24*time.Hour - time.Hour).Truncate(time.Second)
	e.sb.SetExpiresAt(user, expires)
	if err := e.tb.ClearAlerts(s.ctx); err != nil {
		t.Fatal(err)
	}
	if r := s.checkExpiry(); !slices.Equal(r.Notified, []string{s.acct.Key}) {
		t.Fatalf("checkExpiry %+v: want %s notified", r, s.acct.Key)
	}
	local := expires.Local()
	day := fmt.Sprintf("%d %s", local.Day(), italianMonths[local.Month()-1])
	a := s.expiryAlert(s.acct.Key)
	want := fmt.Sprintf("La password di %s scade il %s (tra 5 giorni). Cambiala ora con credsync.", user, day)
	if a.Text != want {
		t.Errorf("notification %q, want %q", a.Text, want)
	}
	t.Logf("notification: %s: %s", a.Title, a.Text)
	if err := e.tb.ClickAlert(s.ctx, "credsync-expiry-"+s.acct.Key); err != nil {
		t.Fatal(err)
	}
	chosen, line := s.popupExpiry(s.acct.Key)
	if wantLine := fmt.Sprintf("La password scade il %s (tra 5 giorni).", day); chosen != s.acct.Key || line != wantLine {
		t.Errorf("popup after the click: account %q, line %q; want %s, %q", chosen, line, s.acct.Key, wantLine)
	}
}
