package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/audit"
	"github.com/credsync/credsync/internal/localsock"
	"github.com/credsync/credsync/internal/protocol"
	"github.com/credsync/credsync/internal/testkit/wine"
	"github.com/credsync/credsync/internal/verify"
	"github.com/credsync/credsync/internal/wire"
)

// runtimeDir gives the test its own XDG_RUNTIME_DIR, short enough for a
// socket path, as the e2e suite does for Thunderbird and the CLI.
func runtimeDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "cs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	t.Setenv("XDG_RUNTIME_DIR", d)
	return d
}

func syncCLI(t *testing.T, stdin io.Reader, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := runSync(context.Background(), args, stdin, &stdout, &stderr, noTerminal)
	return code, stdout.String(), stderr.String()
}

// untouched fails the test if the password is read.
type untouched struct{ t *testing.T }

func (u untouched) Read([]byte) (int, error) {
	u.t.Error("the password was read")
	return 0, io.EOF
}

func TestSplitAccount(t *testing.T) {
	for in, want := range map[string][2]string{
		"alice@mail.example.org":             {"alice", "mail.example.org"},
		"alice@example.org@mail.example.org": {"alice@example.org", "mail.example.org"},
		`DOMAIN\alice@exchange.example.org`:  {`DOMAIN\alice`, "exchange.example.org"},
		"a@b@c@Mail.Example.org":             {"a@b@c", "Mail.Example.org"},
		"alice":                              {},
		"@mail.example.org":                  {},
		"alice@":                             {},
		"alice@mail.example.org:993":         {},
		"alice@mail example":                 {},
		"":                                   {},
	} {
		u, h, ok := splitAccount(in)
		if ok != (want != [2]string{}) || u != want[0] || h != want[1] {
			t.Errorf("splitAccount(%q) = %q, %q, %v", in, u, h, ok)
		}
	}
}

func TestSyncWhenThunderbirdIsNotRunning(t *testing.T) {
	d := runtimeDir(t)
	code, stdout, stderr := syncCLI(t, untouched{t}, "--account", "alice@example.org@mail.example.org", "--password-stdin")
	want := "credsync sync: Thunderbird is not running (or the credsync extension is not active): start Thunderbird and try again\n"
	if code != exitNotRunning || stdout != "" || stderr != want {
		t.Fatalf("no directory: %d %q %q", code, stdout, stderr)
	}
	if runtime.GOOS == "windows" {
		return // a named pipe goes with its host: nothing is left behind
	}
	// A socket left by a host that died.
	if err := os.Mkdir(filepath.Join(d, "credsync"), 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(d, "credsync", "host.sock"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if code, _, stderr := syncCLI(t, untouched{t}, "--account", "alice@mail.example.org", "--password-stdin"); code != exitNotRunning || stderr != want {
		t.Fatalf("stale socket: %d %q", code, stderr)
	}
}

func TestSyncRefusesAnUnsafeSocketDirectory(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no socket directory on Windows: the named pipe's own security descriptor admits only its user (internal/localsock)")
	}
	d := runtimeDir(t)
	dir := filepath.Join(d, "credsync")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777)
	code, _, stderr := syncCLI(t, untouched{t}, "--account", "alice@mail.example.org", "--password-stdin")
	if code != exitFailed || !strings.Contains(stderr, "refusing "+dir) {
		t.Fatalf("%d %q", code, stderr)
	}
}

func TestSyncUsageErrors(t *testing.T) {
	runtimeDir(t)
	for name, args := range map[string][]string{
		"no account":   {"--password-stdin"},
		"no host":      {"--account", "alice", "--password-stdin"},
		"empty user":   {"--account", "@mail.example.org", "--password-stdin"},
		"positional":   {"--account", "alice@mail.example.org", "hunter2"},
		"unknown flag": {"--password", "hunter2"},
		"port in host": {"--account", "alice@mail.example.org:993"},
	} {
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := syncCLI(t, untouched{t}, args...)
			if code != exitUsage || stdout != "" || stderr == "" || strings.Contains(stderr, "hunter2") {
				t.Fatalf("%d %q %q", code, stdout, stderr)
			}
		})
	}
}

// fakeExtension serves a real protocol.Host's requests to the extension
// (protocol 2): accounts from the list with the fingerprints of its saved
// logins, store recorded and applied.
type fakeExtension struct {
	mu       sync.Mutex
	accounts []any
	saved    map[string]string // origin + "\n" + username -> password
	stores   []gjson.Result
}

func (x *fakeExtension) stored() []gjson.Result {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]gjson.Result(nil), x.stores...)
}

func (x *fakeExtension) setAccounts(accounts []any) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.accounts = accounts
}

