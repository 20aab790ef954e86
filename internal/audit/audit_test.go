package audit

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/testkit/wine"
)

func record(account string) Record {
	return Record{
		Time:    time.Date(2025, 3, 4, 15, 6, 7, 890, time.FixedZone("CET", 3600)),
		Kind:    KindSync,
		Account: account,
		Login:   "alice@example.org@mail.example.org",
		Steps:   []Step{{"policy", "ok"}, {"checking_incoming", "ok"}, {"saving", "ok"}},
		Outcome: OutcomeStored,
	}
}

func TestWriteCreatesPrivateFileAndAppends(t *testing.T) {
	path := filepath.Join(wine.TempDir(t), "state", "credsync", "audit.log")
	l := &Log{Path: path}
	if err := l.Write(record("account1")); err != nil {
		t.Fatal(err)
	}
	if err := l.Write(record("account2")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"time":"2025-03-04T14:06:07Z","kind":"sync","account":"account1","login":"alice@example.org@mail.example.org",` +
		`"steps":[{"step":"policy","state":"ok"},{"step":"checking_incoming","state":"ok"},{"step":"saving","state":"ok"}],"outcome":"stored","changed":false}` + "\n"
	lines := strings.SplitAfter(string(b), "\n")
	if len(lines) != 3 || lines[0] != want || !strings.Contains(lines[1], `"account":"account2"`) || lines[2] != "" {
		t.Fatalf("log =\n%s\nwant first line\n%s", b, want)
	}
	if runtime.GOOS != "windows" {
		if m := stat(t, path).Mode().Perm(); m != 0o600 {
			t.Fatalf("file mode %04o, want 0600", m)
		}
		if m := stat(t, filepath.Dir(path)).Mode().Perm(); m != 0o700 {
			t.Fatalf("directory mode %04o, want 0700", m)
		}
	}
}

func stat(t *testing.T, path string) fs.FileInfo {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

func TestLooseFileIsMadePrivate(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes")
	}
	path := filepath.Join(wine.TempDir(t), "audit.log")
	if err := os.WriteFile(path, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := (&Log{Path: path}).Write(record("a")); err != nil {
		t.Fatal(err)
	}
	if m := stat(t, path).Mode().Perm(); m != 0o600 {
		t.Fatalf("file mode %04o, want 0600", m)
	}
	if b, _ := os.ReadFile(path); !strings.HasPrefix(string(b), "{}\n{") {
		t.Fatalf("the existing content was not kept: %q", b)
	}
}

// writes records every Write call, optionally failing like a full disk.
type fakeFile struct {
	writes [][]byte
	err    error
	closed bool
}

func (f *fakeFile) Write(p []byte) (int, error) {
	f.writes = append(f.writes, append([]byte(nil), p...))
	if f.err != nil {
		return 0, f.err
	}
	return len(p), nil
}

func (f *fakeFile) Close() error { f.closed = true; return nil }

func TestOneWritePerRecord(t *testing.T) {
	f := &fakeFile{}
	l := &Log{Path: "x", open: func(string) (io.WriteCloser, error) { return f, nil }}
	if err := l.Write(record("a")); err != nil {
		t.Fatal(err)
	}
	if len(f.writes) != 1 || !strings.HasSuffix(string(f.writes[0]), "}\n") || !f.closed {
		t.Fatalf("writes = %q, closed %v", f.writes, f.closed)
	}
}

func TestDiskFull(t *testing.T) {
	f := &fakeFile{err: syscall.ENOSPC}
	l := &Log{Path: "x", open: func(string) (io.WriteCloser, error) { return f, nil }}
	if err := l.Write(record("a")); !errors.Is(err, syscall.ENOSPC) || !f.closed {
		t.Fatalf("Write() = %v, closed %v; want ENOSPC and the file closed", err, f.closed)
	}
	short := &shortFile{}
	l.open = func(string) (io.WriteCloser, error) { return short, nil }
	if err := l.Write(record("a")); !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("short write: Write() = %v", err)
	}
	l.open = func(string) (io.WriteCloser, error) { return nil, syscall.EROFS }
	if err := l.Write(record("a")); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("open failure: Write() = %v", err)
	}
}

type shortFile struct{}

func (shortFile) Write(p []byte) (int, error) { return len(p) / 2, nil }
func (shortFile) Close() error                { return nil }

func TestConcurrentWritesKeepLinesWhole(t *testing.T) {
	path := filepath.Join(wine.TempDir(t), "audit.log")
	l := &Log{Path: path}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := record(strings.Repeat("x", i*100))
			if err := l.Write(r); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, bad, err := Tail(f, 0)
	if err != nil || bad != 0 || len(recs) != 20 {
		t.Fatalf("Tail() = %d records, %d bad, %v", len(recs), bad, err)
	}
}

func TestTail(t *testing.T) {
	var b strings.Builder
	path := filepath.Join(wine.TempDir(t), "audit.log")
	l := &Log{Path: path}
	for _, id := range []string{"a1", "a2", "a3", "a4", "a5", "a6", "a7"} {
		if err := l.Write(record(id)); err != nil {
			t.Fatal(err)
		}
	}
	data, _ := os.ReadFile(path)
	b.Write(data)
	b.WriteString("not json\n\n")
	recs, bad, err := Tail(strings.NewReader(b.String()), 3)
	if err != nil || bad != 1 || len(recs) != 3 || recs[0].Account != "a5" || recs[2].Account != "a7" {
		t.Fatalf("Tail(3) = %+v, %d bad, %v", recs, bad, err)
	}
	if !recs[0].Time.Equal(time.Date(2025, 3, 4, 14, 6, 7, 0, time.UTC)) || len(recs[0].Steps) != 3 {
		t.Fatalf("record read back = %+v", recs[0])
	}
	all, _, _ := Tail(strings.NewReader(b.String()), 0)
	if len(all) != 7 {
		t.Fatalf("Tail(0) = %d records", len(all))
	}
}

func TestDefaultPath(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	home := func() (string, error) { return "/home/alice", nil }
	check := func(goos, want string) {
		t.Helper()
		got, err := defaultPath(goos, getenv, home)
		if err != nil || got != filepath.FromSlash(want) {
			t.Fatalf("%s with %v: %q, %v; want %q", goos, env, got, err, want)
		}
	}
	// defaultPath joins with the running OS's filepath (it is only ever
	// asked about runtime.GOOS): the Unix layouts are checked on Unix.
	if runtime.GOOS != "windows" {
		check("linux", "/home/alice/.local/state/credsync/audit.log")
		env["XDG_STATE_HOME"] = "relative"
		check("linux", "/home/alice/.local/state/credsync/audit.log")
		env["XDG_STATE_HOME"] = "/srv/state"
		check("freebsd", "/srv/state/credsync/audit.log")
		check("darwin", "/home/alice/Library/Application Support/credsync/audit.log")
	}
	if _, err := defaultPath("windows", getenv, home); err == nil {
		t.Fatal("windows without LOCALAPPDATA: no error")
	}
	env["LOCALAPPDATA"] = `C:\Users\alice\AppData\Local`
	got, _ := defaultPath("windows", getenv, home)
	if got != filepath.Join(`C:\Users\alice\AppData\Local`, "credsync", "audit.log") {
		t.Fatalf("windows: %q", got)
	}
}
