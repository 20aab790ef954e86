//go:build windows

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"
	"golang.org/x/sys/windows/registry"

	"github.com/credsync/credsync/internal/localsock"
	"github.com/credsync/credsync/internal/nmhost"
	"github.com/credsync/credsync/internal/testkit/wine"
	"github.com/credsync/credsync/internal/wire"
)

// The Windows end-to-end scenario, with the release credsync.exe (make
// test-windows builds it and names it in CREDSYNC_WINDOWS_EXE): install
// per user and for all users → the registry values and the manifests →
// the host started from them as Thunderbird starts it → credsync sync
// through the named pipe → the store request → doctor → uninstall.
//
// It writes HKCU and HKLM, so it runs only under Wine, in make
// test-windows' throwaway prefix; TestMain's private %LOCALAPPDATA%,
// %ProgramData% and USERPROFILE hold every file it writes.
func TestWindowsScenario(t *testing.T) {
	exe := scenarioExe(t)
	local, programData := os.Getenv("LOCALAPPDATA"), os.Getenv("ProgramData")
	userKey := `Software\Mozilla\NativeMessagingHosts\credsync`
	userManifest := filepath.Join(local, "credsync", "credsync.json")
	systemManifest := filepath.Join(programData, "credsync", "credsync.json")
	roots := map[registry.Key]string{registry.CURRENT_USER: "HKCU", registry.LOCAL_MACHINE: "HKLM"}
	// Whatever happens, the prefix keeps no registration.
	t.Cleanup(func() {
		for k := range roots {
			registry.DeleteKey(k, userKey)
		}
	})
	for k, name := range roots {
		if _, err := readDefault(k, userKey); err == nil {
			t.Fatalf("%s\\%s exists before the test: not a fresh prefix", name, userKey)
		}
	}

	// Install, per user and for all users.
	out := cli(t, exe, "", 0, "install")
	if !strings.Contains(out, "ok: wrote user manifest "+userManifest) {
		t.Fatalf("install:\n%s", out)
	}
	out = cli(t, exe, "", 0, "install", "--system")
	if !strings.Contains(out, "ok: wrote system manifest "+systemManifest) {
		t.Fatalf("install --system:\n%s", out)
	}
	for _, c := range []struct {
		root     registry.Key
		manifest string
	}{{registry.CURRENT_USER, userManifest}, {registry.LOCAL_MACHINE, systemManifest}} {
		v, err := readDefault(c.root, userKey)
		if err != nil || v != c.manifest {
			t.Fatalf("default value of %s\\%s = %q, %v; want %q", roots[c.root], userKey, v, err, c.manifest)
		}
		checkManifest(t, c.manifest, exe)
	}

	// Thunderbird: HKCU first, then the manifest's path with the manifest
	// and the extension's ID as arguments, in the binary's directory.
	manifest, err := readDefault(registry.CURRENT_USER, userKey)
	if err != nil {
		t.Fatal(err)
	}
	sb, ca := startSandbox(t) // alice@example.org, "s3cret-Pass"
	const user = "alice@example.org"
	account := map[string]any{"id": "account1", "name": "Mario Rossi",
		"incoming": scenarioEndpoint("imap", sb.IMAPS, user, sb.CertSHA256),
		"outgoing": scenarioEndpoint("smtp", sb.SMTPS, user, sb.CertSHA256)}
	tb := startAsThunderbird(t, manifest, account)

	// credsync sync through the named pipe: the host checks the password
	// at both servers (certificates accepted by their pinned fingerprint,
	// like a Thunderbird exception), then stores both logins.
	out = cli(t, exe, "s3cret-Pass\n", 0, "sync", "--account", user+"@127.0.0.1", "--password-stdin")
	if out != "account1 (Mario Rossi): stored\n" {
		t.Fatalf("sync: %q", out)
	}
	stores := tb.stored()
	if len(stores) != 1 {
		t.Fatalf("%d store requests, want 1", len(stores))
	}
	logins := stores[0].Get("logins").Array()
	want := []string{"imap://127.0.0.1", "smtp://127.0.0.1"}
	if len(logins) != len(want) {
		t.Fatalf("store: %s", stores[0].Raw)
	}
	for i, l := range logins {
		if l.Get("origin").String() != want[i] || l.Get("username").String() != user || l.Get("password").String() != "s3cret-Pass" ||
			l.Get("expect").Type != gjson.Null || !l.Get("expect").Exists() {
			t.Fatalf("store login %d = %s; want %s, %s, the password, expect null", i, l.Raw, want[i], user)
		}
	}
	if n := len(sb.Logins()); n != 2 {
		t.Errorf("%d logins at the servers, want 2 (IMAP and SMTP, once each)", n)
	}
	tb.stop(t)
	auditLog, err := os.ReadFile(filepath.Join(local, "credsync", "audit.log"))
	if err != nil || !bytes.Contains(auditLog, []byte(`"kind":"socket-sync"`)) || bytes.Contains(auditLog, []byte("s3cret")) {
		t.Fatalf("audit log in %%LOCALAPPDATA%%: %v\n%s", err, auditLog)
	}

	// doctor: the user registration is the one Thunderbird uses, and the
	// host answers its hello.
	out = cli(t, exe, "", 0, "doctor")
	t.Logf("credsync doctor:\n%s", out)
	if strings.Contains(out, "problem:") || !strings.Contains(out, userManifest) {
		t.Fatalf("doctor:\n%s", out)
	}

	// credsync verify against the same servers (the sandbox's CA).
	in, smtp := "--incoming=imaps://alice%40example.org@"+sb.IMAPS, "--outgoing=smtps://alice%40example.org@"+sb.SMTPS
	if out := cli(t, exe, "s3cret-Pass\n", 0, "verify", in, smtp, "--password-stdin", "--ca-file", ca); out != "incoming: ok\noutgoing: ok\n" {
		t.Fatalf("verify: %q", out)
	}
	if out := cli(t, exe, "wrong-Pass\n", 1, "verify", in, smtp, "--password-stdin", "--ca-file", ca); !strings.HasPrefix(out, "incoming: auth_failed") ||
		!strings.Contains(out, "\noutgoing: auth_failed") {
		t.Fatalf("verify with a wrong password: %q", out)
	}

	// Uninstall: the user registration first (the system one still
	// serves), then the system one; nothing of either is left.
	cli(t, exe, "", 0, "uninstall")
	if out := cli(t, exe, "", 0, "doctor"); !strings.Contains(out, systemManifest) {
		t.Fatalf("doctor with the system registration only:\n%s", out)
	}
	cli(t, exe, "", 0, "uninstall", "--system")
	cli(t, exe, "", 1, "doctor")
	for k, name := range roots {
		if v, err := readDefault(k, userKey); err == nil {
			t.Errorf("%s\\%s left behind: %q", name, userKey, v)
		}
	}
	if _, err := os.Stat(systemManifest); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left behind: %v", systemManifest, err)
	}
	if _, err := os.Stat(filepath.Dir(systemManifest)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left behind: %v", filepath.Dir(systemManifest), err)
	}
	// %LOCALAPPDATA%\credsync keeps the audit log, and only that.
	if ents, err := os.ReadDir(filepath.Join(local, "credsync")); err != nil || len(ents) != 1 || ents[0].Name() != "audit.log" {
		t.Errorf("%%LOCALAPPDATA%%\\credsync after uninstall: %v %v", ents, err)
	}
}