// listing is the accounts reply's result for salt.
func (x *fakeExtension) listing(salt string) map[string]any {
	x.mu.Lock()
	defer x.mu.Unlock()
	var list []any
	for _, a := range x.accounts {
		c := map[string]any{}
		for k, v := range a.(map[string]any) {
			if s, ok := v.(map[string]any); ok {
				cs := map[string]any{"saved": nil}
				for k2, v2 := range s {
					cs[k2] = v2
				}
				if pw, ok := x.saved[s["origin"].(string)+"\n"+s["username"].(string)]; ok {
					sum := sha256.Sum256([]byte(salt + ":" + pw))
					cs["saved"] = hex.EncodeToString(sum[:])
				}
				v = cs
			}
			c[k] = v
		}
		list = append(list, c)
	}
	return map[string]any{"accounts": list, "locked": false}
}

// startHost runs the host as Thunderbird would, with the extension's port
// open, and waits until it listens.
func startHost(t *testing.T, trust verify.Trust, accounts []any, saved map[string]string, auditPath string) *fakeExtension {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	h := &protocol.Host{Version: "test", Trust: trust, Listen: localsock.Listen, ListenDelay: 10 * time.Millisecond,
		Audit: (&audit.Log{Path: auditPath}).Write}
	served := make(chan error, 1)
	go func() { served <- h.Serve(context.Background(), inR, outW); outW.Close() }()
	x := &fakeExtension{accounts: accounts, saved: saved}
	w := wire.NewWriter(inW)
	send := func(v any) { b, _ := json.Marshal(v); w.Write(b) }
	go func() {
		r := wire.NewReader(outR, 0)
		for {
			body, err := r.Read()
			if err != nil {
				return
			}
			m := gjson.ParseBytes(body)
			id := m.Get("id").String()
			switch m.Get("type").String() {
			case "accounts":
				send(map[string]any{"id": id, "status": "ok", "result": x.listing(m.Get("salt").String())})
			case "store":
				x.mu.Lock()
				x.stores = append(x.stores, m)
				var states []any
				for _, l := range m.Get("logins").Array() {
					x.saved[l.Get("origin").String()+"\n"+l.Get("username").String()] = l.Get("password").String()
					states = append(states, map[string]any{"origin": l.Get("origin").String(), "username": l.Get("username").String(), "state": "stored"})
				}
				x.mu.Unlock()
				send(map[string]any{"id": id, "status": "ok", "result": map[string]any{"logins": states}})
			}
		}
	}()
	t.Cleanup(func() {
		inW.Close()
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			t.Error("the host did not stop")
		}
	})
	send(map[string]any{"id": "1", "type": "hello"})
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := localsock.Dial(context.Background())
		if err == nil {
			c.Close()
			return x
		}
		if time.Now().After(deadline) {
			t.Fatalf("the host does not listen: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func endpointJSON(protocol, addr, user string) map[string]any {
	_, port, _ := net.SplitHostPort(addr)
	var p int
	json.Unmarshal([]byte(port), &p)
	scheme := map[string]string{"imap": "imap://", "pop3": "mailbox://", "smtp": "smtp://"}[protocol]
	return map[string]any{"protocol": protocol, "host": "localhost", "port": p, "socketType": 3, "authMethod": 3, "username": user,
		"origin": scheme + "localhost"}
}

// credsync sync runs one transaction over every account the password
// belongs to: one refusing server fails it for all of them, each account
// on its line; once every server takes it, one store writes every login.
func TestSyncCommandThroughTheHost(t *testing.T) {
	runtimeDir(t)
	sb, _ := startSandbox(t) // alice@example.org, "s3cret-Pass"
	const user = "alice@example.org"
	accounts := []any{
		map[string]any{"id": "account1", "name": "Mario Rossi",
			"incoming": endpointJSON("imap", sb.IMAPS, user), "outgoing": endpointJSON("smtp", sb.SMTPS, user)},
		map[string]any{"id": "account2", "name": "",
			"incoming": endpointJSON("pop3", sb.POP3S, user), "outgoing": endpointJSON("smtp", sb.SMTPS, "bob")},
	}
	saved := map[string]string{"imap://localhost\n" + user: "old-Pass1", "smtp://localhost\n" + user: "old-Pass1", "mailbox://localhost\n" + user: "old-Pass1"}
	auditPath := filepath.Join(wine.TempDir(t), "audit.log")
	x := startHost(t, verify.Trust{Roots: sb.CAPool}, accounts, saved, auditPath)

	// account2 sends as bob, whom the SMTP server does not know: the one
	// transaction fails for both accounts, and nothing is stored.
	code, stdout, stderr := syncCLI(t, strings.NewReader("s3cret-Pass\n"), "--account", user+"@LOCALHOST", "--password-stdin")
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if code != exitFailed || len(lines) != 2 || !strings.HasPrefix(lines[0], "account1 (Mario Rossi): verification_failed: ") ||
		!strings.HasPrefix(lines[1], "account2: verification_failed: ") || !strings.Contains(lines[1], "(outgoing bob@localhost: auth_failed: 535") {
		t.Fatalf("run = %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if s := x.stored(); len(s) != 0 {
		t.Fatalf("store requests: %v", s)
	}
	if strings.Contains(stdout+stderr, "s3cret-Pass") {
		t.Fatal("the password was printed")
	}

	code, _, stderr = syncCLI(t, strings.NewReader("s3cret-Pass\n"), "--account", "nobody@localhost", "--password-stdin")
	if code != exitFailed || !strings.Contains(stderr, "unknown_account") {
		t.Fatalf("no match: %d %q", code, stderr)
	}

	// Once account2 sends without authentication, every account takes it.
	x.setAccounts([]any{accounts[0], map[string]any{"id": "account2", "name": "", "incoming": endpointJSON("pop3", sb.POP3S, user), "outgoing": nil}})
	var prompts []string
	secret := func(p string) (string, error) { prompts = append(prompts, p); return "s3cret-Pass", nil }
	var out, errOut bytes.Buffer
	code = runSync(context.Background(), []string{"--account", user + "@localhost"}, untouched{t}, &out, &errOut, secret)
	if code != exitOK || out.String() != "account1 (Mario Rossi): stored\naccount2: stored\n" || len(prompts) != 1 {
		t.Fatalf("terminal: %d %q %q %v", code, out.String(), errOut.String(), prompts)
	}
	s := x.stored()
	if len(s) != 1 || len(s[0].Get("logins").Array()) != 3 {
		t.Fatalf("store requests: %v", s)
	}
	for _, l := range s[0].Get("logins").Array() {
		if l.Get("password").String() != "s3cret-Pass" || len(l.Get("expect").String()) != 64 {
			t.Fatalf("store login %s", l.Raw)
		}
	}

	b, _ := os.ReadFile(auditPath)
	if strings.Count(string(b), `"kind":"socket-sync"`) != 3 || strings.Contains(string(b), "s3cret") {
		t.Fatalf("audit log:\n%s", b)
	}
}

// The host goes away after reading the request (Thunderbird quit).
func TestSyncHostGoesAway(t *testing.T) {
	runtimeDir(t)
	ln, _, err := localsock.Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wire.NewReader(c, 0).Read()
			c.Close()
		}
	}()
	code, stdout, stderr := syncCLI(t, strings.NewReader("pw-1\n"), "--account", "alice@localhost", "--password-stdin")
	if code != exitFailed || stdout != "" || !strings.Contains(stderr, "did Thunderbird quit?") {
		t.Fatalf("%d %q %q", code, stdout, stderr)
	}
}

