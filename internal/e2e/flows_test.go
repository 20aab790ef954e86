//go:build e2e && !windows

package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/testkit/tbharness"
)

// sync submits the popup's "I already changed it" form and returns what it
// finally shows.
func (s *scenario) sync(password string) tbharness.Outcome {
	s.t.Helper()
	start := time.Now()
	o, err := s.popup.Sync(s.ctx, s.acct.Key, password, 90*time.Second)
	if err != nil {
		s.t.Fatalf("popup sync: %v", err)
	}
	s.t.Logf("popup after %s: %s %q steps %v", time.Since(start).Round(time.Millisecond), o.Kind, o.Text, o.Steps)
	return o
}

// propagationsSince returns the background's automatic propagations
// recorded at or after since that concern the account.
func (s *scenario) propagationsSince(since time.Time, accountID string) []tbharness.Propagation {
	s.t.Helper()
	all, err := s.popup.Propagations(s.ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	var mine []tbharness.Propagation
	for _, p := range all {
		if p.At < since.UnixMilli() {
			continue
		}
		for _, id := range p.AccountIDs {
			if id == accountID {
				mine = append(mine, p)
				break
			}
		}
	}
	return mine
}

// waitPropagation waits until the background has finished one automatic
// propagation for the account (recorded at or after since) and returns it.
func (s *scenario) waitPropagation(since time.Time, accountID string) tbharness.Propagation {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if ps := s.propagationsSince(since, accountID); len(ps) > 0 {
			if len(ps) > 1 {
				s.t.Errorf("%d propagations for %s, want 1: %+v", len(ps), accountID, ps)
			}
			s.t.Logf("propagation after %s: %+v", time.Since(since).Round(time.Millisecond), ps[0])
			return ps[0]
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("no automatic propagation for %s within 30 s", accountID)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLogin polls until the saved login for origin/user holds password.
func (s *scenario) waitLogin(origin, user, password string) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		l, ok, err := s.e.tb.LoginFor(s.ctx, origin, user)
		if err != nil {
			s.t.Fatal(err)
		}
		if ok && l.Password == password {
			return
		}
		if time.Now().After(deadline) {
			got := "no login"
			if ok {
				got = s.which(l.Password)
			}
			s.t.Fatalf("saved login %s for %q still holds %s after 30 s, want %s", origin, user, got, s.which(password))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wantAlert waits until Thunderbird was asked to show the propagation's
// notification (recorded by tbharness.RecordAlerts; ClearAlerts first) and
// checks it is the only one.
func (s *scenario) wantAlert(p tbharness.Propagation) {
	s.t.Helper()
	if p.Notification == nil {
		s.t.Fatalf("propagation %+v has no notification", p)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		as, err := s.e.tb.Alerts(s.ctx)
		if err != nil {
			s.t.Fatal(err)
		}
		if len(as) > 0 {
			if len(as) != 1 || as[0].Title != p.Notification.Title || as[0].Text != p.Notification.Message ||
				!strings.HasPrefix(as[0].Name, "credsync-propagation-") {
				s.t.Errorf("Thunderbird showed %+v, want one alert %+v", as, *p.Notification)
			}
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("Thunderbird showed no notification within 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *scenario) noAlerts() {
	s.t.Helper()
	as, err := s.e.tb.Alerts(s.ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	if len(as) > 0 {
		s.t.Errorf("Thunderbird showed notifications %+v, want none", as)
	}
}

func (s *scenario) noPropagationSince(since time.Time) {
	s.t.Helper()
	if ps := s.propagationsSince(since, s.acct.Key); len(ps) > 0 {
		s.t.Errorf("credsync reacted to its own writes: %+v", ps)
	}
}

// addAccount creates another account for the scenario (removed with it).
func (s *scenario) addAccount(spec tbharness.AccountSpec) tbharness.Account {
	s.t.Helper()
	acct, err := s.e.tb.CreateAccount(s.ctx, spec)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.e.tb.RemoveAccount(c, acct); err != nil {
			s.t.Errorf("removing account: %v", err)
		}
	})
	return acct
}

// addSibling creates a POP3 account for the same mailbox as the scenario's
// IMAP account (same user on the same hosts, sending through the same SMTP
// login), reloads the popup, checks that the popup lists it as sharing the
// login, and returns it with its display name.
func (s *scenario) addSibling(user, old string) (tbharness.Account, string) {
	s.t.Helper()
	return s.addSiblingNamed(user, old, "")
}

// addSiblingNamed is addSibling with the account's name ("": Thunderbird's
// default, user@host, the same as the IMAP account's).
func (s *scenario) addSiblingNamed(user, old, name string) (tbharness.Account, string) {
	s.t.Helper()
	smtp := sslServer(s.t, s.e.sb.SMTPS, user, "") // its login is the IMAP account's
	pop := s.addAccount(tbharness.AccountSpec{
		Type:     "pop3",
		Incoming: sslServer(s.t, s.e.sb.POP3S, user, old),
		SMTP:     &smtp,
		Email:    user + "-pop@example.test",
		Name:     name,
	})
	if err := s.popup.Reload(s.ctx); err != nil {
		s.t.Fatal(err)
	}
	accts, err := s.popup.Accounts(s.ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	listed := ""
	for _, a := range accts {
		if a.ID == s.acct.Key && (len(a.Siblings) != 1 || a.Siblings[0] != pop.Key) {
			s.t.Errorf("account %s has siblings %v, want [%s]", a.ID, a.Siblings, pop.Key)
		}
		if a.ID == pop.Key {
			listed = a.Name
		}
	}
	if name != "" && listed != name {
		s.t.Errorf("the popup lists account %s as %q, want %q", pop.Key, listed, name)
	}
	name = listed
	if hint, err := s.popup.SiblingsHint(s.ctx, s.acct.Key); err != nil || name == "" || !strings.Contains(hint, "“"+name+"”") {
		s.t.Errorf("popup's sibling list %q (%v) does not name %q", hint, err, name)
	} else {
		s.t.Logf("popup lists: %q", hint)
	}
	return pop, name
}

// wantSiblingStored checks the popup's final message and steps for a
// sibling updated with the main account.
func (s *scenario) wantSiblingStored(o tbharness.Outcome, sibling tbharness.Account, name string) {
	s.t.Helper()
	if o.Kind != "success" || !strings.Contains(o.Text, "Also saved for “"+name+"”.") {
		s.t.Errorf("popup shows %s %q, want the sibling %q saved", o.Kind, o.Text, name)
	}
	if st := o.Steps["sibling:"+sibling.Key]; st != "ok" {
		s.t.Errorf("sibling step is %q, want ok (steps %v)", st, o.Steps)
	}
}

// (a) "I already changed it": the password was changed at the provider
// (sb.SetPassword); the user types it once in the popup; both logins hold
// it, and the logins of a second account sharing the login too; Thunderbird
// logs in with it unasked. credsync does not react to its own writes.
func (e *env) testSyncAlreadyChanged(t *testing.T) {
	const user, old, new = "gia", "Gia-old-pw-1", "Gia-new-pw-2"
	e.sb.SetPassword(user, old)
	s := e.newScenario(t, e.imapAccount(t, user, old), old, new)
	pop, popName := s.addSibling(user, old)
	e.sb.SetPassword(user, new) // changed elsewhere (Ctrl+Alt+Del, webmail)
	if err := e.tb.ClearAlerts(s.ctx); err != nil {
		t.Fatal(err)
	}
	since := time.Now()
	o := s.sync(new)
	if o.Kind != "success" || !strings.HasPrefix(o.Text, "Done. The password works for incoming and outgoing mail") {
		t.Fatalf("popup shows %s: %q (steps %v, field errors %v)", o.Kind, o.Text, o.Steps, o.FieldErrors)
	}
	for _, step := range []string{"policy", "checking_incoming", "checking_outgoing", "saving"} {
		if o.Steps[step] != "ok" {
			t.Errorf("step %s is %q, want ok (steps %v)", step, o.Steps[step], o.Steps)
		}
	}
	if _, ok := o.Steps["changing"]; ok {
		t.Errorf("steps %v: a sync has no provider step", o.Steps)
	}
	s.wantSiblingStored(o, pop, popName)
	s.wantLogin("imap://127.0.0.1", user, new)
	s.wantLogin("smtp://127.0.0.1", user, new)
	s.wantLogin("mailbox://127.0.0.1", user, new)
	s.wantOneLogin("imap://127.0.0.1", user)
	s.wantOneLogin("smtp://127.0.0.1", user)
	s.noPrompts()
	s.thunderbirdLogsIn("imap", user, e.sb.Logins, user, e.sb.Logins, new)
	popScenario := *s
	popScenario.acct = pop
	popScenario.thunderbirdLogsIn("pop3", user, e.sb.Logins, "", nil, new)
	s.noPropagationSince(since)
	s.noAlerts()
}

// A change through the provider updates an account sharing the login too
// (a sync with the new password, after the change).
func (e *env) testChangeWithSibling(t *testing.T) {
	const user, old, new = "lia", "Lia-old-pw-1", "Lia-new-pw-2"
	e.sb.SetPassword(user, old)
	s := e.newScenario(t, e.imapAccount(t, user, old), old, new)
	pop, popName := s.addSibling(user, old)
	o := s.change()
	s.wantSuccess(o, true)
	s.wantSiblingStored(o, pop, popName)
	s.wantLogin("imap://127.0.0.1", user, new)
	s.wantLogin("smtp://127.0.0.1", user, new)
	s.wantLogin("mailbox://127.0.0.1", user, new)
	s.noPrompts()
}

// (a) A wrong password typed in "I already changed it": the servers refuse
// it, the popup says so, nothing is stored.
func (e *env) testSyncWrongPassword(t *testing.T) {
	const user, old, new, wrong = "hal", "Hal-old-pw-1", "Hal-new-pw-2", "Hal-typo-pw-3"
	e.sb.SetPassword(user, old)
	s := e.newScenario(t, e.imapAccount(t, user, old), old, new)
	e.sb.SetPassword(user, new)
	o := s.sync(wrong)
	if o.Kind != "error" || !strings.Contains(o.Text, "did not work") || !strings.Contains(o.Text, "rejected the password") ||
		!strings.Contains(o.Text, "unchanged") {
		t.Errorf("popup shows %s %q, want the servers' refusal and nothing changed", o.Kind, o.Text)
	}
	if o.Steps["saving"] == "ok" {
		t.Errorf("steps %v: saving must not be ok", o.Steps)
	}
	s.wantLogin("imap://127.0.0.1", user, old)
	s.wantLogin("smtp://127.0.0.1", user, old)
	s.noPrompts()
}

// (b) Automatic propagation: the password was changed at the provider;
// Thunderbird's prompt saved the new INCOMING password ("Enter a new
// password" removes the login, then addLoginAsync after "remember"). The
// outgoing login follows, and so does a second account sharing the login
// (the same mailbox as POP3, whose mailbox:// login is separate); the
// servers accept Thunderbird's own logins with it, with no prompt.
func (e *env) testPropagate(t *testing.T) {
	const user, old, new = "ivy", "Ivy-old-pw-1", "Ivy-new-pw-2"
	e.sb.SetPassword(user, old)
	s := e.newScenario(t, e.imapAccount(t, user, old), old, new)
	pop, _ := s.addSibling(user, old)
	e.sb.SetPassword(user, new)
	if err := e.tb.ClearAlerts(s.ctx); err != nil {
		t.Fatal(err)
	}
	since := time.Now()
	if err := e.tb.SaveLoginAsPrompt(s.ctx, "imap://127.0.0.1", user, new, "add"); err != nil {
		t.Fatal(err)
	}
	s.waitLogin("smtp://127.0.0.1", user, new)
	s.waitLogin("mailbox://127.0.0.1", user, new)
	p := s.waitPropagation(since, s.acct.Key)
	if p.Side != "incoming" || !p.Enabled || len(p.Results) != 2 {
		t.Fatalf("propagation %+v: want incoming, two accounts", p)
	}
	// The sides each account's logins were written for: the IMAP account's
	// outgoing login; the POP3 account's mailbox:// login and, shared with
	// the IMAP account, its smtp:// login.
	for _, r := range p.Results {
		want := map[string][]string{s.acct.Key: {"outgoing"}, pop.Key: {"incoming", "outgoing"}}[r.ID]
		if !r.Stored || !slices.Equal(r.Sides, want) {
			t.Errorf("propagation result %+v: want %v stored", r, want)
		}
	}
	if p.Notification == nil || p.Notification.Title != "Mail password updated" ||
		!strings.Contains(p.Notification.Message, "Thunderbird saved a new password for incoming mail.") ||
		!strings.Contains(p.Notification.Message, "now saved for outgoing mail too") {
		t.Errorf("notification %+v", p.Notification)
	}
	if p.Notification != nil && strings.Contains(p.Notification.Message, new) {
		t.Errorf("the notification shows the password")
	}
	if p.Notification != nil {
		t.Logf("notification: %q / %q", p.Notification.Title, p.Notification.Message)
	}
	s.wantAlert(p)
	s.wantLogin("imap://127.0.0.1", user, new)
	s.wantOneLogin("smtp://127.0.0.1", user)
	s.noPrompts()
	s.thunderbirdLogsIn("imap", user, e.sb.Logins, user, e.sb.Logins, new)
	popScenario := *s
	popScenario.acct = pop
	popScenario.thunderbirdLogsIn("pop3", user, e.sb.Logins, "", nil, new)
}

// (b) A wrong password saved for incoming mail (a typo in Thunderbird's
// prompt, modifyLogin*): the outgoing server refuses it, so the outgoing
// login keeps the old password; the notification says why. A modify that
// keeps the same password is ignored.
func (e *env) testPropagateWrongPassword(t *testing.T) {
	const user, old, new, wrong = "jay", "Jay-old-pw-1", "Jay-new-pw-2", "Jay-typo-pw-3"
	e.sb.SetPassword(user, old)
	s := e.newScenario(t, e.imapAccount(t, user, old), old, new)
	e.sb.SetPassword(user, new)
	if err := e.tb.ClearAlerts(s.ctx); err != nil {
		t.Fatal(err)
	}
	since := time.Now()
	if err := e.tb.SaveLoginAsPrompt(s.ctx, "imap://127.0.0.1", user, old, "modify"); err != nil {
		t.Fatal(err)
	}
	if err := e.tb.SaveLoginAsPrompt(s.ctx, "imap://127.0.0.1", user, wrong, "modify"); err != nil {
		t.Fatal(err)
	}
	p := s.waitPropagation(since, s.acct.Key)
	if len(p.Results) != 1 || p.Results[0].Stored || p.Results[0].Error == nil || p.Results[0].Error.Code != "verification_failed" {
		t.Errorf("propagation %+v: want one verification_failed", p)
	}
	if p.Notification == nil || p.Notification.Title != "Mail password not updated everywhere" ||
		!strings.Contains(p.Notification.Message, "rejected the password") {
		t.Errorf("notification %+v", p.Notification)
	}
	if p.Notification != nil && strings.Contains(p.Notification.Message, wrong) {
		t.Errorf("the notification shows the password")
	}
	if p.Notification != nil {
		t.Logf("notification: %q / %q", p.Notification.Title, p.Notification.Message)
	}
	s.wantAlert(p)
	s.wantLogin("smtp://127.0.0.1", user, old)
	s.noPrompts()
}

// (b) With the setting off, a password saved by Thunderbird stays where it
// was saved.
func (e *env) testPropagateDisabled(t *testing.T) {
	const user, old, new = "kim", "Kim-old-pw-1", "Kim-new-pw-2"
	e.sb.SetPassword(user, old)
	s := e.newScenario(t, e.imapAccount(t, user, old), old, new)
	// Turned off in the options page, as a user does.
	options := s.openOptions()
	defer options.Close(s.ctx)
	var saved string
	wctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
	defer cancel()
	if err := options.WaitFor(wctx, `
const box = document.getElementById("auto-propagate");
if (!box || !box.checked) return null; // on by default, once loaded
box.click();
return true;`, nil, 100*time.Millisecond, nil); err != nil {
		t.Fatalf("options page: the setting is not shown on: %v", err)
	}
	if err := options.WaitFor(wctx, `return document.getElementById("auto-saved").textContent;`, nil, 100*time.Millisecond, &saved); err != nil || saved != "Saved." {
		t.Fatalf("options page says %q (%v), want Saved.", saved, err)
	}
	var st tbharness.Settings
	if err := s.popup.Command(s.ctx, map[string]any{"cmd": "settings"}, &st); err != nil || st.AutoPropagate {
		t.Fatalf("settings after unticking: %+v, %v", st, err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := s.popup.SetAutoPropagate(c, true); err != nil {
			t.Errorf("turning the setting on again: %v", err)
		}
	})
	e.sb.SetPassword(user, new)
	if err := e.tb.ClearAlerts(s.ctx); err != nil {
		t.Fatal(err)
	}
	mark := len(e.sb.Logins())
	since := time.Now()
	if err := e.tb.SaveLoginAsPrompt(s.ctx, "imap://127.0.0.1", user, new, "add"); err != nil {
		t.Fatal(err)
	}
	p := s.waitPropagation(since, s.acct.Key)
	if p.Enabled || len(p.Results) != 0 || p.Notification != nil {
		t.Errorf("propagation %+v: want disabled, nothing done", p)
	}
	s.wantLogin("smtp://127.0.0.1", user, old)
	if n := len(mailLogins(e.sb.Logins()[mark:])); n != 0 {
		t.Errorf("the servers saw %d logins; with the setting off credsync must not verify anything", n)
	}
	s.noAlerts()
}

// (b) The background event page was suspended (its idle timeout, with the
// native port closed): the password Thunderbird saves wakes it through the
// Experiment's persistent onLoginSaved event, and the outgoing login
// follows.
func (e *env) testPropagateWakesEventPage(t *testing.T) {
	const user, old, new = "ned", "Ned-old-pw-1", "Ned-new-pw-2"
	e.sb.SetPassword(user, old)
	s := e.newScenario(t, e.imapAccount(t, user, old), old, new)
	// Nothing may talk to the background meanwhile: that would wake it.
	if err := s.popup.Close(s.ctx); err != nil {
		t.Fatal(err)
	}
	s.popup = nil
	if st, err := e.tb.TerminateBackground(s.ctx, e.addonID); err != nil || st != "stopped" {
		t.Fatalf("terminating the background page: %q, %v", st, err)
	}
	e.sb.SetPassword(user, new)
	start := time.Now()
	if err := e.tb.SaveLoginAsPrompt(s.ctx, "imap://127.0.0.1", user, new, "add"); err != nil {
		t.Fatal(err)
	}
	s.waitLogin("smtp://127.0.0.1", user, new)
	t.Logf("outgoing login followed %s after the save", time.Since(start).Round(time.Millisecond))
	if st, err := e.tb.BackgroundState(s.ctx, e.addonID); err != nil || st != "running" {
		t.Errorf("background state %q, %v: want running", st, err)
	}
	s.noPrompts()
}
