//go:build e2e && !windows

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/testkit/sandbox"
	"github.com/credsync/credsync/internal/testkit/tbharness"
)

// credsyncBin is the host binary under test (built once in TestMain).
var credsyncBin string

// extensionPath is the add-on installed in every Thunderbird: the .xpi
// (CREDSYNC_EXTENSION, or built once in TestMain), which holds the popup's
// strength estimator besides extension/ (scripts/xpi).
var extensionPath string

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		code = 1
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "credsync-e2e-bin-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(dir)
	goBin, err := exec.LookPath("go")
	if err != nil && (os.Getenv("CREDSYNC_BIN") == "" || os.Getenv("CREDSYNC_EXTENSION") == "") {
		return 1, fmt.Errorf("no go command to build cmd/credsync and the .xpi (or set CREDSYNC_BIN and CREDSYNC_EXTENSION): %w", err)
	}
	if b := os.Getenv("CREDSYNC_BIN"); b != "" {
		if credsyncBin, err = filepath.Abs(b); err != nil {
			return 1, err
		}
	} else {
		credsyncBin = filepath.Join(dir, "credsync")
		start := time.Now()
		// With the sandbox back-end, which release builds leave out.
		cmd := exec.Command(goBin, "build", "-tags", "sandbox", "-o", credsyncBin, "github.com/credsync/credsync/cmd/credsync")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return 1, fmt.Errorf("building cmd/credsync: %w", err)
		}
		fmt.Fprintf(os.Stderr, "e2e: built credsync in %s\n", time.Since(start).Round(time.Millisecond))
	}
	if x := os.Getenv("CREDSYNC_EXTENSION"); x != "" {
		if extensionPath, err = filepath.Abs(x); err != nil {
			return 1, err
		}
	} else {
		// The .xpi of this tree's extension/, with the estimator npm
		// installed in scripts/zxcvbn (make xpi installs it).
		extensionPath = filepath.Join(dir, "credsync.xpi")
		cmd := exec.Command(goBin, "run", "./scripts/xpi", "-o", extensionPath, "-npm", "scripts/zxcvbn", "extension")
		cmd.Dir = filepath.Join("..", "..")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return 1, fmt.Errorf("building the .xpi (run make xpi, or set CREDSYNC_EXTENSION): %w", err)
		}
	}
	return m.Run(), nil
}

// thunderbirds returns the builds to test, by name.
func thunderbird(t *testing.T, name string) string {
	t.Helper()
	switch name {
	case "153":
		if _, err := tbharness.FindBinary(tbharness.System153); err != nil {
			t.Fatalf("Thunderbird 153: %v (run scripts/thunderbird)", err)
		}
		return tbharness.System153
	case "140":
		dir := tbharness.Default140Dir()
		b, err := tbharness.FindBinary(dir)
		if err != nil {
			if os.Getenv("CREDSYNC_TB140") != "" {
				t.Fatalf("CREDSYNC_TB140=%s: %v", dir, err)
			}
			t.Skipf("Thunderbird 140 not found in %s (run scripts/thunderbird or set CREDSYNC_TB140)", dir)
		}
		if b.Major != 140 {
			t.Fatalf("%s is Thunderbird %s, want 140", dir, b.Version)
		}
		return dir
	}
	t.Fatalf("unknown Thunderbird %q", name)
	return ""
}

