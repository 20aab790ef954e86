//go:build e2e && !windows

package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// exitNotRunning is credsync sync's documented exit status when no
// Thunderbird (no credsync host) listens on the local socket.
const exitNotRunning = 4

// runCLISync runs the real `credsync sync --account USER@HOST
// --password-stdin` with the given XDG_RUNTIME_DIR and HOME, the password on
// standard input, and returns its exit status and output.
func runCLISync(ctx context.Context, t *testing.T, runtimeDir, home, account, password string) (int, string, string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, credsyncBin, "sync", "--account", account, "--password-stdin")
	cmd.Env = append(envWithout(os.Environ(), "XDG_RUNTIME_DIR", "HOME", "TMPDIR"),
		"XDG_RUNTIME_DIR="+runtimeDir, "HOME="+home, "TMPDIR="+runtimeDir)
	cmd.Stdin = strings.NewReader(password + "\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("running credsync sync: %v", err)
	}
	t.Logf("credsync sync --account %s: exit %d after %s\nstdout: %s\nstderr: %s", account, code,
		time.Since(start).Round(time.Millisecond), stdout.String(), stderr.String())
	if strings.Contains(stdout.String()+stderr.String(), password) {
		t.Errorf("credsync sync printed the password")
	}
	return code, stdout.String(), stderr.String()
}

func envWithout(env []string, names ...string) []string {
	var out []string
outer:
	for _, kv := range env {
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				continue outer
			}
		}
		out = append(out, kv)
	}
	return out
}

// waitSocket waits until the host Thunderbird started listens on its local
// socket (it does so a moment after the extension connects).
func waitSocket(t *testing.T, runtimeDir string) {
	t.Helper()
	path := filepath.Join(runtimeDir, "credsync", "host.sock")
	start := time.Now()
	for {
		if fi, err := os.Stat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
			t.Logf("host socket ready after %s", time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("no host socket %s after 20 s", path)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// skipWithoutCLISync skips when the credsync under test has no sync
// command yet.
func skipWithoutCLISync(t *testing.T) {
	t.Helper()
	out, _ := exec.Command(credsyncBin, "sync", "-h").CombinedOutput()
	if strings.Contains(string(out), "unknown command") {
		t.Skip("this credsync has no sync command")
	}
}

// (c) `credsync sync` from a script reaches the running Thunderbird through
// the host's local socket (same XDG_RUNTIME_DIR): exit 0, both logins hold
// the password, Thunderbird logs in with it unasked, and the extension's
// automatic propagation does not react to these writes.
func (e *env) testCLISync(t *testing.T) {
	skipWithoutCLISync(t)
	const user, old, new = "max", "Max-old-pw-1", "Max-new-pw-2"
	e.sb.SetPassword(user, old)
	s := e.newScenario(t, e.imapAccount(t, user, old), old, new)
	e.sb.SetPassword(user, new)
	if err := e.tb.ClearAlerts(s.ctx); err != nil {
		t.Fatal(err)
	}
	waitSocket(t, e.tb.RuntimeDir)
	since := time.Now()
	code, stdout, _ := runCLISync(s.ctx, t, e.tb.RuntimeDir, e.tb.Home, user+"@127.0.0.1", new)
	if code != 0 || !strings.Contains(stdout, s.acct.Key+" (") || !strings.Contains(stdout, "): stored") {
		t.Errorf("credsync sync: exit %d, stdout %q: want 0 and %s stored", code, stdout, s.acct.Key)
	}
	s.wantLogin("imap://127.0.0.1", user, new)
	s.wantLogin("smtp://127.0.0.1", user, new)
	s.wantOneLogin("imap://127.0.0.1", user)
	s.wantOneLogin("smtp://127.0.0.1", user)
	s.noPrompts()
	s.thunderbirdLogsIn("imap", user, e.sb.Logins, user, e.sb.Logins, new)
	s.noPropagationSince(since)
	s.noAlerts()
}

// (c) Without a running Thunderbird, `credsync sync` says so and exits with
// its documented status, before reading any password.
func TestCLISyncThunderbirdNotRunning(t *testing.T) {
	skipWithoutCLISync(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir, err := os.MkdirTemp("", "tbrun-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	code, _, stderr := runCLISync(ctx, t, dir, t.TempDir(), "max@127.0.0.1", "Max-new-pw-2")
	if code != exitNotRunning || !strings.Contains(stderr, "Thunderbird is not running") {
		t.Errorf("credsync sync without Thunderbird: exit %d, stderr %q; want %d and \"Thunderbird is not running\"", code, stderr, exitNotRunning)
	}
}
