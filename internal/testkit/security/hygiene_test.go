//go:build linux

package security

import (
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/audit"
	"github.com/credsync/credsync/internal/testkit/sandbox"
)

const hygieneUser = "alice@example.org"

func endpointJSON(t *testing.T, protocol, addr string) map[string]any {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	scheme := map[string]string{"imap": "imap", "pop3": "mailbox", "smtp": "smtp"}[protocol]
	return map[string]any{"protocol": protocol, "host": host, "port": p, "socketType": 3, "authMethod": 3, "username": hygieneUser,
		"origin": scheme + "://" + host}
}

func cliURL(scheme, addr string) string {
	return scheme + "://" + url.PathEscape(hygieneUser) + "@" + addr
}

// TestHostHygiene runs the canary password through every flow of the real
// credsync binary — the host as Thunderbird starts it (verify, change,
// sync, a refused sync, a refused change, a socket sync from `credsync
// sync`), a goroutine dump of a host holding the canary (SIGQUIT: what a
// crash prints), and the commands `credsync verify` and `credsync change` —
// then looks for the canary, in every encoding (Forms), in everything
// those processes wrote or exposed: their stderr and stdout (the host's
// stdout is the native-messaging channel, where the store request
// legitimately carries it), the audit log, every file under HOME,
// XDG_STATE_HOME, XDG_RUNTIME_DIR and TMPDIR, every file of the system's
// temporary directory written during the test, and the host's
// /proc/PID/cmdline and environ while it holds the password. It runs with
// umask 0, so the modes of what credsync creates are its own: the audit log
// 0600 in a 0700 directory, the socket 0600 and its lock 0600 in a 0700
// directory.
func TestHostHygiene(t *testing.T) {
	bin := credsyncBinary(t)
	start := time.Now().Add(-time.Second)
	const old = "Old-Passw0rd-1"
	sb, err := sandbox.Start(sandbox.Options{Users: map[string]string{hygieneUser: old}})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()

	root := t.TempDir()
	runtimeDir, err := os.MkdirTemp("", "hyg") // short: the socket path limit
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(runtimeDir)
	for _, d := range []string{"home", "tmp"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	caFile := filepath.Join(root, "ca.pem")
	if err := sb.WriteCA(caFile); err != nil {
		t.Fatal(err)
	}
	manifest := writeManifest(t, root, bin)
	env := envFor(root, runtimeDir, caFile)
	old022 := syscall.Umask(0)
	defer syscall.Umask(old022)

	var outputs []Finding // what the processes wrote, scanned at the end
	scanOutput := func(name string, b []byte) { outputs = append(outputs, ScanBytes(name, b, Canary)...) }
	var procScans int
	scanProc := func(pid int) {
		f, err := ScanProcess(pid, Canary)
		if err != nil {
			t.Errorf("reading /proc/%d: %v", pid, err)
		}
		procScans++
		outputs = append(outputs, f...)
	}

	in, out := endpointJSON(t, "imap", sb.IMAPS), endpointJSON(t, "smtp", sb.SMTPS)
	backend := map[string]any{"name": "sandbox", "url": sb.ChangeURL}

	// 1. The host, as Thunderbird starts it.
	h := startHost(t, bin, manifest, env)
	listed := map[string]any{"id": "account1", "name": "Alice", "incoming": in, "outgoing": out}
	h.Accounts = []any{listed}
	h.OnStore = func(gjson.Result) { scanProc(h.Pid()) } // the host holds the canary now
	steps := []struct {
		req  map[string]any
		want string // "ok" or an error code
	}{
		{map[string]any{"id": "1", "type": "hello"}, "ok"},
		{map[string]any{"id": "2", "type": "verify", "incoming": in, "outgoing": out, "password": Canary}, "ok"}, // refused: not verified
		{map[string]any{"id": "3", "type": "change", "accountId": "account1", "backend": backend, "current": old, "new": Canary}, "ok"},
		{map[string]any{"id": "4", "type": "sync", "accountId": "account1", "password": Canary}, "ok"},
		{map[string]any{"id": "5", "type": "sync", "accountId": "account1", "password": Canary + "!"}, "verification_failed"},
		{map[string]any{"id": "6", "type": "change", "accountId": "account1", "backend": backend, "current": Canary + "?", "new": Canary + "2"}, "wrong_current_password"},
	}
	for _, s := range steps {
		r := h.request(s.req)
		got := r.Get("status").String()
		if got == "error" {
			got = r.Get("code").String()
		}
		if got != s.want {
			t.Fatalf("%s request: %s, want %s", s.req["type"], r.Raw, s.want)
		}
		scanOutput("reply to "+s.req["type"].(string), []byte(r.Raw))
	}
	if n := len(h.Stores); n != 2 {
		t.Fatalf("%d store requests, want 2 (change, sync)", n)
	}

	// `credsync sync` through the host's local socket.
	sock := filepath.Join(runtimeDir, "credsync", "host.sock")
	waitFor(t, 10*time.Second, func() bool { _, err := os.Stat(sock); return err == nil })
	code, stdout, stderr := runCLI(t, bin, env, Canary+"\n", "sync", "--account", hygieneUser+"@127.0.0.1", "--password-stdin")
	if code != 0 || !strings.Contains(stdout, "account1 (Alice): stored") {
		t.Fatalf("credsync sync: exit %d\n%s%s", code, stdout, stderr)
	}
	scanOutput("credsync sync stdout", []byte(stdout))
	scanOutput("credsync sync stderr", []byte(stderr))
	wantMode(t, filepath.Dir(sock), 0o700)
	wantMode(t, sock, 0o600|fs.ModeSocket)
	wantMode(t, filepath.Join(filepath.Dir(sock), "host.lock"), 0o600)
	scanProc(h.Pid())
	h.close()
	if !strings.Contains(string(h.Stderr.Bytes()), "listening for credsync sync") {
		t.Fatalf("the host's stderr lacks its usual lines; the scan would prove nothing:\n%s", h.Stderr.Bytes())
	}
	scanOutput("host stderr", h.Stderr.Bytes())

	// 2. What a crash prints: the goroutine dump of a host that holds the
	// canary, waiting for Thunderbird to store it.
	h2 := startHost(t, bin, manifest, env)
	h2.Accounts = []any{listed}
	h2.HoldStore = make(chan gjson.Result, 1)
	h2.send(map[string]any{"id": "c", "type": "change", "accountId": "account1", "backend": backend, "current": Canary, "new": Canary + "-3"})
	select {
	case <-h2.HoldStore:
	case <-time.After(30 * time.Second):
		t.Fatalf("no store request; stderr:\n%s", h2.Stderr.Bytes())
	}
	scanProc(h2.Pid())
	if err := h2.cmd.Process.Signal(syscall.SIGQUIT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h2.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the host survived SIGQUIT")
	}
	if dump := string(h2.Stderr.Bytes()); !strings.Contains(dump, "SIGQUIT") || !strings.Contains(dump, "goroutine ") {
		t.Fatalf("no goroutine dump on stderr:\n%s", dump)
	}
	scanOutput("host goroutine dump", h2.Stderr.Bytes())

	// 3. The commands.
	pw := Canary + "-3" // the sandbox's password since the change above
	code, stdout, stderr = runCLI(t, bin, env, pw+"\n", "verify", "--password-stdin",
		"--incoming", cliURL("imaps", sb.IMAPS), "--outgoing", cliURL("smtps", sb.SMTPS))
	if code != 0 {
		t.Fatalf("credsync verify: exit %d\n%s%s", code, stdout, stderr)
	}
	scanOutput("credsync verify stdout", []byte(stdout))
	scanOutput("credsync verify stderr", []byte(stderr))
	code, stdout, stderr = runCLI(t, bin, env, pw+"\n"+Canary+"-4\n", "change", "--password-stdin",
		"--backend", "sandbox", "--backend-url", sb.ChangeURL,
		"--incoming", cliURL("imaps", sb.IMAPS), "--outgoing", cliURL("smtps", sb.SMTPS))
	if code != 0 {
		t.Fatalf("credsync change: exit %d\n%s%s", code, stdout, stderr)
	}
	scanOutput("credsync change stdout", []byte(stdout))
	scanOutput("credsync change stderr", []byte(stderr))
	code, stdout, stderr = runCLI(t, bin, env, "", "log", "-n", "0")
	// Five flows of the host, then the command line's change.
	if code != 0 || strings.Count(stdout, "\n") != 6 {
		t.Fatalf("credsync log: exit %d\n%s%s", code, stdout, stderr)
	}
	scanOutput("credsync log stdout", []byte(stdout))

	// The audit log: every flow recorded, in private files.
	auditPath := filepath.Join(root, "state", "credsync", "audit.log")
	wantMode(t, filepath.Dir(auditPath), 0o700)
	wantMode(t, auditPath, 0o600)
	f, err := os.Open(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	recs, bad, err := audit.Tail(f, 0)
	f.Close()
	if err != nil || bad != 0 || len(recs) != 6 {
		// The host's five flows (the killed one never ended) and the
		// command line's change.
		t.Fatalf("audit log: %d records, %d bad, %v; want 6", len(recs), bad, err)
	}

	// 4. Everything written or shown.
	if procScans < 4 {
		t.Fatalf("only %d /proc scans", procScans)
	}
	files, err := Scan([]string{root, runtimeDir}, Canary, ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tmp, err := Scan([]string{os.TempDir()}, Canary, ScanOptions{Since: start, Skip: SkipSecretStores})
	if err != nil {
		t.Logf("scanning %s: %v", os.TempDir(), err) // other processes' files come and go
	}
	for _, f := range append(append(outputs, files...), tmp...) {
		t.Errorf("the canary password reached %s (as %s)", f.Where, f.Form)
	}
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func wantMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	got := fi.Mode() & (fs.ModePerm | fs.ModeType)
	if want&fs.ModeType == 0 && fi.IsDir() {
		want |= fs.ModeDir
	}
	if got != want {
		t.Errorf("%s has mode %v, want %v", path, got, want)
	}
}