// TestThunderbird runs every scenario on Thunderbird 153 and 140, one
// Thunderbird instance per version, fresh accounts (and user names) per
// scenario.
func TestThunderbird(t *testing.T) {
	for _, name := range []string{"153", "140"} {
		t.Run(name, func(t *testing.T) {
			bin := thunderbird(t, name)
			e := newEnv(t, bin, name)
			start := time.Now()
			t.Run("change", e.testChange)
			t.Run("verification_fails", e.testVerificationFails)
			t.Run("change_servers_lag", e.testServersLag)
			t.Run("pop3", e.testPOP3)
			t.Run("outgoing_other_host_and_user", e.testOutgoingOtherHostAndUser)
			t.Run("primary_password", e.testPrimaryPassword)
			t.Run("primary_password_locked_prompt_cancelled", e.testPrimaryPasswordLocked)
			t.Run("sync_already_changed", e.testSyncAlreadyChanged)
			t.Run("sync_wrong_password", e.testSyncWrongPassword)
			t.Run("change_with_sibling", e.testChangeWithSibling)
			t.Run("change_store_fails_for_sibling", e.testChangeStoreFailsForSibling)
			t.Run("change_mailbox_imap_pop3_shared_smtp", e.testChangeMailboxIMAPPOP3SharedSMTP)
			t.Run("propagate_incoming_to_outgoing_and_sibling", e.testPropagate)
			t.Run("propagate_wrong_password", e.testPropagateWrongPassword)
			t.Run("propagate_disabled", e.testPropagateDisabled)
			t.Run("options_minimum_strength", e.testUserMinimum)
			t.Run("propagate_wakes_event_page", e.testPropagateWakesEventPage)
			t.Run("propagate_outgoing_first", e.testPropagateOutgoingFirst)
			t.Run("guided_no_backend", e.testGuided)
			t.Run("aruba_two_factor_guided", e.testArubaTwoFactor)
			t.Run("cli_sync", e.testCLISync)
			t.Run("expiry_notice_click_off_refused", e.testExpiry)
			t.Run("expiry_not_after_failed_login", e.testExpiryAfterFailedLogin)
			// Its own Thunderbird: an Italian UI and the administrator's settings.
			t.Run("italian_administrator_meter_minimum_breach_check", func(t *testing.T) { testItalianAdministrator(t, bin, name) })
			t.Logf("Thunderbird %s: start %s, scenarios %s", name,
				e.tb.StartDuration.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		})
	}
}

// env is one Thunderbird with the credsync host registered, the extension
// installed temporarily, and a sandbox whose CA both trust.
type env struct {
	name    string
	tb      *tbharness.TB
	sb      *sandbox.Sandbox
	addonID string
}

func newEnv(t *testing.T, bin, name string) *env {
	return newEnvWith(t, bin, name, envOptions{})
}

// newEnvWithCAs is newEnv with more CAs (PEM) that Thunderbird and the host
// trust besides the sandbox's (e.g. the real mail stack's).
func newEnvWithCAs(t *testing.T, bin, name string, extraCAs [][]byte) *env {
	return newEnvWith(t, bin, name, envOptions{CAs: extraCAs})
}

// envOptions are what a Thunderbird of newEnvWith starts with besides the
// sandbox and the add-on.
type envOptions struct {
	// CAs (PEM) are trusted by Thunderbird and the host besides the sandbox's.
	CAs [][]byte
	// Locale is Thunderbird's UI locale (tbharness.SetLocale), set before
	// the add-on is installed; "" leaves it English.
	Locale string
	// Managed returns the add-on's managed storage (what an administrator
	// sets with the 3rdparty policy), given the sandbox; nil: none. It is
	// written as a managed-storage manifest in the home directory before
	// Thunderbird starts, and the add-on reads it once.
	Managed func(*sandbox.Sandbox) map[string]any
}

// newEnvWith is newEnv with options.
func newEnvWith(t *testing.T, bin, name string, o envOptions) *env {
	extraCAs := o.CAs
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	state := t.TempDir()
	if dir := os.Getenv("CREDSYNC_E2E_ARTIFACTS"); dir != "" {
		state = filepath.Join(dir, "thunderbird-"+name)
		if err := os.RemoveAll(state); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(state, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	home := filepath.Join(state, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, credsyncBin, "install", "--home", home).CombinedOutput()
	if err != nil {
		t.Fatalf("credsync install --home: %v\n%s", err, out)
	}
	manifest := filepath.Join(home, ".mozilla", "native-messaging-hosts", "credsync.json")
	if _, err := os.Stat(manifest); err != nil {
		t.Fatalf("credsync install wrote no %s: %v\n%s", manifest, err, out)
	}

	sb, err := sandbox.Start(sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	if o.Managed != nil {
		if err := writeManagedStorage(home, o.Managed(sb)); err != nil {
			t.Fatal(err)
		}
	}
	caFile := filepath.Join(state, "sandbox-ca.pem")
	bundle := append([]byte(nil), sb.CAPEM...)
	for _, ca := range extraCAs {
		bundle = append(append(bundle, '\n'), ca...)
	}
	if err := os.WriteFile(caFile, bundle, 0o600); err != nil {
		t.Fatal(err)
	}

	tb, err := tbharness.Launch(ctx, tbharness.Options{
		Binary:   bin,
		StateDir: state,
		Home:     home,
		// The host Thunderbird starts inherits this: Go then trusts the sandbox CA.
		// CREDSYNC_TEST_RECHECK compresses the wait for lagging servers
		// (lag_test.go): a change the servers refuse ends in seconds.
		Env:  []string{"SSL_CERT_FILE=" + caFile, "CREDSYNC_TEST_RECHECK=" + recheckSchedule},
		Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tb.Close(); err != nil {
			t.Errorf("closing Thunderbird: %v", err)
		}
		if t.Failed() {
			t.Logf("Thunderbird %s log (%s), filtered:\n%s", name, tb.LogPath, logTail(tb.Log(), 150))
		}
	})
	for _, ca := range append([][]byte{sb.CAPEM}, extraCAs...) {
		if _, err := tb.ImportCA(ctx, ca); err != nil {
			t.Fatal(err)
		}
	}
	// A headless Thunderbird shows no notification: record them instead.
	if err := tb.RecordAlerts(ctx); err != nil {
		t.Fatal(err)
	}
	if o.Locale != "" {
		if err := tb.SetLocale(ctx, o.Locale); err != nil {
			t.Fatal(err)
		}
	}
	id, err := tb.InstallAddon(ctx, extensionPath)
	if err != nil {
		t.Fatalf("installing %s: %v", extensionPath, err)
	}
	if id != tbharness.ExtensionID {
		t.Fatalf("installed add-on %q, want %q", id, tbharness.ExtensionID)
	}
	st, err := tb.Addon(ctx, id)
	if err != nil || !st.Active || !st.Temporary {
		t.Fatalf("add-on state %+v, %v", st, err)
	}
	return &env{name: name, tb: tb, sb: sb, addonID: id}
}

// writeManagedStorage writes the add-on's managed storage as Thunderbird
// reads it without enterprise policies: a native manifest of type
// "storage" in ~/.mozilla/managed-storage/<add-on id>.json.
func writeManagedStorage(home string, data map[string]any) error {
	dir := filepath.Join(home, ".mozilla", "managed-storage")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	manifest, err := json.Marshal(map[string]any{
		"name":        tbharness.ExtensionID,
		"description": "credsync end-to-end test: the administrator's settings",
		"type":        "storage",
		"data":        data,
	})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, tbharness.ExtensionID+".json"), manifest, 0o600)
}

// logTail returns the last n lines of a Thunderbird log without the
// headless GTK noise.
func logTail(log string, n int) string {
	var keep []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "Gtk-CRITICAL") || strings.Contains(l, "gtk_icon_theme") || strings.TrimSpace(l) == "" {
			continue
		}
		keep = append(keep, l)
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return strings.Join(keep, "\n")
}

func hostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	h, p, ok := strings.Cut(addr, ":")
	n, err := strconv.Atoi(p)
	if !ok || err != nil {
		t.Fatalf("address %q", addr)
	}
	return h, n
}