// scenarioExe copies the release credsync.exe into its own directory, as
// an installer would, and returns its path.
func scenarioExe(t *testing.T) string {
	t.Helper()
	if !wine.Detected() {
		t.Skip("writes HKCU and HKLM: runs only under Wine, in make test-windows' throwaway prefix")
	}
	src := os.Getenv("CREDSYNC_WINDOWS_EXE")
	if src == "" {
		t.Skip("CREDSYNC_WINDOWS_EXE names no credsync.exe: run make test-windows")
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(wine.TempDir(t), "Program Files", "credsync", "credsync.exe")
	if err := os.MkdirAll(filepath.Dir(exe), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return exe
}

// cli runs credsync.exe with stdin and fails unless it exits with code;
// it returns the standard output.
func cli(t *testing.T, exe, stdin string, code int, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	got := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		got = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("credsync %s: %v", strings.Join(args, " "), err)
	}
	if got != code {
		t.Fatalf("credsync %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), got, code, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func readDefault(root registry.Key, path string) (string, error) {
	k, err := registry.OpenKey(root, path, registry.QUERY_VALUE|registry.WOW64_64KEY)
	if err != nil {
		return "", err
	}
	defer k.Close()
	v, _, err := k.GetStringValue("")
	return v, err
}

// checkManifest checks the manifest at path as Thunderbird reads it.
func checkManifest(t *testing.T, path, exe string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Name, Description, Path, Type string
		AllowedExtensions             []string `json:"allowed_extensions"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if m.Name != "credsync" || m.Path != exe || m.Type != "stdio" || len(m.AllowedExtensions) != 1 || m.AllowedExtensions[0] != nmhost.ExtensionID {
		t.Fatalf("%s:\n%s\nwant name credsync, path %s, type stdio, allowed_extensions [%s]", path, b, exe, nmhost.ExtensionID)
	}
}

func scenarioEndpoint(protocol, addr, user, pin string) map[string]any {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return map[string]any{"protocol": protocol, "host": host, "port": p, "socketType": 3, "authMethod": 3,
		"username": user, "origin": protocol + "://" + host, "certSha256": pin, "saved": nil}
}

// thunderbird is the host process started as Thunderbird starts it, and the
// extension's side of its port.
type thunderbird struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr bytes.Buffer
	done   chan struct{} // closed when the reader stops
	mu     sync.Mutex
	stores []gjson.Result
}

func (tb *thunderbird) stored() []gjson.Result {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]gjson.Result(nil), tb.stores...)
}

// startAsThunderbird reads the manifest Thunderbird found in the registry,
// starts its path with the arguments Thunderbird passes (the manifest's
// path, the extension's ID) in the binary's directory, says hello, answers
// the host's accounts and store requests, and waits until the host
// listens on the named pipe.
func startAsThunderbird(t *testing.T, manifest string, account map[string]any) *thunderbird {
	t.Helper()
	b, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	bin := gjson.GetBytes(b, "path").String()
	tb := &thunderbird{cmd: exec.Command(bin, manifest, nmhost.ExtensionID), done: make(chan struct{})}
	tb.cmd.Dir = filepath.Dir(bin)
	tb.cmd.Stderr = &tb.stderr
	if tb.stdin, err = tb.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := tb.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tb.stdin.Close()
		if tb.cmd.ProcessState == nil {
			tb.cmd.Process.Kill()
			tb.cmd.Wait()
		}
	})
	var wmu sync.Mutex
	w := wire.NewWriter(tb.stdin)
	send := func(v any) {
		b, _ := json.Marshal(v)
		wmu.Lock()
		defer wmu.Unlock()
		w.Write(b)
	}
	go func() {
		defer close(tb.done)
		r := wire.NewReader(stdout, 0)
		for {
			body, err := r.Read()
			if err != nil {
				return
			}
			m := gjson.ParseBytes(body)
			id := m.Get("id").String()
			switch m.Get("type").String() {
			case "accounts": // one account, no saved login (saved: null)
				send(map[string]any{"id": id, "status": "ok", "result": map[string]any{"accounts": []any{account}, "locked": false}})
			case "store":
				tb.mu.Lock()
				tb.stores = append(tb.stores, m)
				tb.mu.Unlock()
				var states []any
				for _, l := range m.Get("logins").Array() {
					states = append(states, map[string]any{"origin": l.Get("origin").String(), "username": l.Get("username").String(), "state": "stored"})
				}
				send(map[string]any{"id": id, "status": "ok", "result": map[string]any{"logins": states}})
			}
		}
	}()
	send(map[string]any{"id": "1", "type": "hello"})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := localsock.Dial(context.Background())
		if err == nil {
			c.Close()
			return tb
		}
		if time.Now().After(deadline) {
			t.Fatalf("the host does not listen on %s: %v\nits stderr:\n%s", localsock.Path(), err, tb.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop closes the port, as Thunderbird does when the extension's session
// ends, and waits for the host to exit.
func (tb *thunderbird) stop(t *testing.T) {
	t.Helper()
	tb.stdin.Close()
	exited := make(chan error, 1)
	go func() { <-tb.done; exited <- tb.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("the host exited with %v\nits stderr:\n%s", err, tb.stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("the host did not exit when its port closed\nits stderr:\n%s", tb.stderr.String())
	}
}
