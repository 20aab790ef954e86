//go:build e2e && !windows

package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/credsync/credsync/internal/audit"
	"github.com/credsync/credsync/internal/testkit/sandbox"
	"github.com/credsync/credsync/internal/testkit/tbharness"
)

// One transaction per password (PROTOCOL.md): a change writes every login
// the password belongs to, across accounts, all or none, after one login
// to each distinct server.

// lastResult is the host's final answer to the scenario's last change or
// sync, as the popup got it.
func (s *scenario) lastResult() tbharness.FlowResult {
	s.t.Helper()
	r, err := s.popup.LastResult(s.ctx, s.acct.Key)
	if err != nil {
		s.t.Fatal(err)
	}
	return r
}

// lastAudit is the host's last audit record of kind for the scenario's
// account.
func (s *scenario) lastAudit(kind string) audit.Record {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(s.e.tb.Home, ".local", "state", "credsync", "audit.log"))
	if err != nil {
		s.t.Fatal(err)
	}
	recs, _, err := audit.Tail(bytes.NewReader(b), 0)
	if err != nil {
		s.t.Fatalf("audit log: %v", err)
	}
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Kind == kind && recs[i].Account == s.acct.Key {
			return recs[i]
		}
	}
	s.t.Fatalf("no %s record for %s in the audit log (%d records)", kind, s.acct.Key, len(recs))
	return audit.Record{}
}

// wantTxLogins checks a transaction's logins: exactly these, in any order,
// each in its state (origin + " " + user name → state).
func wantTxLogins(t *testing.T, got []tbharness.TxLogin, want map[string]string) {
	t.Helper()
	seen := map[string]bool{}
	for _, l := range got {
		k := l.Origin + " " + l.Username
		if seen[k] {
			t.Errorf("login %s listed twice: %+v", k, got)
		}
		seen[k] = true
		if w, ok := want[k]; !ok {
			t.Errorf("the transaction wrote login %s (%s), which is not the password's", k, l.State)
		} else if l.State != w {
			t.Errorf("login %s is %q, want %q", k, l.State, w)
		}
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("the transaction did not list login %s: %+v", k, got)
		}
	}
}

// wantTxAccounts checks that a transaction names exactly these accounts.
func wantTxAccounts(t *testing.T, got []tbharness.TxAccount, ids ...string) {
	t.Helper()
	var have []string
	for _, a := range got {
		have = append(have, a.ID)
	}
	slices.Sort(have)
	want := slices.Sorted(slices.Values(ids))
	if !slices.Equal(have, want) {
		t.Errorf("the transaction touched accounts %v, want %v (%+v)", have, want, got)
	}
}

// wantLoginsOnce checks that the servers saw exactly one login per key,
// each with password and accepted, and no other login.
func (s *scenario) wantLoginsOnce(seen []sandbox.Login, password string, keys ...sandbox.LoginKey) {
	s.t.Helper()
	seen = mailLogins(seen)
	counts := sandbox.CountLogins(seen)
	s.t.Logf("the servers saw %d logins: %v", len(seen), counts)
	for _, k := range keys {
		if counts[k] != 1 {
			s.t.Errorf("%s: %d logins, want exactly 1", k, counts[k])
		}
	}
	for k, n := range counts {
		if !slices.Contains(keys, k) {
			s.t.Errorf("%s: %d unexpected logins", k, n)
		}
	}
	for _, l := range seen {
		if l.Password != password || !l.OK {
			s.t.Errorf("%s %s@%s: logged in with %s (accepted: %v), want %s", l.Protocol, l.Username, l.Addr, s.which(l.Password), l.OK, s.which(password))
		}
	}
}

