//go:build e2e && !windows

package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/flow"
	"github.com/credsync/credsync/internal/testkit/sandbox"
	"github.com/credsync/credsync/internal/testkit/tbharness"
)

// recheckSchedule is the compressed wait for lagging servers the host of
// the end-to-end suite uses (CREDSYNC_TEST_RECHECK, read only by sandbox
// builds), instead of 1, 3, 6, 10 and 15 minutes.
const recheckSchedule = "1s,2s,3s,4s,6s"

// serverLag: the sandbox's servers take a changed password this long
// after its change endpoint (sandbox.Options.Lag): after the compressed
// schedule's first check, before its last.
const serverLag = 3 * time.Second

// Servers that lag behind the provider (issue 19, item 2; PROTOCOL.md,
// "Waiting for the servers"): the provider takes the new password, the
// mail servers refuse it for 3 s. Through the real popup: the change
// waits instead of failing, Thunderbird's own checks of the account are
// paused meanwhile, the incoming server alone is asked again, and the
// moment it accepts the password every login is stored; then the checks
// are back. At most LockoutBudget failed logins in the sandbox's log; the
// audit record, written at the end, holds no password. Then the same with
// the popup closed during the wait: a notification reports the end.
func (e *env) testServersLag(t *testing.T) {
	e.sb.SetLag(serverLag)
	t.Cleanup(func() { e.sb.SetLag(0) })

	t.Run("popup_open", func(t *testing.T) {
		const user, old, new = "lea", "Lea-old-pw-1", "Lea-new-pw-2"
		e.sb.SetPassword(user, old)
		s := e.newScenario(t, e.imapAccount(t, user, old), old, new)
		mark := len(e.sb.Logins())
		if err := s.popup.StartChange(s.ctx, s.acct.Key, old, new); err != nil {
			t.Fatal(err)
		}
		w, err := s.popup.WaitWaiting(s.ctx, s.acct.Key, 20*time.Second)
		if err != nil {
			t.Fatalf("the change did not wait for the servers: %v", err)
		}
		if _, err := time.Parse(time.RFC3339, w.NextCheck); err != nil || w.Budget != flow.LockoutBudget || w.FailedLogins != 2 {
			t.Errorf("waiting %+v: want a next check (RFC 3339) and the first verification's 2 failed logins of %d", w, flow.LockoutBudget)
		}
		if paused, err := s.popup.PausedChecks(s.ctx); err != nil || !slices.Contains(paused, s.acct.Key) {
			t.Errorf("Thunderbird's checks paused for %v (%v); want %s", paused, err, s.acct.Key)
		}
		line, err := s.popup.WaitWaitingLine(s.ctx, 10*time.Second)
		if err != nil || !strings.Contains(line.Text, "Waiting for the mail servers") || !strings.Contains(line.Text, "2 of 4 failed logins") || !line.Cancel {
			t.Errorf("the popup's waiting line %+v (%v): want the wait, its failed logins and a Cancel", line, err)
		}
		o, err := s.popup.WaitOutcome(s.ctx, 60*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("popup: %s %q steps %v", o.Kind, o.Text, o.Steps)
		s.wantSuccess(o, true)
		s.wantLogin("imap://127.0.0.1", user, new)
		s.wantLogin("smtp://127.0.0.1", user, new)
		if paused, err := s.popup.PausedChecks(s.ctx); err != nil || slices.Contains(paused, s.acct.Key) {
			t.Errorf("Thunderbird's checks still paused for %v (%v)", paused, err)
		}
		wantLagLogins(t, e.sb.Logins()[mark:], user, new)
		s.wantAuditWithoutPassword(old, new)
		s.noPrompts()
		s.thunderbirdLogsIn("imap", user, e.sb.Logins, user, e.sb.Logins, new)
	})

	t.Run("popup_closed_notification", func(t *testing.T) {
		const user, old, new = "lou", "Lou-old-pw-1", "Lou-new-pw-2"
		e.sb.SetPassword(user, old)
		s := e.newScenario(t, e.imapAccount(t, user, old), old, new)
		if err := e.tb.ClearAlerts(s.ctx); err != nil {
			t.Fatal(err)
		}
		mark := len(e.sb.Logins())
		if err := s.popup.StartChange(s.ctx, s.acct.Key, old, new); err != nil {
			t.Fatal(err)
		}
		if _, err := s.popup.WaitWaiting(s.ctx, s.acct.Key, 20*time.Second); err != nil {
			t.Fatalf("the change did not wait for the servers: %v", err)
		}
		if err := s.popup.Close(s.ctx); err != nil {
			t.Fatal(err)
		}
		s.popup = nil
		var alert tbharness.Alert
		deadline := time.Now().Add(30 * time.Second)
		for alert.Title == "" && time.Now().Before(deadline) {
			alerts, err := e.tb.Alerts(s.ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range alerts {
				if strings.Contains(a.Text, "new password") {
					alert = a
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		if alert.Title != "Mail password saved" || !strings.Contains(alert.Text, "now accept the new password") ||
			strings.Contains(alert.Text, new) || strings.Contains(alert.Text, old) {
			t.Fatalf("notification %+v; want the end of the wait: saved", alert)
		}
		s.wantLogin("imap://127.0.0.1", user, new)
		s.wantLogin("smtp://127.0.0.1", user, new)
		wantLagLogins(t, e.sb.Logins()[mark:], user, new)
		s.wantAuditWithoutPassword(old, new)
	})
}

// wantLagLogins checks the lockout arithmetic in the sandbox's log: at
// most LockoutBudget failed logins with the new password (here 3: the
// first verification of IMAP and SMTP, one IMAP recheck), no SMTP login
// between the first verification and the IMAP server's acceptance, and
// the new password accepted by both in the end.
func wantLagLogins(t *testing.T, seen []sandbox.Login, user, password string) {
	t.Helper()
	var failed int
	var order []string
	for _, l := range mailLogins(seen) {
		if l.Username != user || l.Password != password {
			continue
		}
		if !l.OK {
			failed++
		}
		order = append(order, l.Protocol+map[bool]string{true: ":ok", false: ":refused"}[l.OK])
	}
	t.Logf("logins with the new password: %v", order)
	if failed > flow.LockoutBudget || failed < 3 {
		t.Errorf("%d failed logins with the new password; want 3 (at most %d)", failed, flow.LockoutBudget)
	}
	firstOK := slices.Index(order, "imap:ok")
	if firstOK < 0 || len(order) < firstOK+2 || order[firstOK+1] != "smtp:ok" {
		t.Fatalf("order %v: want the IMAP server's acceptance, then SMTP", order)
	}
	if firstOK < 3 {
		t.Fatalf("order %v: want the first verification and at least one refused recheck before the acceptance", order)
	}
	if n := strings.Count(strings.Join(order[2:firstOK], " "), "smtp"); n != 0 {
		t.Errorf("order %v: SMTP asked again before IMAP accepted", order)
	}
}

// wantAuditWithoutPassword: the change's audit record says stored and the
// waiting step, and the audit log holds neither password.
func (s *scenario) wantAuditWithoutPassword(passwords ...string) {
	s.t.Helper()
	rec := s.lastAudit("change")
	steps := ""
	for _, st := range rec.Steps {
		steps += st.Step + ":" + st.State + " "
	}
	if rec.Outcome != "stored" || !rec.Changed || !strings.Contains(steps, "waiting:ok") {
		s.t.Errorf("audit record %+v; want stored after waiting", rec)
	}
	b, err := os.ReadFile(filepath.Join(s.e.tb.Home, ".local", "state", "credsync", "audit.log"))
	if err != nil {
		s.t.Fatal(err)
	}
	for _, pw := range passwords {
		if strings.Contains(string(b), pw) {
			s.t.Errorf("the audit log holds a password")
		}
	}
}
