//go:build !windows

package tbharness

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, path, body string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
}

const appIni = `; comment
[Gecko]
Version=999.0
[App]
Vendor=Mozilla
Name=Thunderbird
Version=140.12.0
BuildID=1
`

func TestFindBinaryUnpackedDeb(t *testing.T) {
	root := t.TempDir()
	app := filepath.Join(root, "usr", "lib", "thunderbird")
	writeFile(t, filepath.Join(app, "application.ini"), appIni, 0o644)
	writeFile(t, filepath.Join(app, "thunderbird"), "#!/bin/sh\n", 0o755)

	for _, p := range []string{root, app, filepath.Join(app, "thunderbird")} {
		b, err := FindBinary(p)
		if err != nil {
			t.Fatalf("FindBinary(%s): %v", p, err)
		}
		if b.Path != filepath.Join(app, "thunderbird") || b.Version != "140.12.0" || b.Major != 140 {
			t.Fatalf("FindBinary(%s) = %+v", p, b)
		}
		if !strings.Contains(b.String(), "Thunderbird 140.12.0") {
			t.Fatalf("String() = %q", b.String())
		}
	}
}

func TestFindBinaryErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := FindBinary(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing path accepted")
	}
	if _, err := FindBinary(dir); err == nil || !strings.Contains(err.Error(), "no thunderbird executable") {
		t.Errorf("empty dir: %v", err)
	}
	// Not executable.
	writeFile(t, filepath.Join(dir, "a", "thunderbird"), "x", 0o644)
	if _, err := FindBinary(filepath.Join(dir, "a", "thunderbird")); err == nil {
		t.Error("non-executable file accepted")
	}
	// No [App] Version.
	writeFile(t, filepath.Join(dir, "b", "thunderbird"), "#!/bin/sh\n", 0o755)
	writeFile(t, filepath.Join(dir, "b", "application.ini"), "[Gecko]\nVersion=1\n", 0o644)
	if _, err := FindBinary(filepath.Join(dir, "b")); err == nil || !strings.Contains(err.Error(), "no [App] Version") {
		t.Errorf("ini without version: %v", err)
	}
	// Garbage version.
	writeFile(t, filepath.Join(dir, "c", "thunderbird"), "#!/bin/sh\n", 0o755)
	writeFile(t, filepath.Join(dir, "c", "application.ini"), "[App]\nVersion=esr\n", 0o644)
	if _, err := FindBinary(filepath.Join(dir, "c")); err == nil || !strings.Contains(err.Error(), "bad version") {
		t.Errorf("bad version: %v", err)
	}
}

func TestDefault140Dir(t *testing.T) {
	t.Setenv("CREDSYNC_TB140", "/x/tb")
	if d := Default140Dir(); d != "/x/tb" {
		t.Errorf("with CREDSYNC_TB140: %q", d)
	}
	t.Setenv("CREDSYNC_TB140", "")
	t.Setenv("XDG_CACHE_HOME", "/cache")
	if d := Default140Dir(); d != "/cache/credsync/thunderbird-140" {
		t.Errorf("with XDG_CACHE_HOME: %q", d)
	}
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "/home/u")
	if d := Default140Dir(); d != "/home/u/.cache/credsync/thunderbird-140" {
		t.Errorf("with HOME: %q", d)
	}
}

func TestUserJS(t *testing.T) {
	js, err := UserJS(map[string]any{"signon.rememberSignons": false, "x.y": "a\"b", "n": 7})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`user_pref("marionette.port", 0);`,
		`user_pref("xpinstall.signatures.required", false);`,
		`user_pref("extensions.experiments.enabled", true);`,
		`user_pref("signon.rememberSignons", false);`, // extra overrides the recipe
		`user_pref("x.y", "a\"b");`,
		`user_pref("n", 7);`,
		`user_pref("services.settings.server", "data:,#remote-settings-dummy/v1");`,
	} {
		if !strings.Contains(js, want+"\n") {
			t.Errorf("user.js lacks %s", want)
		}
	}
	if strings.Count(js, `"signon.rememberSignons"`) != 1 {
		t.Error("pref written twice")
	}
	if _, err := UserJS(map[string]any{"bad": 1.5}); err == nil {
		t.Error("float pref accepted")
	}
}

