package nmhost

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/testkit/wine"
	"github.com/credsync/credsync/internal/wire"
)

// fakeHostEnv selects the behaviour of the test binary when RunHello
// starts it as a native-messaging host.
const fakeHostEnv = "NMHOST_TEST_FAKE_HOST"

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeHostEnv); mode != "" {
		os.Exit(fakeHost(mode))
	}
	os.Exit(m.Run())
}

// fakeHost behaves like credsync started by Thunderbird, in one of several
// ways. It checks what RunHello must provide: two arguments (manifest,
// extension ID), the binary's directory as working directory, and one
// well-formed hello frame on stdin.
func fakeHost(mode string) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "fake host: "+format+"\n", args...)
		return 9
	}
	if len(os.Args) != 3 {
		return fail("got arguments %q, want manifest and extension ID", os.Args[1:])
	}
	exe, _ := os.Executable()
	if wd, _ := os.Getwd(); wd != filepath.Dir(exe) {
		return fail("working directory %s, want %s", wd, filepath.Dir(exe))
	}
	if _, err := CheckCaller(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "credsync:", err)
		return 3
	}
	if mode == "exit-early" {
		return 0
	}
	req, err := readFrame(os.Stdin)
	if err != nil {
		return fail("reading the request: %v", err)
	}
	if string(req) != helloRequest {
		return fail("request %q, want %q", req, helloRequest)
	}
	out := os.Stdout
	switch mode {
	case "ok":
		writeFrame(out, []byte(`{"id":"doctor","status":"ok","result":{"name":"credsync","version":"9.9.9","protocol":1,"capabilities":["verify"]}}`))
	case "events-first":
		writeFrame(out, []byte(`{"type":"progress","request":"x"}`))
		writeFrame(out, []byte(`{"id":"other","status":"ok","result":{}}`))
		writeFrame(out, []byte(`{"id":"doctor","status":"ok","result":{"name":"credsync","version":"1.0.0","protocol":2}}`))
	case "error":
		writeFrame(out, []byte(`{"id":"doctor","status":"error","code":"unknown_type","message":"no hello here"}`))
	case "garbage":
		writeFrame(out, []byte(`this is not json`))
	case "oversize":
		var hdr [4]byte
		binary.NativeEndian.PutUint32(hdr[:], maxReply+1)
		out.Write(append(hdr[:], make([]byte, maxReply+1)...))
	case "truncated":
		var hdr [4]byte
		binary.NativeEndian.PutUint32(hdr[:], 100)
		out.Write(append(hdr[:], `{"id":`...))
		return 0
	case "hang":
		time.Sleep(time.Minute)
		return 0
	case "linger":
		// Answers, then ignores EOF for a while.
		writeFrame(out, []byte(`{"id":"doctor","status":"ok","result":{}}`))
		time.Sleep(time.Minute)
		return 0
	default:
		return fail("unknown mode %q", mode)
	}
	// Like the real host: serve until Thunderbird closes stdin.
	io.Copy(io.Discard, os.Stdin)
	return 0
}