// scenario is one account and its passwords.
type scenario struct {
	e       *env
	t       *testing.T
	ctx     context.Context
	acct    tbharness.Account
	spec    tbharness.AccountSpec
	old     string
	new     string
	popup   *tbharness.Popup
	started time.Time
}

// newScenario creates the account (its old passwords stored as Thunderbird
// stores them), opens the extension's popup page, and chooses the sandbox
// back-end for the account through the extension.
func (e *env) newScenario(t *testing.T, spec tbharness.AccountSpec, old, new string) *scenario {
	return e.newScenarioWith(t, spec, old, new, "sandbox", e.sb.ChangeURL)
}

// newScenarioWith is newScenario with another back-end and URL; an empty
// backend chooses none.
func (e *env) newScenarioWith(t *testing.T, spec tbharness.AccountSpec, old, new, backend, backendURL string) *scenario {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	s := &scenario{e: e, t: t, ctx: ctx, spec: spec, old: old, new: new, started: time.Now()}
	acct, err := e.tb.CreateAccount(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	s.acct = acct
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if s.popup != nil {
			_ = s.popup.Close(c)
		}
		if err := e.tb.RemoveAccount(c, acct); err != nil {
			t.Errorf("removing account: %v", err)
		}
		t.Logf("scenario took %s", time.Since(s.started).Round(time.Millisecond))
	})
	if err := e.tb.ClearPrompts(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("account %s created after %s", acct.Key, time.Since(s.started).Round(time.Millisecond))
	popup, err := e.tb.OpenPopup(ctx, e.addonID)
	if err != nil {
		t.Fatal(err)
	}
	s.popup = popup
	t.Logf("popup page ready after %s", time.Since(s.started).Round(time.Millisecond))
	if backend != "" {
		if err := popup.SetBackend(ctx, acct.Key, backend, backendURL); err != nil {
			t.Fatal(err)
		}
		t.Logf("back-end chosen after %s", time.Since(s.started).Round(time.Millisecond))
	}
	accts, err := popup.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range accts {
		if a.ID == acct.Key {
			found = true
			switch {
			case !a.PasswordBased:
				t.Fatalf("extension sees account %s as %+v", acct.Key, a)
			case backend == "" && a.Backend != nil:
				t.Fatalf("account %s has back-end %+v, want none", acct.Key, *a.Backend)
			case backend != "" && (a.Backend == nil || a.Backend.Name != backend || a.Backend.URL != backendURL):
				t.Fatalf("extension sees account %s as %+v", acct.Key, a)
			}
		}
	}
	if !found {
		t.Fatalf("extension does not list account %s: %+v", acct.Key, accts)
	}
	return s
}

