//go:build linux

package security

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/wire"
)

// The credsync binary under test, built once (buildCredsync) into a
// directory TestMain removes.
var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// credsyncBinary returns the path of cmd/credsync built for this test run.
func credsyncBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "credsync-security-bin-"); buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "credsync")
		goTool, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("no go command to build cmd/credsync: %w", err)
			return
		}
		// With the sandbox back-end, which release builds leave out.
		out, err := exec.Command(goTool, "build", "-tags", "sandbox", "-o", buildBin, "github.com/credsync/credsync/cmd/credsync").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("building cmd/credsync: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// lockedBuffer is an io.Writer safe for a process's output and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]byte(nil), l.b.Bytes()...)
}

// hostProcess is `credsync MANIFEST EXTENSION-ID` started as Thunderbird
// starts it, with this test playing the extension on its stdin/stdout. It
// answers the host's accounts requests with Accounts and its store
// requests with success, unless HoldStore is set: then each store request
// is handed to HoldStore and left unanswered.
type hostProcess struct {
	t      *testing.T
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    io.ReadCloser
	w      *wire.Writer
	Stderr *lockedBuffer
	msgs   chan gjson.Result
	exited chan struct{}
	// waitErr is cmd.Wait's result, once exited is closed.
	waitErr error

	mu        sync.Mutex
	Accounts  []any
	Stores    []gjson.Result
	HoldStore chan gjson.Result
	// OnStore, when set, runs before a store request is answered.
	OnStore func(gjson.Result)
}

const extensionID = "credsync@credsync.org"

// writeManifest writes a host manifest allowing only the credsync
// extension, as `credsync install` does.
func writeManifest(t *testing.T, dir, bin string) string {
	t.Helper()
	path := filepath.Join(dir, "credsync.json")
	m := map[string]any{"name": "credsync", "description": "credsync", "path": bin, "type": "stdio",
		"allowed_extensions": []string{extensionID}}
	b, _ := json.Marshal(m)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func startHost(t *testing.T, bin, manifest string, env []string) *hostProcess {
	t.Helper()
	cmd := exec.Command(bin, manifest, extensionID)
	cmd.Env = env
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	h := &hostProcess{t: t, cmd: cmd, in: in, out: out, w: wire.NewWriter(in), Stderr: &lockedBuffer{},
		msgs: make(chan gjson.Result, 64), exited: make(chan struct{})}
	cmd.Stderr = h.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(h.msgs)
		r := wire.NewReader(out, 0)
		for {
			body, err := r.Read()
			if err != nil {
				return
			}
			m := gjson.ParseBytes(body)
			switch {
			case m.Get("type").String() == "accounts" && m.Get("id").Exists():
				h.mu.Lock()
				list := h.Accounts
				h.mu.Unlock()
				h.send(map[string]any{"id": m.Get("id").String(), "status": "ok", "result": map[string]any{"accounts": list}})
			case m.Get("type").String() == "store" && m.Get("id").Exists():
				h.mu.Lock()
				h.Stores = append(h.Stores, m)
				hold, on := h.HoldStore, h.OnStore
				h.mu.Unlock()
				if on != nil {
					on(m)
				}
				if hold != nil {
					hold <- m
					continue
				}
				h.send(map[string]any{"id": m.Get("id").String(), "status": "ok", "result": map[string]any{"logins": storedAll(m)}})
			default:
				h.msgs <- m
			}
		}
	}()
	go func() {
		h.waitErr = cmd.Wait()
		close(h.exited)
	}()
	t.Cleanup(func() {
		h.in.Close()
		select {
		case <-h.exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-h.exited
		}
	})
	return h
}

// storedAll is every login of a store request in state "stored".
func storedAll(store gjson.Result) []map[string]string {
	logins := []map[string]string{}
	for _, l := range store.Get("logins").Array() {
		logins = append(logins, map[string]string{"origin": l.Get("origin").String(), "username": l.Get("username").String(), "state": "stored"})
	}
	return logins
}

func (h *hostProcess) Pid() int { return h.cmd.Process.Pid }

func (h *hostProcess) send(v any) {
	b, _ := json.Marshal(v)
	_ = h.w.Write(b) // the host may be gone: its reply then never comes
}

// request sends a request and returns its final reply, skipping progress
// events.
func (h *hostProcess) request(req map[string]any) gjson.Result {
	h.t.Helper()
	h.send(req)
	deadline := time.After(30 * time.Second)
	for {
		select {
		case m, ok := <-h.msgs:
			if !ok {
				h.t.Fatalf("the host exited before answering %v; stderr:\n%s", req["type"], h.Stderr.Bytes())
			}
			if m.Get("id").String() == req["id"] && m.Get("status").Exists() {
				return m
			}
		case <-deadline:
			h.t.Fatalf("no answer to %v within 30 s", req["type"])
		}
	}
}

// close ends the session as Thunderbird does (closing stdin) and waits for
// the host to exit.
func (h *hostProcess) close() {
	h.t.Helper()
	h.in.Close()
	select {
	case <-h.exited:
	case <-time.After(10 * time.Second):
		h.t.Fatal("the host did not exit after its input closed")
	}
}

// envFor is a minimal environment for a credsync process confined to root:
// HOME, XDG_STATE_HOME (audit log), XDG_RUNTIME_DIR (socket) and TMPDIR all
// inside it; SSL_CERT_FILE trusts caFile.
func envFor(root, runtimeDir, caFile string) []string {
	return []string{
		"PATH=/usr/bin:/bin",
		"HOME=" + filepath.Join(root, "home"),
		"XDG_STATE_HOME=" + filepath.Join(root, "state"),
		"XDG_RUNTIME_DIR=" + runtimeDir,
		"TMPDIR=" + filepath.Join(root, "tmp"),
		"SSL_CERT_FILE=" + caFile,
		"LANG=C.UTF-8",
	}
}

// runCLI runs a credsync subcommand with stdin and returns its exit status
// and output.
func runCLI(t *testing.T, bin string, env []string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("credsync %s: %v", args[0], err)
	}
	return code, stdout.String(), stderr.String()
}