func helloFixture(t *testing.T, mode string) (bin, manifest string) {
	t.Helper()
	t.Setenv(fakeHostEnv, mode)
	// A -race child otherwise sleeps a second at exit.
	t.Setenv("GORACE", "atexit_sleep_ms=0")
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	manifest = filepath.Join(wine.TempDir(t), manifestFile)
	m := NewManifest(bin)
	data, _ := m.JSON()
	if err := os.WriteFile(manifest, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return bin, manifest
}

func TestRunHello(t *testing.T) {
	tests := []struct {
		mode    string
		id      string
		want    HelloReply
		wantErr []string // substrings of the error; nil = success
	}{
		{"ok", ExtensionID, HelloReply{Name: "credsync", Version: "9.9.9", Protocol: 1}, nil},
		{"events-first", ExtensionID, HelloReply{Name: "credsync", Version: "1.0.0", Protocol: 2}, nil},
		{"ok", "evil@example.org", HelloReply{}, []string{"exit status 3", "is not in allowed_extensions"}},
		{"exit-early", ExtensionID, HelloReply{}, nil},
		{"error", ExtensionID, HelloReply{}, []string{`answered "error"`, "unknown_type", "no hello here"}},
		{"garbage", ExtensionID, HelloReply{}, []string{"invalid JSON"}},
		{"oversize", ExtensionID, HelloReply{}, []string{"above Thunderbird's limit"}},
		{"truncated", ExtensionID, HelloReply{}, []string{"truncated frame"}},
	}
	// exit-early: the host exits 0 without reading or answering.
	tests[3].wantErr = []string{"without answering"}
	for _, tt := range tests {
		t.Run(tt.mode+"/"+tt.id, func(t *testing.T) {
			bin, manifest := helloFixture(t, tt.mode)
			got, err := RunHello(context.Background(), bin, manifest, tt.id)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("RunHello() = %v", err)
				}
				if got != tt.want {
					t.Errorf("RunHello() = %+v, want %+v", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("RunHello() = %+v, nil; want an error", got)
			}
			for _, sub := range tt.wantErr {
				if !strings.Contains(err.Error(), sub) {
					t.Errorf("RunHello() = %v, want it to contain %q", err, sub)
				}
			}
		})
	}
}

func TestRunHelloTimeout(t *testing.T) {
	bin, manifest := helloFixture(t, "hang")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := RunHello(ctx, bin, manifest, ExtensionID)
	if err == nil || !strings.Contains(err.Error(), "no answer in time") {
		t.Errorf("RunHello(hanging host) = %v, want a timeout", err)
	}
	if d := time.Since(start); d > HelloTimeout {
		t.Errorf("RunHello(hanging host) took %v", d)
	}
}

func TestRunHelloLingeringHost(t *testing.T) {
	// A host that answers but does not exit on EOF is still healthy; it is
	// killed at the deadline.
	bin, manifest := helloFixture(t, "linger")
	deadline := 500 * time.Millisecond
	if wine.Detected() {
		deadline = 5 * time.Second // a process takes up to seconds to start under Wine on a busy machine
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if _, err := RunHello(ctx, bin, manifest, ExtensionID); err != nil {
		t.Errorf("RunHello(lingering host) = %v", err)
	}
}

func TestRunHelloCannotStart(t *testing.T) {
	_, err := RunHello(context.Background(), filepath.Join(wine.TempDir(t), "missing"), "/x.json", ExtensionID)
	if err == nil || !strings.Contains(err.Error(), "cannot start") {
		t.Errorf("RunHello(missing binary) = %v, want a start error", err)
	}
}

// TestDoctorRealHello runs the doctor with the real RunHello against the
// fake host, after a real Install.
func TestDoctorRealHello(t *testing.T) {
	skipUnlessUnix(t)
	bin, _ := helloFixture(t, "ok")
	env := Env{GOOS: "linux", Home: wine.TempDir(t), Root: wine.TempDir(t)}
	loc, err := env.Location(User)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Install(loc, NewManifest(bin), nil); err != nil {
		t.Fatal(err)
	}
	rep := Doctor(context.Background(), DoctorConfig{Env: env, Self: bin, Hello: RunHello})
	if !rep.Usable || !hasFinding(rep, OK, "the host answers hello (credsync 9.9.9, protocol 1)") {
		t.Errorf("Usable %v\n%s", rep.Usable, reportText(rep))
	}
	rep = Doctor(context.Background(), DoctorConfig{Env: env, ExtensionID: "evil@example.org", Hello: RunHello})
	if rep.Usable {
		t.Errorf("usable for an extension the manifest does not allow\n%s", reportText(rep))
	}
}

// The fake host speaks through the same framing as the real one.
func writeFrame(w io.Writer, body []byte) error { return wire.NewWriter(w).Write(body) }

func readFrame(r io.Reader) ([]byte, error) { return wire.NewReader(r, maxReply).Read() }

func TestTailBuffer(t *testing.T) {
	tb := &tailBuffer{max: 16}
	fmt.Fprint(tb, "first line\n")
	fmt.Fprint(tb, "second line that is long\n")
	if got, want := tb.lastLine(), "ne that is long"; got != want {
		t.Errorf("lastLine() = %q, want %q", got, want)
	}
	if len(tb.buf) > 16 {
		t.Errorf("tailBuffer kept %d bytes, max 16", len(tb.buf))
	}
	tb = &tailBuffer{max: 100}
	fmt.Fprint(tb, "a\nb\n\n")
	if got := tb.lastLine(); got != "b" {
		t.Errorf("lastLine() = %q, want %q", got, "b")
	}
}