// which names a password without showing it.
func (s *scenario) which(pw string) string {
	switch pw {
	case s.old:
		return "the old password"
	case s.new:
		return "the new password"
	}
	return "another password (" + tbharness.Mask(pw) + ")"
}

// change submits the popup's form and returns what it finally shows.
func (s *scenario) change() tbharness.Outcome {
	s.t.Helper()
	start := time.Now()
	o, err := s.popup.Change(s.ctx, s.acct.Key, s.old, s.new, 90*time.Second)
	if err != nil {
		s.t.Fatalf("popup change: %v", err)
	}
	s.t.Logf("popup after %s: %s %q steps %v", time.Since(start).Round(time.Millisecond), o.Kind, o.Text, o.Steps)
	return o
}

// wantLogin checks the saved login for origin/user.
func (s *scenario) wantLogin(origin, user, password string) {
	s.t.Helper()
	l, ok, err := s.e.tb.LoginFor(s.ctx, origin, user)
	if err != nil {
		s.t.Fatal(err)
	}
	if !ok {
		all, _ := s.e.tb.Logins(s.ctx)
		s.t.Fatalf("no saved login %s for %q; logins: %v", origin, user, all)
	}
	if l.Password != password {
		s.t.Errorf("saved login %s for %q holds %s, want %s", origin, user, s.which(l.Password), s.which(password))
	}
}

