package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/credsync/credsync/internal/nmhost"
	"github.com/credsync/credsync/internal/testkit/wine"
)

func nmCLI(t *testing.T, fn func([]string, io.Writer, io.Writer) int, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := fn(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// nmScriptHost writes a shell script that behaves like credsync started by
// Thunderbird: it checks the extension ID, reads the hello frame and
// answers it.
func nmScriptHost(t *testing.T) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("needs /bin/sh")
	}
	reply := `{"id":"doctor","status":"ok","result":{"name":"credsync","version":"script","protocol":1}}`
	frame := binary.NativeEndian.AppendUint32(nil, uint32(len(reply)))
	frame = append(frame, reply...)
	var printf strings.Builder
	for _, b := range frame {
		fmt.Fprintf(&printf, `\%03o`, b)
	}
	request := len(`{"id":"doctor","type":"hello"}`) + 4
	script := fmt.Sprintf("#!/bin/sh\n"+
		"[ \"$2\" = %q ] || { echo \"extension $2 not allowed\" >&2; exit 3; }\n"+
		"head -c %d >/dev/null\n"+
		"printf '%s'\n"+
		"cat >/dev/null\n", nmhost.ExtensionID, request, printf.String())
	p := filepath.Join(wine.TempDir(t), "credsync")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestInstallDoctorUninstallCommands(t *testing.T) {
	home, root := wine.TempDir(t), wine.TempDir(t)
	bin := nmScriptHost(t)
	env := []string{"--home", home, "--root", root}
	userPath := filepath.Join(home, ".mozilla", "native-messaging-hosts", "credsync.json")
	if runtime.GOOS == "darwin" {
		userPath = filepath.Join(home, "Library", "Mozilla", "NativeMessagingHosts", "credsync.json")
	}

	code, out, errOut := nmCLI(t, runDoctor, env...)
	if code != 1 || !strings.Contains(out, `problem: Thunderbird cannot start credsync: no usable registration → run "credsync install"`) {
		t.Fatalf("doctor before install: %d\n%s%s", code, out, errOut)
	}

	code, out, errOut = nmCLI(t, runInstall, append(env, "--binary", bin)...)
	if code != 0 || !strings.Contains(out, "ok: wrote user manifest "+userPath) || errOut != "" {
		t.Fatalf("install: %d\n%s%s", code, out, errOut)
	}
	m, err := nmhost.ReadManifest(userPath)
	if err != nil || m.Path != bin || !m.Allows(nmhost.ExtensionID) {
		t.Fatalf("installed manifest %+v, %v", m, err)
	}

	code, out, _ = nmCLI(t, runInstall, append(env, "--binary", bin)...)
	if code != 0 || !strings.Contains(out, "ok: user manifest "+userPath+" is already up to date") {
		t.Errorf("second install: %d\n%s", code, out)
	}

	code, out, errOut = nmCLI(t, runDoctor, env...)
	if code != 0 {
		t.Fatalf("doctor after install: %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"ok: user manifest " + userPath + "\n",
		"ok: the host answers hello (credsync script, protocol 1)\n",
		"ok: Thunderbird will use the user manifest " + userPath + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}

	// The script refuses other extensions, as the real host does.
	code, out, _ = nmCLI(t, runDoctor, append(env, "--extension-id", "other@example.org")...)
	if code != 1 || !strings.Contains(out, "does not allow the extension other@example.org") {
		t.Errorf("doctor --extension-id other: %d\n%s", code, out)
	}

	code, out, errOut = nmCLI(t, runUninstall, env...)
	if code != 0 || !strings.Contains(out, "ok: removed user manifest "+userPath) {
		t.Fatalf("uninstall: %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(userPath); !os.IsNotExist(err) {
		t.Errorf("manifest still there after uninstall: %v", err)
	}
	code, out, _ = nmCLI(t, runUninstall, env...)
	if code != 0 || !strings.Contains(out, "nothing to remove") {
		t.Errorf("second uninstall: %d\n%s", code, out)
	}
	if code, out, _ := nmCLI(t, runDoctor, env...); code != 1 {
		t.Errorf("doctor after uninstall: %d\n%s", code, out)
	}
}

func TestInstallSystemCommand(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("--root is not supported on Windows")
	}
	home, root := wine.TempDir(t), wine.TempDir(t)
	bin := nmScriptHost(t)
	code, out, errOut := nmCLI(t, runInstall, "--system", "--home", home, "--root", root, "--binary", bin, "--extension-id", "a@x", "--extension-id", "b@x")
	if code != 0 {
		t.Fatalf("install --system: %d\n%s%s", code, out, errOut)
	}
	loc, err := nmhost.Env{GOOS: runtime.GOOS, Home: home, Root: root}.Location(nmhost.System)
	if err != nil {
		t.Fatal(err)
	}
	m, err := nmhost.ReadManifest(loc.Path)
	if err != nil || !m.Allows("a@x") || !m.Allows("b@x") || m.Allows(nmhost.ExtensionID) {
		t.Fatalf("system manifest %+v, %v", m, err)
	}
	if code, out, _ := nmCLI(t, runUninstall, "--system", "--home", home, "--root", root); code != 0 || !strings.Contains(out, "removed system manifest") {
		t.Errorf("uninstall --system: %d\n%s", code, out)
	}
}

func TestInstallSystemPermissionDenied(t *testing.T) {
	if runtime.GOOS == "windows" || os.Geteuid() == 0 {
		t.Skip("needs a non-root Unix user")
	}
	root := wine.TempDir(t)
	if err := os.Chmod(root, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(root, 0o755) })
	code, _, errOut := nmCLI(t, runInstall, "--system", "--root", root, "--binary", "/usr/bin/credsync")
	if code != 1 || !strings.Contains(errOut, "permission denied") || !strings.Contains(errOut, `run "sudo credsync install --system"`) {
		t.Errorf("install --system without permission: %d\n%s", code, errOut)
	}
}

func TestInstallPrint(t *testing.T) {
	bin := "/usr/bin/credsync"
	if runtime.GOOS == "windows" {
		bin = `C:\Program Files\credsync\credsync.exe`
	}
	code, out, errOut := nmCLI(t, runInstall, "--print", "--binary", bin)
	if code != 0 || errOut != "" {
		t.Fatalf("install --print: %d %s", code, errOut)
	}
	want, _ := nmhost.NewManifest(bin).JSON()
	if out != string(want) {
		t.Errorf("install --print =\n%s\nwant\n%s", out, want)
	}
	// --print writes nothing, even with a home given.
	home := wine.TempDir(t)
	nmCLI(t, runInstall, "--print", "--home", home)
	if ents, _ := os.ReadDir(home); len(ents) != 0 {
		t.Errorf("install --print wrote into the home directory: %v", ents)
	}
	// Without --binary the manifest names this (test) binary, resolved.
	code, out, _ = nmCLI(t, runInstall, "--print")
	self, _ := os.Executable()
	self, _ = filepath.EvalSymlinks(self)
	if m, err := nmhost.ParseManifest([]byte(out)); code != 0 || err != nil || m.Path != self {
		t.Errorf("install --print without --binary: %d, %v\n%s\nwant path %s", code, err, out, self)
	}
}

func TestInstallCommandUsage(t *testing.T) {
	for _, tt := range []struct {
		name string
		fn   func([]string, io.Writer, io.Writer) int
		args []string
		code int
		want string
	}{
		{"install help", runInstall, []string{"-h"}, 0, "usage: credsync install"},
		{"uninstall help", runUninstall, []string{"--help"}, 0, "usage: credsync uninstall"},
		{"doctor help", runDoctor, []string{"-h"}, 0, "usage: credsync doctor"},
		{"unknown flag", runInstall, []string{"--bogus"}, 2, "flag provided but not defined"},
		{"extra argument", runUninstall, []string{"now"}, 2, `unexpected argument "now"`},
		{"relative binary", runInstall, []string{"--binary", "bin/credsync", "--print"}, 2, "not an absolute path"},
		{"empty extension id", runInstall, []string{"--extension-id", "", "--print"}, 2, "empty extension ID"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := nmCLI(t, tt.fn, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Errorf("%v: %d, want %d\n%s\nwant it to contain %q", tt.args, code, tt.code, errOut, tt.want)
			}
		})
	}
	// --home and --root are for tests and packaging: not in -h.
	_, _, errOut := nmCLI(t, runInstall, "-h")
	if strings.Contains(errOut, "-home") || strings.Contains(errOut, "-root") || !strings.Contains(errOut, "-system") {
		t.Errorf("install -h shows hidden flags or hides visible ones:\n%s", errOut)
	}
}