// A change touching two accounts (an IMAP account and a POP3 account of
// the same mailbox) where the login manager refuses to write the second
// account's login (mailbox://): the extension puts back what it wrote, so
// no account holds the new password; the host reports store_failed with
// the provider changed, every login unchanged or restored; the popup says
// so, naming both accounts. "I already changed it" then stores the new
// password for both.
func (e *env) testChangeStoreFailsForSibling(t *testing.T) {
	const user, old, new = "max", "Max-old-pw-1", "Max-new-pw-2"
	const imapName, popName = "Max IMAP", "Max POP3"
	e.sb.SetPassword(user, old)
	s := e.newScenario(t, e.namedIMAPAccount(t, imapName, user, old), old, new)
	pop, _ := s.addSiblingNamed(user, old, popName)

	restore := s.failLoginWrites(func() error { return e.tb.FailLoginWrite(s.ctx, e.addonID, "mailbox://127.0.0.1", user) })
	mark := len(e.sb.Logins())
	o := s.change()
	seen := e.sb.LoginsSince(mark)
	calls := restore()

	// The Experiment wrote the first account's logins, was refused the
	// second account's, and put the first ones back, in reverse order.
	t.Logf("login writes: %q", calls)
	want := []string{
		"modify imap://127.0.0.1 ok", "modify smtp://127.0.0.1 ok", "modify mailbox://127.0.0.1 failed",
		"modify smtp://127.0.0.1 ok", "modify imap://127.0.0.1 ok",
	}
	if !slices.Equal(calls, want) {
		t.Errorf("login writes %q, want %q (both logins of the first account written, the second account's refused, the first two restored)", calls, want)
	}

	// The host's answer, as the popup got it.
	r := s.lastResult()
	if r.OK || r.Error == nil {
		t.Fatalf("the change succeeded (%+v), want store_failed", r.Result)
	}
	if r.Error.Code != "store_failed" || !r.Error.Changed {
		t.Errorf("error %s (changed: %v) %q, want store_failed with changed: true", r.Error.Code, r.Error.Changed, r.Error.Message)
	}
	wantTxLogins(t, r.Error.Logins, map[string]string{
		"imap://127.0.0.1 " + user:    "restored",
		"smtp://127.0.0.1 " + user:    "restored",
		"mailbox://127.0.0.1 " + user: "unchanged",
	})
	wantTxAccounts(t, r.Error.Accounts, s.acct.Key, pop.Key)
	if rec := s.lastAudit(audit.KindChange); rec.Outcome != "store_failed" || !rec.Changed ||
		!slices.Equal(slices.Sorted(slices.Values(rec.Accounts)), slices.Sorted(slices.Values([]string{s.acct.Key, pop.Key}))) {
		t.Errorf("audit record %+v, want store_failed, changed, both accounts", rec)
	}

	// The popup: the provider has the new password, Thunderbird could not
	// save it, and both accounts keep the old one.
	if o.Kind != "error" {
		t.Errorf("popup shows %s %q, want an error", o.Kind, o.Text)
	}
	for _, marker := range []string{"changed at the provider", "could not save", "still has the old password", "“" + imapName + "”", "“" + popName + "”"} {
		if !strings.Contains(o.Text, marker) {
			t.Errorf("popup text %q lacks %q", o.Text, marker)
		}
	}
	if o.Steps["saving"] != "failed" || o.Steps["sibling:"+pop.Key] != "failed" {
		t.Errorf("steps %v: want saving and the sibling's step failed", o.Steps)
	}

	// Thunderbird's saved logins all hold the old password.
	s.wantLogin("imap://127.0.0.1", user, old)
	s.wantLogin("smtp://127.0.0.1", user, old)
	s.wantLogin("mailbox://127.0.0.1", user, old)
	s.wantOneLogin("imap://127.0.0.1", user)
	s.wantOneLogin("smtp://127.0.0.1", user)
	s.wantOneLogin("mailbox://127.0.0.1", user)
	s.noPrompts()

	// The provider does have the new one: the host verified it, once per
	// server, before the store.
	s.wantLoginsOnce(seen, new,
		sandbox.LoginKey{Protocol: "imap", Addr: e.sb.IMAPS, Username: user},
		sandbox.LoginKey{Protocol: "pop3", Addr: e.sb.POP3S, Username: user},
		sandbox.LoginKey{Protocol: "smtp", Addr: e.sb.SMTPS, Username: user})

	// What the popup tells the user to do stores it for both accounts.
	o = s.sync(new)
	if o.Kind != "success" {
		t.Fatalf("sync after the failure: %s %q", o.Kind, o.Text)
	}
	s.wantSiblingStored(o, pop, popName)
	s.wantLogin("imap://127.0.0.1", user, new)
	s.wantLogin("smtp://127.0.0.1", user, new)
	s.wantLogin("mailbox://127.0.0.1", user, new)
}

