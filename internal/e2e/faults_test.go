//go:build e2e && !windows

package e2e

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/audit"
	"github.com/credsync/credsync/internal/testkit/security"
	"github.com/credsync/credsync/internal/testkit/tbharness"
)

// TestFaults runs SECURITY.md's fault matrix and secret-hygiene checks in a
// real Thunderbird (153 and 140), one instance per version: each fault
// ends with the saved logins all-old or all-new, consistent with the
// provider, and the popup saying which.
func TestFaults(t *testing.T) {
	for _, name := range []string{"153", "140"} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			e := newEnv(t, thunderbird(t, name), name)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := e.tb.RecordConsole(ctx); err != nil {
				t.Fatal(err)
			}
			t.Run("host_killed_mid_change", e.testHostKilled)
			t.Run("outgoing_login_write_fails", e.testSecondWriteFails)
			t.Run("canary_hygiene", func(t *testing.T) { e.testCanaryHygiene(t, start) })
		})
		t.Run(name+"/thunderbird_quits_mid_store", func(t *testing.T) { testThunderbirdQuits(t, name) })
	}
}

// The host is killed (SIGKILL) while the provider is still answering the
// change. The popup reports the outcome as unknown (host_disconnected
// during the change); Thunderbird's logins are all-old, and so is the
// provider (it never applied the change), as Thunderbird's own login
// shows. The extension starts a new host for the next request.
func (e *env) testHostKilled(t *testing.T) {
	const user, old, new = "kai", "Kai-old-pw-1", "Kai-new-pw-2"
	e.sb.SetPassword(user, old)
	s := e.newScenario(t, e.imapAccount(t, user, old), old, new)

	// A provider that takes the request and does not answer.
	arrived, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	provider := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(arrived) })
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	provider.TLS = e.sb.ServerTLSConfig() // trusted by the host through SSL_CERT_FILE
	provider.StartTLS()
	t.Cleanup(provider.Close)
	t.Cleanup(func() { close(release) })
	if err := s.popup.SetBackend(s.ctx, s.acct.Key, "sandbox", provider.URL+"/change"); err != nil {
		t.Fatal(err)
	}

	outcome := make(chan tbharness.Outcome, 1)
	go func() { outcome <- s.change() }()
	select {
	case <-arrived:
	case o := <-outcome:
		t.Fatalf("the change ended before reaching the provider: %+v", o)
	case <-time.After(30 * time.Second):
		t.Fatal("the change did not reach the provider")
	}
	hosts := e.tb.HostProcesses(credsyncBin)
	if len(hosts) != 1 {
		t.Fatalf("%d credsync hosts running, want 1", len(hosts))
	}
	if err := syscall.Kill(hosts[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var o tbharness.Outcome
	select {
	case o = <-outcome:
	case <-time.After(60 * time.Second):
		t.Fatal("the popup did not finish after the host was killed")
	}
	if o.Kind != "error" || !strings.Contains(o.Text, "stopped during the change") || !strings.Contains(o.Text, "may or may not have changed") {
		t.Errorf("popup shows %s %q, want the host_disconnected text for a change (outcome unknown)", o.Kind, o.Text)
	}
	if o.Steps["saving"] == "ok" {
		t.Errorf("steps %v: nothing may be saved", o.Steps)
	}
	s.wantLogin("imap://127.0.0.1", user, old)
	s.wantLogin("smtp://127.0.0.1", user, old)
	s.noPrompts()
	// Consistent with the provider: Thunderbird logs in with what it has.
	s.thunderbirdLogsIn("imap", user, e.sb.Logins, user, e.sb.Logins, old)
	// A new host serves the next request.
	if err := s.popup.Reload(s.ctx); err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := s.popup.Command(s.ctx, map[string]any{"cmd": "hello"}, &h); err != nil || h["name"] != "credsync" {
		t.Fatalf("hello after the kill: %v, %v", h, err)
	}
}

// Writing the second login (outgoing) fails after the first (incoming)
// was written: the extension restores the incoming login, so both hold
// the old password, and the popup says the provider has the new one and
// Thunderbird could not save it. "I already changed it" then stores it:
// all-new.
func (e *env) testSecondWriteFails(t *testing.T) {
	const user, old, new = "ola", "Ola-old-pw-1", "Ola-new-pw-2"
	e.sb.SetPassword(user, old)
	s := e.newScenario(t, e.imapAccount(t, user, old), old, new)
	restore := s.failLoginWrites(func() error { return e.tb.FailLoginWrites(s.ctx, e.addonID, "smtp://") })
	o := s.change()
	calls := restore()
	t.Logf("login writes: %q", calls)
	want := []string{"modify imap://127.0.0.1 ok", "modify smtp://127.0.0.1 failed", "modify imap://127.0.0.1 ok"}
	if !slices.Equal(calls, want) {
		t.Errorf("login writes %q, want %q (incoming written, outgoing failed, incoming restored)", calls, want)
	}
	if o.Kind != "error" || !strings.Contains(o.Text, "changed at the provider") || !strings.Contains(o.Text, "could not save") {
		t.Errorf("popup shows %s %q, want store_failed with the provider changed", o.Kind, o.Text)
	}
	if o.Steps["saving"] != "failed" {
		t.Errorf("steps %v: want saving failed", o.Steps)
	}
	s.wantLogin("imap://127.0.0.1", user, old)
	s.wantLogin("smtp://127.0.0.1", user, old)
	s.wantOneLogin("imap://127.0.0.1", user)
	s.noPrompts()

	// The popup told the user; the recovery stores the new password.
	if o := s.sync(new); o.Kind != "success" {
		t.Fatalf("sync after the failure: %s %q", o.Kind, o.Text)
	}
	s.wantLogin("imap://127.0.0.1", user, new)
	s.wantLogin("smtp://127.0.0.1", user, new)
}

// The canary password runs through a change, an "I already changed it",
// a refused sync and `credsync sync`; then it must be nowhere but where
// Thunderbird keeps passwords (logins.json, key4.db; encrypted): not in
// Thunderbird's log or console (which holds the host's stderr), not in any
// other file of the profile, HOME or XDG_RUNTIME_DIR, not in a file of the
// temporary directory written since the test began, and not in the
// command line or environment of Thunderbird's processes or the host.
func (e *env) testCanaryHygiene(t *testing.T, since time.Time) {
	const user, old = "zoe", "Zoe-old-pw-1"
	canary := security.Canary
	e.sb.SetPassword(user, old)
	s := e.newScenario(t, e.imapAccount(t, user, old), old, canary)
	var findings []security.Finding
	scanProcesses := func(when string) {
		pids := e.tb.Processes()
		if len(e.tb.HostProcesses(credsyncBin)) == 0 || len(pids) < 2 {
			t.Errorf("%s: %d processes, no host: nothing to look at", when, len(pids))
		}
		for _, pid := range pids {
			f, err := security.ScanProcess(pid, canary)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s: %v", when, err)
			}
			findings = append(findings, f...)
		}
	}

	s.wantSuccess(s.change(), true)
	scanProcesses("after the change")
	if o := s.sync(canary); o.Kind != "success" {
		t.Fatalf("sync: %s %q", o.Kind, o.Text)
	}
	if o := s.sync(canary + "-typo"); o.Kind != "error" {
		t.Fatalf("refused sync: %s %q", o.Kind, o.Text)
	}
	waitSocket(t, e.tb.RuntimeDir)
	code, stdout, stderr := runCLISync(s.ctx, t, e.tb.RuntimeDir, e.tb.Home, user+"@127.0.0.1", canary)
	if code != 0 {
		t.Fatalf("credsync sync: exit %d\n%s%s", code, stdout, stderr)
	}
	findings = append(findings, security.ScanBytes("credsync sync output", []byte(stdout+stderr), canary)...)
	scanProcesses("after credsync sync")
	s.wantLogin("imap://127.0.0.1", user, canary)
	s.wantLogin("smtp://127.0.0.1", user, canary)

	console, err := e.tb.ConsoleMessages(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(console, "\n")
	if !strings.Contains(joined, "stderr output from native app credsync") {
		t.Errorf("the console holds no line of the host's stderr (%d messages): the scan would prove nothing", len(console))
	}
	findings = append(findings, security.ScanBytes("Thunderbird's console", []byte(joined), canary)...)
	log, err := os.ReadFile(e.tb.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	findings = append(findings, security.ScanBytes(e.tb.LogPath, log, canary)...)
	files, err := security.Scan([]string{e.tb.Profile, e.tb.Home, e.tb.RuntimeDir}, canary,
		security.ScanOptions{Skip: security.SkipSecretStores})
	if err != nil {
		t.Errorf("scanning the profile: %v", err)
	}
	findings = append(findings, files...)
	tmp, err := security.Scan([]string{os.TempDir()}, canary, security.ScanOptions{Since: since, Skip: security.SkipSecretStores})
	if err != nil {
		t.Logf("scanning %s: %v", os.TempDir(), err) // other processes' files come and go
	}
	findings = append(findings, tmp...)
	// Where Thunderbird keeps it, it is encrypted.
	stores, _ := security.Scan([]string{e.tb.Profile}, canary, security.ScanOptions{})
	for _, f := range stores {
		if f.Form == "plain" && security.ThunderbirdSecretStores[filepath.Base(f.Where)] {
			findings = append(findings, f)
		}
	}
	for _, f := range findings {
		t.Errorf("the canary password reached %s (as %s)", f.Where, f.Form)
	}
}

// Thunderbird quits while the host waits for the extension to store the
// new password (here: at the primary-password prompt, left open). The
// host records the flow as store_unconfirmed with the provider changed,
// and the saved logins are untouched: logins.json and key4.db are the
// same bytes as before (all-old). Running "I already changed it" at the
// next start stores the new password (testSyncAlreadyChanged).
func testThunderbirdQuits(t *testing.T, name string) {
	const user, old, new, primary = "una", "Una-old-pw-1", "Una-new-pw-2", "Primary-pw-7"
	e := newEnv(t, thunderbird(t, name), name+"-quit")
	e.sb.SetPassword(user, old)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	acct, err := e.tb.CreateAccount(ctx, e.imapAccount(t, user, old))
	if err != nil {
		t.Fatal(err)
	}
	popup, err := e.tb.OpenPopup(ctx, e.addonID)
	if err != nil {
		t.Fatal(err)
	}
	if err := popup.SetBackend(ctx, acct.Key, "sandbox", e.sb.ChangeURL); err != nil {
		t.Fatal(err)
	}
	// The seeded logins reach logins.json after the login manager's save
	// delay.
	loginsFile := filepath.Join(e.tb.Profile, "logins.json")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(loginsFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Thunderbird did not save the seeded logins")
		}
	}
	if err := e.tb.SetPrimaryPassword(ctx, primary); err != nil {
		t.Fatal(err)
	}
	if err := e.tb.LockPrimaryPassword(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.tb.SetPromptAutoCancel(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := e.tb.ClearPrompts(ctx); err != nil {
		t.Fatal(err)
	}
	stores := []string{"logins.json", "key4.db"}
	before := map[string][]byte{}
	for _, f := range stores {
		if before[f], err = os.ReadFile(filepath.Join(e.tb.Profile, f)); err != nil {
			t.Fatal(err)
		}
	}
	// Start the change as the user does. From here on no Marionette
	// command may run: it would dismiss the open prompt.
	if err := popup.Eval(ctx, `
const [accountId, current, next] = arguments;
const $ = id => document.getElementById(id);
$("account").value = accountId;
$("account").dispatchEvent(new Event("change", { bubbles: true }));
for (const [id, value] of [["current", current], ["new", next], ["repeat", next]]) {
  $(id).value = value;
  $(id).dispatchEvent(new Event("input", { bubbles: true }));
}
$("change").click();`, []any{acct.Key, old, new}, nil); err != nil {
		t.Fatal(err)
	}
	// Both servers accept the new password; then the host asks the
	// extension to store it, and Thunderbird asks for the primary password.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		n := 0
		for _, l := range e.sb.Logins() {
			if l.Username == user && l.Password == new && l.OK && l.Protocol != "expiry" {
				n++
			}
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new password was not verified: %d logins", n)
		}
	}
	time.Sleep(500 * time.Millisecond)
	hosts := e.tb.HostProcesses(credsyncBin)
	if len(hosts) != 1 {
		t.Fatalf("%d hosts", len(hosts))
	}
	// Thunderbird quits (SIGTERM; SIGKILL if it does not): its end of the
	// host's port closes.
	syscall.Kill(e.tb.Pid(), syscall.SIGTERM)
	for deadline := time.Now().Add(15 * time.Second); !e.tb.Exited(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Log("Thunderbird ignored SIGTERM; SIGKILL")
			syscall.Kill(e.tb.Pid(), syscall.SIGKILL)
			deadline = time.Now().Add(time.Hour)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); len(e.tb.HostProcesses(credsyncBin)) > 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the host outlived Thunderbird by 10 s")
		}
	}
	if err := e.tb.Close(); err != nil {
		t.Logf("closing: %v", err)
	}
	for _, f := range stores {
		after, err := os.ReadFile(filepath.Join(e.tb.Profile, f))
		if err != nil || !bytes.Equal(after, before[f]) {
			t.Errorf("%s changed although the store never happened (%v)", f, err)
		}
	}
	b, err := os.ReadFile(filepath.Join(e.tb.Home, ".local", "state", "credsync", "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	recs, _, err := audit.Tail(bytes.NewReader(b), 0)
	if err != nil || len(recs) == 0 {
		t.Fatalf("audit log: %v\n%s", err, b)
	}
	last := recs[len(recs)-1]
	if last.Kind != "change" || last.Account != acct.Key || last.Outcome != "store_unconfirmed" || !last.Changed {
		t.Fatalf("last audit record %+v, want the change store_unconfirmed with the provider changed", last)
	}
}
