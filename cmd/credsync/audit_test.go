package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/credsync/credsync/internal/audit"
	"github.com/credsync/credsync/internal/testkit/wine"
)

// A change on the command line writes its audit record like the popup's
// (issue 19, item 4): README promises "one line per password change or
// sync".

// userStateVars locate a user's files and credsync's state: the audit log
// (XDG_STATE_HOME or HOME on Unix, %LOCALAPPDATA% on Windows), the manifests
// (HOME; %LOCALAPPDATA% and %ProgramData% on Windows), the socket
// (XDG_RUNTIME_DIR) and whatever else a library may read (USERPROFILE is
// Windows' home directory, %APPDATA% its roaming profile).
var userStateVars = []string{
	"HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR",
	"USERPROFILE", "LOCALAPPDATA", "APPDATA", "ProgramData",
}

// TestMain gives the whole test binary a private home and state
// directory: since "credsync change" writes the audit log, no test of this
// package may reach the real user's log (or any other file of theirs), on
// any OS. (Windows' registry and the user's named pipe cannot be made
// private: tests that write the registry run only under Wine, in a
// throwaway prefix.)
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "credsync-cmd-test-")
	if err != nil {
		panic(err)
	}
	// The go command that TestReleaseBuildHasNoSandbox runs keeps the
	// developer's build and module caches and go env file, which live
	// under the directories replaced below (without them it rebuilds
	// everything: 90 s).
	if goTool, err := exec.LookPath("go"); err == nil {
		vars := []string{"GOCACHE", "GOMODCACHE", "GOENV"}
		if out, err := exec.Command(goTool, append([]string{"env"}, vars...)...).Output(); err == nil {
			for i, v := range strings.Split(strings.TrimRight(string(out), "\r\n"), "\n") {
				if v = strings.TrimSpace(v); v != "" && i < len(vars) {
					os.Setenv(vars[i], v)
				}
			}
		}
	}
	for _, k := range userStateVars {
		d := filepath.Join(dir, strings.ToLower(k))
		if err := os.MkdirAll(d, 0o700); err != nil {
			panic(err)
		}
		os.Setenv(k, d)
	}
	code := m.Run()
	wine.RemoveAll(dir)
	os.Exit(code)
}

// privateState points the audit log (and everything else under the user's
// home) at fresh directories, so that no real user file is read or written,
// and returns where the log goes. XDG_RUNTIME_DIR stays (see runtimeDir).
func privateState(t *testing.T) string {
	t.Helper()
	for _, k := range userStateVars {
		if k != "XDG_RUNTIME_DIR" {
			t.Setenv(k, wine.TempDir(t))
		}
	}
	path, err := audit.DefaultPath()
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// auditCLI runs one credsync command line.
func auditCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr, noTerminal)
	return code, stdout.String(), stderr.String()
}

func TestChangeCommandWritesAuditRecord(t *testing.T) {
	const oldPw, newPw = "s3cret-Pass", "Audit-n3w-Pass!"
	path := privateState(t)
	sb, ca := startSandbox(t)
	args := []string{"change",
		"--incoming=imaps://alice%40example.org@" + sb.IMAPS,
		"--outgoing=smtp://alice%40example.org@" + sb.Submission,
		"--backend", "sandbox", "--backend-url", sb.ChangeURL,
		"--ca-file", ca, "--password-stdin"}

	if code, _, stderr := auditCLI(t, "", "log"); code != exitOK || !strings.Contains(stderr, "no audit log yet") {
		t.Fatalf("log before any change: %d %q", code, stderr)
	}
	code, stdout, stderr := auditCLI(t, oldPw+"\n"+newPw+"\n", args...)
	if code != exitOK {
		t.Fatalf("change: %d\n%s%s", code, stdout, stderr)
	}
	// The old password is refused now: a second record, for the failure.
	if code, stdout, stderr := auditCLI(t, oldPw+"\nAnother-Pass-2\n", args...); code != exitFailed {
		t.Fatalf("second change: %d\n%s%s", code, stdout, stderr)
	}

	code, stdout, stderr = auditCLI(t, "", "log")
	if code != exitOK || stderr != "" {
		t.Fatalf("log: %d %q", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("log printed %d lines, want 2:\n%s", len(lines), stdout)
	}
	for i, want := range []string{"changed", "wrong_current_password"} {
		if f := strings.Fields(lines[i]); len(f) < 8 || f[3] != "change" || f[4] != "command-line" ||
			!strings.HasPrefix(f[5], "alice@example.org@") || strings.TrimSuffix(f[6], ",") != want {
			t.Errorf("log line %d = %q, want a change by the command line ending %s", i, lines[i], want)
		}
	}
	if !strings.Contains(lines[0], "changing ok") || !strings.Contains(lines[0], "checking_outgoing ok") {
		t.Errorf("log line 0 = %q, want the steps", lines[0])
	}

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{oldPw, newPw, "Another-Pass-2"} {
		if strings.Contains(string(b)+stdout, pw) {
			t.Fatalf("a password reached the audit log:\n%s", b)
		}
	}
	if runtime.GOOS != "windows" {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("audit log mode: %v %v", fi.Mode(), err)
		}
	}
}

// A log that cannot be written (here: a symbolic link planted in its
// place) changes nothing in the outcome; the command says the record is
// missing, and the link's target is untouched.
func TestChangeCommandReportsAuditFailure(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links need privileges on Windows")
	}
	path := privateState(t)
	target := filepath.Join(wine.TempDir(t), "precious")
	if err := os.WriteFile(target, []byte("keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	sb, ca := startSandbox(t)
	code, stdout, stderr := auditCLI(t, "s3cret-Pass\nAudit-n3w-Pass!\n", "change",
		"--incoming=imaps://alice%40example.org@"+sb.IMAPS,
		"--outgoing=smtp://alice%40example.org@"+sb.Submission,
		"--backend", "sandbox", "--backend-url", sb.ChangeURL,
		"--ca-file", ca, "--password-stdin")
	if code != exitOK || !strings.Contains(stdout, "done: ") {
		t.Fatalf("change: %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "audit log") || !strings.Contains(stderr, "symbolic link") {
		t.Fatalf("stderr = %q, want it to say the audit record could not be written", stderr)
	}
	fi, err := os.Stat(target)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "keep\n" || fi.Mode().Perm() != 0o644 {
		t.Fatalf("the link's target changed: %04o %q", fi.Mode().Perm(), b)
	}
}