func TestLogCommand(t *testing.T) {
	privateState(t) // XDG_STATE_HOME, HOME, %LOCALAPPDATA%, %APPDATA%, …
	var stdout, stderr bytes.Buffer
	if code := runLog(nil, &stdout, &stderr); code != exitOK || stdout.Len() != 0 || !strings.Contains(stderr.String(), "no audit log yet") {
		t.Fatalf("no log: %d %q %q", code, stdout.String(), stderr.String())
	}
	l := &audit.Log{} // the default path, as the host writes it
	at := time.Date(2025, 3, 4, 14, 6, 7, 0, time.UTC)
	for i, r := range []audit.Record{
		{Time: at, Kind: "change", Account: "account1", Login: "alice@mail.example.org", Outcome: "stored", Changed: true,
			Steps: []audit.Step{{Step: "policy", State: "ok"}, {Step: "changing", State: "ok"}}},
		{Time: at.Add(time.Hour), Kind: "sync", Account: "account2", Login: "bob@mail.example.org", Outcome: "verification_failed"},
		{Time: at.Add(2 * time.Hour), Kind: "change", Account: "account3", Login: "carol@mail.example.org", Outcome: "store_failed", Changed: true,
			Steps: []audit.Step{{Step: "saving", State: "failed"}}},
	} {
		if err := l.Write(r); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	stdout.Reset()
	stderr.Reset()
	if code := runLog([]string{"-n", "2"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("log -n 2: %d %q", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	wantTime := at.Add(time.Hour).Local().Format("2006-01-02 15:04:05 -0700")
	if len(lines) != 2 || lines[0] != wantTime+"  sync         account2  bob@mail.example.org  verification_failed" ||
		!strings.HasSuffix(lines[1], "account3  carol@mail.example.org  store_failed, changed at the provider  (saving failed)") {
		t.Fatalf("log -n 2:\n%s", stdout.String())
	}
	stdout.Reset()
	if code := runLog(nil, &stdout, &stderr); code != exitOK || strings.Count(stdout.String(), "\n") != 3 ||
		!strings.Contains(stdout.String(), "account1  alice@mail.example.org  stored  (policy ok, changing ok)") {
		t.Fatalf("log:\n%s", stdout.String())
	}
	if code := runLog([]string{"-n", "-1"}, &stdout, &stderr); code != exitUsage {
		t.Fatalf("log -n -1: %d", code)
	}
}
