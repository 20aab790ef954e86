package nmhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/credsync/credsync/internal/testkit/wine"
)

// fakeRegistry is an in-memory Registry.
type fakeRegistry struct {
	mu   sync.Mutex
	vals map[RegistryKey]string
	// readErr, when set, is returned by ReadDefault for every key.
	readErr error
}

func newFakeRegistry() *fakeRegistry { return &fakeRegistry{vals: map[RegistryKey]string{}} }

func (r *fakeRegistry) ReadDefault(k RegistryKey) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.readErr != nil {
		return "", r.readErr
	}
	v, ok := r.vals[k]
	if !ok {
		return "", fmt.Errorf("%s: %w", k, fs.ErrNotExist)
	}
	return v, nil
}

func (r *fakeRegistry) WriteDefault(k RegistryKey, v string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.vals[k] = v
	return nil
}

func (r *fakeRegistry) DeleteKey(k RegistryKey) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.vals[k]; !ok {
		return fmt.Errorf("%s: %w", k, fs.ErrNotExist)
	}
	delete(r.vals, k)
	return nil
}

func userLocation(t *testing.T, home string) Location {
	t.Helper()
	loc, err := Env{GOOS: runtime.GOOS, Home: home}.Location(User)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func skipUnlessUnix(t *testing.T) {
	t.Helper()
	if runtime.GOOS == "windows" || unixLayouts[runtime.GOOS].user == "" {
		t.Skipf("file layout tests need a Unix layout; GOOS=%s", runtime.GOOS)
	}
}

func TestInstallWritesManifest(t *testing.T) {
	skipUnlessUnix(t)
	home := wine.TempDir(t)
	loc := userLocation(t, home)
	m := NewManifest("/usr/bin/credsync")

	res, err := Install(loc, m, nil)
	if err != nil {
		t.Fatalf("Install() = %v", err)
	}
	if len(res.Written) != 1 || res.Written[0] != loc.Path || len(res.Unchanged) != 0 {
		t.Errorf("Install() = %+v, want %s written", res, loc.Path)
	}
	got, err := os.ReadFile(loc.Path)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := m.JSON()
	if !bytes.Equal(got, want) {
		t.Errorf("manifest file =\n%s\nwant\n%s", got, want)
	}
	fi, err := os.Stat(loc.Path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != ManifestMode {
		t.Errorf("manifest mode = %v, want %v", fi.Mode().Perm(), ManifestMode)
	}
	for d := filepath.Dir(loc.Path); d != home; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		// MkdirAll honours the umask; a usual one (022 or 002) keeps 0755.
		if perm := fi.Mode().Perm(); perm&^DirMode != 0 || perm&0o700 != 0o700 {
			t.Errorf("directory %s mode = %v, want at most %v", d, perm, DirMode)
		}
	}
	back, err := ReadManifest(loc.Path)
	if err != nil || !back.Allows(ExtensionID) || back.Path != "/usr/bin/credsync" {
		t.Errorf("ReadManifest(installed) = %+v, %v", back, err)
	}
}

func TestInstallIsIdempotent(t *testing.T) {
	skipUnlessUnix(t)
	loc := userLocation(t, wine.TempDir(t))
	m := NewManifest("/usr/bin/credsync")
	if _, err := Install(loc, m, nil); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(loc.Path)
	if err != nil {
		t.Fatal(err)
	}

	res, err := Install(loc, m, nil)
	if err != nil {
		t.Fatalf("second Install() = %v", err)
	}
	if len(res.Written) != 0 || len(res.Unchanged) != 1 {
		t.Errorf("second Install() = %+v, want the file unchanged", res)
	}
	after, err := os.Stat(loc.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) || !before.ModTime().Equal(after.ModTime()) {
		t.Error("second Install() replaced an up-to-date manifest")
	}

	// Same content, wrong mode: the mode is repaired.
	if err := os.Chmod(loc.Path, 0o600); err != nil {
		t.Fatal(err)
	}
	res, err = Install(loc, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(loc.Path); fi.Mode().Perm() != ManifestMode || len(res.Written) != 1 {
		t.Errorf("Install() over a 0600 manifest: mode %v, result %+v; want %v, written", fi.Mode().Perm(), res, ManifestMode)
	}

	// A different binary rewrites it.
	res, err = Install(loc, NewManifest("/opt/credsync/credsync"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if back, _ := ReadManifest(loc.Path); back.Path != "/opt/credsync/credsync" || len(res.Written) != 1 {
		t.Errorf("Install(new binary): manifest path %q, result %+v", back.Path, res)
	}
	assertNoTempFiles(t, filepath.Dir(loc.Path))
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != manifestFile {
			t.Errorf("left behind in %s: %s", dir, e.Name())
		}
	}
}

// TestInstallIsAtomic checks that the manifest is replaced, never rewritten
// in place: a reader sees the old or the new file, never a partial one, and
// a hard link to the old file keeps the old content.
func TestInstallIsAtomic(t *testing.T) {
	skipUnlessUnix(t)
	loc := userLocation(t, wine.TempDir(t))
	a, b := NewManifest("/usr/bin/credsync"), NewManifest("/opt/credsync/bin/credsync", ExtensionID, "x@example.org")
	ja, _ := a.JSON()
	jb, _ := b.JSON()
	if _, err := Install(loc, a, nil); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(wine.TempDir(t), "old.json")
	if err := os.Link(loc.Path, link); err != nil {
		t.Skipf("hard links not available: %v", err)
	}

	stop := make(chan struct{})
	bad := make(chan string, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			got, err := os.ReadFile(loc.Path)
			if err != nil || (!bytes.Equal(got, ja) && !bytes.Equal(got, jb)) {
				select {
				case bad <- fmt.Sprintf("read %q, %v", got, err):
				default:
				}
				return
			}
		}
	}()
	for i := range 200 {
		m := a
		if i%2 == 0 {
			m = b
		}
		if _, err := Install(loc, m, nil); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	select {
	case msg := <-bad:
		t.Errorf("a reader saw a partial manifest: %s", msg)
	default:
	}
	old, err := os.ReadFile(link)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(old, ja) {
		t.Errorf("the old file was modified in place: now %q", old)
	}
	assertNoTempFiles(t, filepath.Dir(loc.Path))
}

func TestInstallRefusesInvalidManifest(t *testing.T) {
	skipUnlessUnix(t)
	loc := userLocation(t, wine.TempDir(t))
	for _, m := range []Manifest{
		NewManifest("credsync"), // relative
		{Name: "other", Type: "stdio", Path: "/bin/x", AllowedExtensions: []string{ExtensionID}},
		{Name: HostName, Type: "stdio", Path: "/bin/x"},
	} {
		if _, err := Install(loc, m, nil); err == nil {
			t.Errorf("Install(%+v) = nil, want an error", m)
		}
	}
	if _, err := os.Stat(loc.Path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an invalid manifest was written: %v", err)
	}
}

func TestInstallMirrors(t *testing.T) {
	skipUnlessUnix(t) // a Linux layout on disk
	root := wine.TempDir(t)
	env := Env{GOOS: "linux", Root: root}
	loc, err := env.Location(System)
	if err != nil {
		t.Fatal(err)
	}
	m := NewManifest("/usr/bin/credsync")

	res, err := Install(loc, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Written) != 1 || !exists(loc.Path) || exists(loc.Mirrors[0].Path) {
		t.Fatalf("Install() without /usr/lib64/mozilla = %+v, want only %s", res, loc.Path)
	}

	if err := os.MkdirAll(filepath.Join(root, "usr/lib64/mozilla"), 0o755); err != nil {
		t.Fatal(err)
	}
	res, err = Install(loc, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Written) != 1 || res.Written[0] != loc.Mirrors[0].Path || len(res.Unchanged) != 1 {
		t.Fatalf("Install() with /usr/lib64/mozilla = %+v, want the mirror written", res)
	}

	un, err := Uninstall(loc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(un.Removed) != 2 || exists(loc.Path) || exists(loc.Mirrors[0].Path) {
		t.Errorf("Uninstall() = %+v, want both removed", un)
	}
}

func TestUninstall(t *testing.T) {
	skipUnlessUnix(t)
	home := wine.TempDir(t)
	loc := userLocation(t, home)

	res, err := Uninstall(loc, nil)
	if err != nil {
		t.Fatalf("Uninstall(nothing installed) = %v", err)
	}
	if !res.Nothing() {
		t.Errorf("Uninstall(nothing installed) = %+v, want Nothing()", res)
	}

	if _, err := Install(loc, NewManifest("/usr/bin/credsync"), nil); err != nil {
		t.Fatal(err)
	}
	res, err = Uninstall(loc, nil)
	if err != nil {
		t.Fatalf("Uninstall() = %v", err)
	}
	if res.Nothing() || len(res.Removed) != 1 || res.Removed[0] != loc.Path {
		t.Errorf("Uninstall() = %+v, want %s removed", res, loc.Path)
	}
	if exists(loc.Path) {
		t.Error("manifest still there after Uninstall()")
	}
	// The shared directory stays: Firefox hosts live there too.
	if !exists(filepath.Dir(loc.Path)) {
		t.Error("Uninstall() removed the shared native-messaging-hosts directory")
	}
	if res, err := Uninstall(loc, nil); err != nil || !res.Nothing() {
		t.Errorf("second Uninstall() = %+v, %v; want nothing to do", res, err)
	}
}

// TestInstallWindowsRegistry drives the Windows flow with a fake registry
// and a Location whose file lives in a temporary directory.
func TestInstallWindowsRegistry(t *testing.T) {
	dir := wine.TempDir(t)
	own := filepath.Join(dir, "credsync")
	loc := Location{
		GOOS:     "windows",
		Scope:    User,
		Path:     filepath.Join(own, manifestFile),
		Registry: RegistryKey{Root: "HKCU", Path: RegistryPath},
		OwnDir:   own,
	}
	m := NewManifest(`C:\Program Files\credsync\credsync.exe`)
	reg := newFakeRegistry()

	if _, err := Install(loc, m, nil); err == nil {
		t.Error("Install() without a registry = nil, want an error")
	}
	res, err := Install(loc, m, reg)
	if err != nil {
		t.Fatalf("Install() = %v", err)
	}
	if !res.RegistrySet || res.RegistryUnchanged {
		t.Errorf("Install() = %+v, want the registry set", res)
	}
	if v, _ := reg.ReadDefault(loc.Registry); v != loc.Path {
		t.Errorf("registry value = %q, want %q", v, loc.Path)
	}
	res, err = Install(loc, m, reg)
	if err != nil || res.RegistrySet || !res.RegistryUnchanged {
		t.Errorf("second Install() = %+v, %v; want the registry unchanged", res, err)
	}
	// A value pointing elsewhere is corrected.
	_ = reg.WriteDefault(loc.Registry, `C:\old\credsync.json`)
	if res, err = Install(loc, m, reg); err != nil || !res.RegistrySet {
		t.Errorf("Install() over a stale value = %+v, %v; want it set", res, err)
	}

	un, err := Uninstall(loc, reg)
	if err != nil {
		t.Fatalf("Uninstall() = %v", err)
	}
	if !un.RegistryRemoved || len(un.Removed) != 1 {
		t.Errorf("Uninstall() = %+v, want key and file removed", un)
	}
	if _, err := reg.ReadDefault(loc.Registry); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("registry key still there: %v", err)
	}
	if exists(own) {
		t.Error("Uninstall() left credsync's own, now empty, directory")
	}
	if un, err := Uninstall(loc, reg); err != nil || !un.Nothing() {
		t.Errorf("second Uninstall() = %+v, %v; want nothing to do", un, err)
	}

	// Registry failures other than "not there" are reported.
	reg.readErr = errors.New("access denied")
	if _, err := Install(loc, m, reg); err == nil || !strings.Contains(err.Error(), "access denied") {
		t.Errorf("Install() with an unreadable registry = %v, want the error", err)
	}
}

func TestUninstallKeepsNonEmptyOwnDir(t *testing.T) {
	dir := wine.TempDir(t)
	loc := Location{GOOS: "windows", Path: filepath.Join(dir, manifestFile), OwnDir: dir}
	if err := os.WriteFile(loc.Path, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(other, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Uninstall(loc, nil); err != nil {
		t.Fatal(err)
	}
	if !exists(other) {
		t.Error("Uninstall() removed a file it did not write")
	}
}

// TestInstallDoctorUninstall is the whole cycle in a throw-away home.
func TestInstallDoctorUninstall(t *testing.T) {
	skipUnlessUnix(t)
	home, root := wine.TempDir(t), wine.TempDir(t)
	env := Env{GOOS: runtime.GOOS, Home: home, Root: root}
	bin := fakeBinary(t)
	hello := &fakeHello{}
	cfg := DoctorConfig{Env: env, Self: bin, Hello: hello.run}

	if rep := Doctor(context.Background(), cfg); rep.Usable {
		t.Fatalf("Doctor() before Install: usable\n%s", reportText(rep))
	}

	loc, err := env.Location(User)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Install(loc, NewManifest(bin), nil); err != nil {
		t.Fatal(err)
	}
	rep := Doctor(context.Background(), cfg)
	if !rep.Usable || rep.Active != loc.Path || rep.Problems() != 0 {
		t.Fatalf("Doctor() after Install: usable %v, active %q\n%s", rep.Usable, rep.Active, reportText(rep))
	}
	if len(hello.calls) != 1 || hello.calls[0] != [3]string{bin, loc.Path, ExtensionID} {
		t.Errorf("hello calls = %q, want one with %q %q %q", hello.calls, bin, loc.Path, ExtensionID)
	}

	if _, err := Uninstall(loc, nil); err != nil {
		t.Fatal(err)
	}
	if rep := Doctor(context.Background(), cfg); rep.Usable {
		t.Fatalf("Doctor() after Uninstall: usable\n%s", reportText(rep))
	}
}