// countLogins counts saved logins for origin/user (there must be exactly one).
func (s *scenario) wantOneLogin(origin, user string) {
	s.t.Helper()
	all, err := s.e.tb.Logins(s.ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	n := 0
	for _, l := range all {
		if l.Origin == origin && l.Username == user {
			n++
		}
	}
	if n != 1 {
		s.t.Errorf("%d saved logins for %s %q, want 1", n, origin, user)
	}
}

type loginSource func() []sandbox.Login

// thunderbirdLogsIn makes Thunderbird itself log in to the incoming server
// (and the outgoing one, if smtpSrc is not nil) and checks that the servers
// saw exactly the given password from it, successfully, and that no prompt
// opened.
func (s *scenario) thunderbirdLogsIn(inProto, inUser string, inSrc loginSource, smtpUser string, smtpSrc loginSource, password string) {
	s.t.Helper()
	if err := s.e.tb.ClearPrompts(s.ctx); err != nil {
		s.t.Fatal(err)
	}
	inMark := len(inSrc())
	var smtpMark int
	if smtpSrc != nil {
		smtpMark = len(smtpSrc())
	}
	start := time.Now()
	r, err := s.e.tb.VerifyIncoming(s.ctx, s.acct.Key, 30*time.Second)
	if err != nil {
		s.t.Fatal(err)
	}
	if r.TimedOut || r.Code != 0 {
		s.t.Errorf("Thunderbird's %s login: %+v", inProto, r)
	}
	if smtpSrc != nil {
		if err := s.e.tb.TriggerSMTPLogon(s.ctx, s.acct.SMTPKey); err != nil {
			s.t.Fatal(err)
		}
	}
	check := func(what string, src loginSource, mark int, proto, user string) {
		deadline := time.Now().Add(20 * time.Second)
		for {
			seen := src()[mark:]
			var mine []sandbox.Login
			for _, l := range seen {
				if l.Protocol == proto && l.Username == user {
					mine = append(mine, l)
				}
			}
			ok := len(mine) > 0
			for _, l := range mine {
				if l.Password != password || !l.OK {
					s.t.Errorf("%s: Thunderbird logged in as %q with %s (accepted: %v), want %s", what, user, s.which(l.Password), l.OK, s.which(password))
					return
				}
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				s.t.Errorf("%s: Thunderbird did not log in as %q within 20 s (server saw %d other attempts)", what, user, len(seen))
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	check(inProto, inSrc, inMark, inProto, inUser)
	if smtpSrc != nil {
		check("smtp", smtpSrc, smtpMark, "smtp", smtpUser)
	}
	if !s.t.Failed() {
		s.t.Logf("Thunderbird logged in with %s in %s", s.which(password), time.Since(start).Round(time.Millisecond))
	}
	s.noPrompts()
}

func (s *scenario) noPrompts() {
	s.t.Helper()
	ps, err := s.e.tb.Prompts(s.ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, p := range ps {
		s.t.Errorf("Thunderbird opened a prompt: %q %q (%s)", p.Title, p.Text, p.URL)
	}
}

func (s *scenario) wantSuccess(o tbharness.Outcome, withOutgoing bool) {
	s.t.Helper()
	if o.Kind != "success" {
		s.t.Fatalf("popup shows %s: %q (steps %v, field errors %v)", o.Kind, o.Text, o.Steps, o.FieldErrors)
	}
	if !strings.HasPrefix(o.Text, "Done.") {
		s.t.Errorf("success text %q", o.Text)
	}
	want := []string{"policy", "changing", "checking_incoming", "saving"}
	if withOutgoing {
		want = append(want, "checking_outgoing")
	}
	for _, step := range want {
		if o.Steps[step] != "ok" {
			s.t.Errorf("step %s is %q, want ok (steps %v)", step, o.Steps[step], o.Steps)
		}
	}
}

// failLoginWrites makes the Experiment's login writes fail as inject
// says, and returns restore, which puts the login store back and returns
// the writes tried meanwhile; restore runs at clean-up if the test did not.
func (s *scenario) failLoginWrites(inject func() error) (restore func() []string) {
	s.t.Helper()
	if err := inject(); err != nil {
		s.t.Fatal(err)
	}
	restored := false
	restore = func() []string {
		calls, err := s.e.tb.RestoreLoginWrites(s.ctx, s.e.addonID)
		if err != nil {
			s.t.Fatal(err)
		}
		restored = true
		return calls
	}
	s.t.Cleanup(func() {
		if !restored {
			restore()
		}
	})
	return restore
}

// namedIMAPAccount is imapAccount with the account's name.
func (e *env) namedIMAPAccount(t *testing.T, name, user, pw string) tbharness.AccountSpec {
	spec := e.imapAccount(t, user, pw)
	spec.Name = name
	return spec
}

// openOptions opens the extension's options page in a tab, as a user does.
func (s *scenario) openOptions() *tbharness.Page {
	s.t.Helper()
	u, err := s.e.tb.ExtensionURL(s.ctx, s.e.addonID, "options/options.html")
	if err != nil {
		s.t.Fatal(err)
	}
	options, err := s.e.tb.OpenPage(s.ctx, u)
	if err != nil {
		s.t.Fatal(err)
	}
	return options
}

// imapAccount is an IMAP account on the sandbox with its SMTP server, both
// over TLS with the same user name and password.
func (e *env) imapAccount(t *testing.T, user, pw string) tbharness.AccountSpec {
	return tbharness.AccountSpec{
		Type:     "imap",
		Incoming: sslServer(t, e.sb.IMAPS, user, pw),
		SMTP:     ptr(sslServer(t, e.sb.SMTPS, user, pw)),
	}
}

func sslServer(t *testing.T, addr, user, pw string) tbharness.ServerSpec {
	h, p := hostPort(t, addr)
	return tbharness.ServerSpec{Host: h, Port: p, SocketType: tbharness.SocketSSL,
		AuthMethod: tbharness.AuthPasswordCleartext, Username: user, Password: pw}
}

func starttlsServer(t *testing.T, host, addr, user, pw string) tbharness.ServerSpec {
	_, p := hostPort(t, addr)
	return tbharness.ServerSpec{Host: host, Port: p, SocketType: tbharness.SocketSTARTTLS,
		AuthMethod: tbharness.AuthPasswordCleartext, Username: user, Password: pw}
}

// (a) An IMAP account: the change stores the new password for imap:// and
// smtp://, and Thunderbird then logs in to both servers with it unasked.
func (e *env) testChange(t *testing.T) {
	const user, old, new = "ann", "Ann-old-pw-1", "Ann-new-pw-2"
	e.sb.SetPassword(user, old)
	s := e.newScenario(t, e.imapAccount(t, user, old), old, new)
	o := s.change()
	s.wantSuccess(o, true)
	s.wantLogin("imap://127.0.0.1", user, new)
	s.wantLogin("smtp://127.0.0.1", user, new)
	s.wantOneLogin("imap://127.0.0.1", user)
	s.wantOneLogin("smtp://127.0.0.1", user)
	s.noPrompts()
	s.thunderbirdLogsIn("imap", user, e.sb.Logins, user, e.sb.Logins, new)
}

// (b) The provider accepts the change but the outgoing server rejects the
// new password (it knows the user under another name whose password did not
// change): the popup reports the failure and Thunderbird's logins stay.
func (e *env) testVerificationFails(t *testing.T) {
	const user, smtpUser, old, new = "bea", "bea-out", "Bea-old-pw-1", "Bea-new-pw-2"
	e.sb.SetPassword(user, old)
	e.sb.SetPassword(smtpUser, old)
	s := e.newScenario(t, tbharness.AccountSpec{
		Type:     "imap",
		Incoming: sslServer(t, e.sb.IMAPS, user, old),
		SMTP:     ptr(sslServer(t, e.sb.SMTPS, smtpUser, old)),
	}, old, new)
	mark := len(e.sb.Logins())
	o := s.change()
	if o.Kind != "error" {
		t.Fatalf("popup shows %s: %q, want an error", o.Kind, o.Text)
	}
	if !strings.Contains(o.Text, "did not work") || !strings.Contains(o.Text, "old password") {
		t.Errorf("failure text %q does not say the new password did not work and the old one is kept", o.Text)
	}
	if o.Steps["checking_outgoing"] != "failed" || o.Steps["saving"] == "ok" {
		t.Errorf("steps %v: want checking_outgoing failed and no saving", o.Steps)
	}
	// The host really tried the new password on SMTP and was refused.
	refused := false
	for _, l := range e.sb.Logins()[mark:] {
		if l.Protocol == "smtp" && l.Username == smtpUser && l.Password == new && !l.OK {
			refused = true
		}
	}
	if !refused {
		t.Errorf("the outgoing server never refused the new password")
	}
	s.wantLogin("imap://127.0.0.1", user, old)
	s.wantLogin("smtp://127.0.0.1", smtpUser, old)
	s.wantOneLogin("imap://127.0.0.1", user)
	s.wantOneLogin("smtp://127.0.0.1", smtpUser)
	s.noPrompts()
}

// (c) A POP3 account: its password lives under mailbox://.
func (e *env) testPOP3(t *testing.T) {
	const user, old, new = "cid", "Cid-old-pw-1", "Cid-new-pw-2"
	e.sb.SetPassword(user, old)
	s := e.newScenario(t, tbharness.AccountSpec{
		Type:     "pop3",
		Incoming: sslServer(t, e.sb.POP3S, user, old),
		SMTP:     ptr(sslServer(t, e.sb.SMTPS, user, old)),
	}, old, new)
	if s.acct.IncomingOrigin != "mailbox://127.0.0.1" {
		t.Fatalf("POP3 login origin %q", s.acct.IncomingOrigin)
	}
	o := s.change()
	s.wantSuccess(o, true)
	s.wantLogin("mailbox://127.0.0.1", user, new)
	s.wantLogin("smtp://127.0.0.1", user, new)
	s.wantOneLogin("mailbox://127.0.0.1", user)
	if all, err := e.tb.Logins(s.ctx); err == nil {
		for _, l := range all {
			if strings.HasPrefix(l.Origin, "pop3://") {
				t.Errorf("login saved under %s; Thunderbird looks POP3 passwords up under mailbox://", l.Origin)
			}
		}
	}
	s.noPrompts()
	s.thunderbirdLogsIn("pop3", user, e.sb.Logins, user, e.sb.Logins, new)
}

// (d) The outgoing server has another host name (localhost, not
// 127.0.0.1) and another user name; both use STARTTLS.
func (e *env) testOutgoingOtherHostAndUser(t *testing.T) {
	const user, smtpUser, old, new = "dan", "dan@example.test", "Dan-old-pw-1", "Dan-new-pw-2"
	e.sb.SetPassword(user, old)
	alias := startSMTPAlias(t, e.sb, map[string]string{smtpUser: user})
	s := e.newScenario(t, tbharness.AccountSpec{
		Type:     "imap",
		Incoming: starttlsServer(t, "127.0.0.1", e.sb.IMAP, user, old),
		SMTP:     ptr(starttlsServer(t, "localhost", alias.Addr, smtpUser, old)),
	}, old, new)
	if s.acct.SMTPOrigin != "smtp://localhost" {
		t.Fatalf("SMTP login origin %q", s.acct.SMTPOrigin)
	}
	o := s.change()
	s.wantSuccess(o, true)
	s.wantLogin("imap://127.0.0.1", user, new)
	s.wantLogin("smtp://localhost", smtpUser, new)
	s.wantOneLogin("smtp://localhost", smtpUser)
	if _, ok, _ := e.tb.LoginFor(s.ctx, "smtp://127.0.0.1", smtpUser); ok {
		t.Errorf("a login for smtp://127.0.0.1 appeared; the outgoing server is localhost")
	}
	s.noPrompts()
	s.thunderbirdLogsIn("imap", user, e.sb.Logins, smtpUser, alias.Logins, new)
}

// (e) A primary password is set, locked, then unlocked before the change:
// the change and Thunderbird's own logins then need no prompt.
func (e *env) testPrimaryPassword(t *testing.T) {
	const user, old, new, primary = "eve", "Eve-old-pw-1", "Eve-new-pw-2", "Primary-pw-9"
	e.sb.SetPassword(user, old)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.tb.SetPrimaryPassword(ctx, primary); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.tb.RemovePrimaryPassword(c, primary); err != nil {
			t.Errorf("removing the primary password: %v", err)
		}
	})
	if err := e.tb.LockPrimaryPassword(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.tb.UnlockPrimaryPassword(ctx, primary); err != nil {
		t.Fatal(err)
	}
	s := e.newScenario(t, e.imapAccount(t, user, old), old, new)
	st, err := e.tb.PrimaryPassword(s.ctx)
	if err != nil || !st.HasPassword || !st.ServicesLoggedIn {
		t.Fatalf("primary password state %+v, %v: want set and unlocked", st, err)
	}
	o := s.change()
	s.wantSuccess(o, true)
	s.wantLogin("imap://127.0.0.1", user, new)
	s.wantLogin("smtp://127.0.0.1", user, new)
	s.noPrompts()
	s.thunderbirdLogsIn("imap", user, e.sb.Logins, user, e.sb.Logins, new)
}

// A primary password that is locked when the new password is to be saved:
// Thunderbird asks for it; the user cancels (the prompt watcher does); the
// popup says so and the saved logins are unchanged. This also proves that
// the prompt watcher sees the prompts the other scenarios must not cause.
func (e *env) testPrimaryPasswordLocked(t *testing.T) {
	const user, old, new, primary = "fay", "Fay-old-pw-1", "Fay-new-pw-2", "Primary-pw-8"
	e.sb.SetPassword(user, old)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.tb.SetPrimaryPassword(ctx, primary); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.tb.RemovePrimaryPassword(c, primary); err != nil {
			t.Errorf("removing the primary password: %v", err)
		}
	})
	s := e.newScenario(t, e.imapAccount(t, user, old), old, new)
	if err := e.tb.LockPrimaryPassword(s.ctx); err != nil {
		t.Fatal(err)
	}
	o := s.change()
	if o.Kind != "error" || !strings.Contains(o.Text, "primary password was not entered") {
		t.Errorf("popup shows %s %q, want the primary-password error", o.Kind, o.Text)
	}
	if o.Steps["saving"] == "ok" {
		t.Errorf("steps %v: saving must not be ok", o.Steps)
	}
	ps, err := e.tb.Prompts(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) == 0 {
		t.Fatalf("no primary-password prompt was seen")
	}
	for _, p := range ps {
		t.Logf("prompt (cancelled: %v): %q %q", p.Cancelled, p.Title, p.Text)
	}
	if err := e.tb.UnlockPrimaryPassword(s.ctx, primary); err != nil {
		t.Fatal(err)
	}
	if err := e.tb.ClearPrompts(s.ctx); err != nil {
		t.Fatal(err)
	}
	s.wantLogin("imap://127.0.0.1", user, old)
	s.wantLogin("smtp://127.0.0.1", user, old)
	s.noPrompts()
}

func ptr[T any](v T) *T { return &v }