// The same mailbox as an IMAP and a POP3 account, sending through one SMTP
// login, plus another user's account on the same servers (with the same
// old password, so only the user name tells them apart): the change
// writes exactly the IMAP, POP3 (mailbox://) and first user's SMTP logins
// after one login to each of the three servers; the other user's logins
// and servers are untouched; Thunderbird then logs in with what each
// login holds.
func (e *env) testChangeMailboxIMAPPOP3SharedSMTP(t *testing.T) {
	const user, other, old, new = "ned", "ora", "Ned-old-pw-1", "Ned-new-pw-2"
	const imapName, popName, otherName = "Ned IMAP", "Ned POP3", "Ora"
	e.sb.SetPassword(user, old)
	e.sb.SetPassword(other, old)
	s := e.newScenario(t, e.namedIMAPAccount(t, imapName, user, old), old, new)
	ora := s.addAccount(e.namedIMAPAccount(t, otherName, other, old))
	pop, _ := s.addSiblingNamed(user, old, popName) // checks the plan: the IMAP account shares with the POP3 one only
	accts, err := s.popup.Accounts(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accts {
		if a.ID == ora.Key && len(a.Siblings) != 0 {
			t.Errorf("%s (another user) has siblings %v, want none", otherName, a.Siblings)
		}
		if a.ID == pop.Key && !slices.Equal(a.Siblings, []string{s.acct.Key}) {
			t.Errorf("%s has siblings %v, want [%s]", popName, a.Siblings, s.acct.Key)
		}
	}

	mark := len(e.sb.Logins())
	o := s.change()
	seen := e.sb.LoginsSince(mark)
	s.wantSuccess(o, true)
	s.wantSiblingStored(o, pop, popName)
	if strings.Contains(o.Text, otherName) {
		t.Errorf("popup text %q names %s, whose password did not change", o.Text, otherName)
	}

	// Each server once, with the new password; never as the other user.
	s.wantLoginsOnce(seen, new,
		sandbox.LoginKey{Protocol: "imap", Addr: e.sb.IMAPS, Username: user},
		sandbox.LoginKey{Protocol: "pop3", Addr: e.sb.POP3S, Username: user},
		sandbox.LoginKey{Protocol: "smtp", Addr: e.sb.SMTPS, Username: user})

	// The host's answer: the two accounts, three logins, three servers.
	r := s.lastResult()
	if !r.OK || r.Result == nil {
		t.Fatalf("result %+v", r.Error)
	}
	if !r.Result.Changed || !r.Result.Stored {
		t.Errorf("result changed %v stored %v, want both", r.Result.Changed, r.Result.Stored)
	}
	wantTxAccounts(t, r.Result.Accounts, s.acct.Key, pop.Key)
	wantTxLogins(t, r.Result.Logins, map[string]string{
		"imap://127.0.0.1 " + user:    "stored",
		"smtp://127.0.0.1 " + user:    "stored",
		"mailbox://127.0.0.1 " + user: "stored",
	})
	servers := map[string]int{}
	for _, sv := range r.Result.Servers {
		servers[sv.Protocol+" "+sv.Username]++
		if sv.Outcome != "ok" {
			t.Errorf("server %+v", sv)
		}
	}
	if len(r.Result.Servers) != 3 || servers["imap "+user] != 1 || servers["pop3 "+user] != 1 || servers["smtp "+user] != 1 {
		t.Errorf("the result lists servers %+v, want imap, pop3 and smtp of %s once each", r.Result.Servers, user)
	}
	if rec := s.lastAudit(audit.KindChange); rec.Outcome != audit.OutcomeStored || !rec.Changed ||
		!slices.Equal(slices.Sorted(slices.Values(rec.Accounts)), slices.Sorted(slices.Values([]string{s.acct.Key, pop.Key}))) {
		t.Errorf("audit record %+v, want stored, changed, the IMAP and POP3 accounts", rec)
	}

	// Exactly the right logins changed.
	s.wantLogin("imap://127.0.0.1", user, new)
	s.wantLogin("mailbox://127.0.0.1", user, new)
	s.wantLogin("smtp://127.0.0.1", user, new)
	s.wantLogin("imap://127.0.0.1", other, old)
	s.wantLogin("smtp://127.0.0.1", other, old)
	for _, l := range []struct{ origin, user string }{
		{"imap://127.0.0.1", user}, {"mailbox://127.0.0.1", user}, {"smtp://127.0.0.1", user},
		{"imap://127.0.0.1", other}, {"smtp://127.0.0.1", other},
	} {
		s.wantOneLogin(l.origin, l.user)
	}
	s.noPrompts()

	// Thunderbird agrees with the servers: the mailbox's accounts log in
	// with the new password, the other user's with the old one.
	s.thunderbirdLogsIn("imap", user, e.sb.Logins, user, e.sb.Logins, new)
	popScenario := *s
	popScenario.acct = pop
	popScenario.thunderbirdLogsIn("pop3", user, e.sb.Logins, user, e.sb.Logins, new)
	oraScenario := *s
	oraScenario.acct = ora
	oraScenario.thunderbirdLogsIn("imap", other, e.sb.Logins, other, e.sb.Logins, old)
}