func TestLoginOrigin(t *testing.T) {
	for _, c := range []struct{ proto, host, want string }{
		{"imap", "127.0.0.1", "imap://127.0.0.1"},
		{"pop3", "127.0.0.1", "mailbox://127.0.0.1"},
		{"smtp", "localhost", "smtp://localhost"},
		{"imap", "::1", "imap://[::1]"},
		{"pop3", "::1", "mailbox://[::1]"},
	} {
		if got := LoginOrigin(c.proto, c.host); got != c.want {
			t.Errorf("LoginOrigin(%s, %s) = %s, want %s", c.proto, c.host, got, c.want)
		}
	}
}

func TestMask(t *testing.T) {
	if got := Mask("Secret-1"); got != "S•••" {
		t.Errorf("Mask = %q", got)
	}
	if got := Mask("élan"); got != "é•••" {
		t.Errorf("Mask(multibyte) = %q", got)
	}
	if got := Mask(""); got != `""` {
		t.Errorf("Mask(empty) = %q", got)
	}
	l := Login{Origin: "imap://h", HTTPRealm: "imap://h", Username: "u", Password: "hunter2"}
	if s := l.String(); strings.Contains(s, "hunter2") || !strings.Contains(s, "h•••") {
		t.Errorf("Login.String() = %q", s)
	}
}

func TestEnvWithout(t *testing.T) {
	got := envWithout([]string{"HOME=/a", "HOMEX=1", "PATH=/bin", "DISPLAY=:0"}, "HOME", "DISPLAY")
	if strings.Join(got, ",") != "HOMEX=1,PATH=/bin" {
		t.Errorf("envWithout = %v", got)
	}
}

// A fake "thunderbird" that never writes MarionetteActivePort and spawns a
// child in its group: Launch must fail on its deadline and leave nothing behind.
func TestLaunchTimeoutKillsGroup(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	app := filepath.Join(dir, "tb")
	writeFile(t, filepath.Join(app, "application.ini"), "[App]\nVersion=153.0\n", 0o644)
	writeFile(t, filepath.Join(app, "thunderbird"), "#!/bin/sh\necho \"args: $*\"\necho \"home: $HOME\"\necho \"group: $$\"\nsleep 300 &\nsleep 300\n", 0o755)
	state := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	_, err := Launch(ctx, Options{Binary: app, StateDir: state, StartTimeout: 700 * time.Millisecond, Logf: t.Logf})
	if err == nil || !strings.Contains(err.Error(), "MarionetteActivePort") {
		t.Fatalf("Launch = %v, want a MarionetteActivePort timeout", err)
	}
	if time.Since(start) > 15*time.Second {
		t.Fatalf("Launch took %s", time.Since(start))
	}
	log, _ := os.ReadFile(filepath.Join(state, "thunderbird.log"))
	for _, want := range []string{"--headless", "--marionette", "-remote-allow-system-access", "--profile " + filepath.Join(state, "profile"), "home: " + filepath.Join(state, "home")} {
		if !strings.Contains(string(log), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	js, err := os.ReadFile(filepath.Join(state, "profile", "user.js"))
	if err != nil || !strings.Contains(string(js), `"marionette.port", 0`) {
		t.Errorf("user.js: %v", err)
	}
	// Both sleeps were in the fake's process group (Launch makes the fake
	// its leader: the group's id is the shell's pid); the group must be
	// empty. Other processes of the machine do not count.
	m := regexp.MustCompile(`(?m)^group: ([0-9]+)$`).FindSubmatch(log)
	if m == nil {
		t.Fatalf("the fake did not log its group:\n%s", log)
	}
	out, err := exec.Command("ps", "-eo", "pgid=,stat=,args=").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == string(m[1]) && !strings.HasPrefix(f[1], "Z") {
			t.Errorf("left in the fake's process group: %s", line)
		}
	}
}

// Launch reports an early exit instead of waiting for the port.
func TestLaunchEarlyExit(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "application.ini"), "[App]\nVersion=153.0\n", 0o644)
	writeFile(t, filepath.Join(dir, "thunderbird"), "#!/bin/sh\necho boom >&2\nexit 3\n", 0o755)
	_, err := Launch(context.Background(), Options{Binary: dir, StateDir: t.TempDir(), StartTimeout: 20 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "exited before Marionette started") {
		t.Fatalf("Launch = %v", err)
	}
}
