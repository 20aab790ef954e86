package nmhost

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/credsync/credsync/internal/testkit/wine"
)

// fakeHello records its calls and answers with err (nil = healthy).
type fakeHello struct {
	mu    sync.Mutex
	calls [][3]string
	err   error
}

func (f *fakeHello) run(_ context.Context, binary, manifestPath, extensionID string) (HelloReply, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, [3]string{binary, manifestPath, extensionID})
	if f.err != nil {
		return HelloReply{}, f.err
	}
	return HelloReply{Name: "credsync", Version: "9.9.9", Protocol: 1}, nil
}

// fakeBinary creates an executable file standing for the host.
func fakeBinary(t *testing.T) string {
	t.Helper()
	p := filepath.Join(wine.TempDir(t), "credsync")
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func reportText(r Report) string {
	var b strings.Builder
	for _, f := range r.Findings {
		b.WriteString(f.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// hasFinding reports whether r has a finding of level l whose text
// contains sub.
func hasFinding(r Report, l Level, sub string) bool {
	for _, f := range r.Findings {
		if f.Level == l && strings.Contains(f.Text, sub) {
			return true
		}
	}
	return false
}

func writeFile(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

type doctorFixture struct {
	env  Env
	user Location
	sys  Location
	bin  string
}

func newDoctorFixture(t *testing.T) doctorFixture {
	t.Helper()
	skipUnlessUnix(t)
	env := Env{GOOS: runtime.GOOS, Home: wine.TempDir(t), Root: wine.TempDir(t)}
	user, err := env.Location(User)
	if err != nil {
		t.Fatal(err)
	}
	sys, err := env.Location(System)
	if err != nil {
		t.Fatal(err)
	}
	return doctorFixture{env: env, user: user, sys: sys, bin: fakeBinary(t)}
}

func (fx doctorFixture) install(t *testing.T, loc Location, m Manifest) {
	t.Helper()
	if _, err := Install(loc, m, nil); err != nil {
		t.Fatal(err)
	}
}

func TestDoctorNothingInstalled(t *testing.T) {
	fx := newDoctorFixture(t)
	hello := &fakeHello{}
	rep := Doctor(context.Background(), DoctorConfig{Env: fx.env, Hello: hello.run})
	if rep.Usable || rep.Active != "" {
		t.Errorf("Usable = %v, Active = %q; want false, empty", rep.Usable, rep.Active)
	}
	for _, want := range []struct {
		l   Level
		sub string
	}{
		{Note, "no user manifest at " + fx.user.Path},
		{Note, "no system manifest at " + fx.sys.Path},
		{Problem, "no usable registration"},
	} {
		if !hasFinding(rep, want.l, want.sub) {
			t.Errorf("missing %v finding %q in\n%s", want.l, want.sub, reportText(rep))
		}
	}
	last := rep.Findings[len(rep.Findings)-1]
	if got, want := last.String(), `problem: Thunderbird cannot start credsync: no usable registration → run "credsync install"`; got != want {
		t.Errorf("last line = %q, want %q", got, want)
	}
	if len(hello.calls) != 0 {
		t.Errorf("hello called %d times with nothing installed", len(hello.calls))
	}
}

func TestDoctorHealthyUser(t *testing.T) {
	fx := newDoctorFixture(t)
	fx.install(t, fx.user, NewManifest(fx.bin))
	hello := &fakeHello{}
	rep := Doctor(context.Background(), DoctorConfig{Env: fx.env, Self: fx.bin, Hello: hello.run})
	if !rep.Usable || rep.Active != fx.user.Path || rep.Problems() != 0 {
		t.Fatalf("Usable %v, Active %q, %d problems\n%s", rep.Usable, rep.Active, rep.Problems(), reportText(rep))
	}
	wantLines := []string{
		"ok: user manifest " + fx.user.Path,
		`ok: it parses, with name "credsync" and type "stdio"`,
		"ok: it allows the extension credsync@credsync.org",
		"ok: its host program " + fx.bin + " exists and is executable",
		"ok: it is this credsync",
		"ok: the host answers hello (credsync 9.9.9, protocol 1)",
		"note: no system manifest at " + fx.sys.Path,
		"ok: Thunderbird will use the user manifest " + fx.user.Path,
	}
	if got := reportText(rep); got != strings.Join(wantLines, "\n")+"\n" {
		t.Errorf("report =\n%s\nwant\n%s", got, strings.Join(wantLines, "\n"))
	}
}

func TestDoctorExtensionIDAndHelloArgs(t *testing.T) {
	fx := newDoctorFixture(t)
	fx.install(t, fx.user, NewManifest(fx.bin, "test@example.org"))
	hello := &fakeHello{}

	rep := Doctor(context.Background(), DoctorConfig{Env: fx.env, Hello: hello.run})
	if rep.Usable || !hasFinding(rep, Problem, "does not allow the extension credsync@credsync.org") {
		t.Errorf("default ID not allowed: Usable %v\n%s", rep.Usable, reportText(rep))
	}
	if len(hello.calls) != 0 {
		t.Errorf("hello was run for a manifest Thunderbird would refuse")
	}

	rep = Doctor(context.Background(), DoctorConfig{Env: fx.env, ExtensionID: "test@example.org", Hello: hello.run})
	if !rep.Usable {
		t.Errorf("ExtensionID override: not usable\n%s", reportText(rep))
	}
	if len(hello.calls) != 1 || hello.calls[0] != [3]string{fx.bin, fx.user.Path, "test@example.org"} {
		t.Errorf("hello calls = %q", hello.calls)
	}
}

func TestDoctorProblems(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, fx doctorFixture)
		hello error
		want  string // text of the Problem finding
	}{
		{"invalid JSON", func(t *testing.T, fx doctorFixture) {
			writeFile(t, fx.user.Path, `{"name": "credsync",`, 0o644)
		}, nil, "is not a valid manifest"},
		{"unknown member", func(t *testing.T, fx doctorFixture) {
			writeFile(t, fx.user.Path, strings.Replace(goodManifest, `{`, `{"allowed_origins":[],`, 1), 0o644)
		}, nil, "unknown member"},
		{"wrong name", func(t *testing.T, fx doctorFixture) {
			writeFile(t, fx.user.Path, strings.Replace(goodManifest, `"name":"credsync"`, `"name":"other"`, 1), 0o644)
		}, nil, `its name is "other"`},
		{"wrong type", func(t *testing.T, fx doctorFixture) {
			writeFile(t, fx.user.Path, strings.Replace(goodManifest, `"stdio"`, `"pkcs11"`, 1), 0o644)
		}, nil, `its type is "pkcs11"`},
		{"relative path", func(t *testing.T, fx doctorFixture) {
			writeFile(t, fx.user.Path, strings.Replace(goodManifest, `"/bin/credsync"`, `"bin/credsync"`, 1), 0o644)
		}, nil, "is not absolute"},
		{"missing binary", func(t *testing.T, fx doctorFixture) {
			fx.install(t, fx.user, NewManifest(filepath.Join(filepath.Dir(fx.bin), "gone")))
		}, nil, "does not exist"},
		{"binary is a directory", func(t *testing.T, fx doctorFixture) {
			fx.install(t, fx.user, NewManifest(filepath.Dir(fx.bin)))
		}, nil, "is not a regular file"},
		{"not executable", func(t *testing.T, fx doctorFixture) {
			fx.install(t, fx.user, NewManifest(fx.bin))
			if err := os.Chmod(fx.bin, 0o644); err != nil {
				t.Fatal(err)
			}
		}, nil, "is not executable"},
		{"hello fails", func(t *testing.T, fx doctorFixture) {
			fx.install(t, fx.user, NewManifest(fx.bin))
		}, errors.New("it exited without answering (exit status 3)"), "did not answer hello: it exited without answering"},
		{"system manifest unreadable by others", func(t *testing.T, fx doctorFixture) {
			fx.install(t, fx.sys, NewManifest(fx.bin))
			if err := os.Chmod(fx.sys.Path, 0o600); err != nil {
				t.Fatal(err)
			}
		}, nil, "not readable by other users"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newDoctorFixture(t)
			tt.setup(t, fx)
			hello := &fakeHello{err: tt.hello}
			rep := Doctor(context.Background(), DoctorConfig{Env: fx.env, Hello: hello.run})
			if rep.Usable {
				t.Errorf("Usable = true, want false\n%s", reportText(rep))
			}
			if !hasFinding(rep, Problem, tt.want) {
				t.Errorf("no problem containing %q in\n%s", tt.want, reportText(rep))
			}
			for _, f := range rep.Findings {
				if f.Level == Problem && f.Fix == "" {
					t.Errorf("problem without a fix: %s", f)
				}
				if strings.Contains(f.Text, ErrInvalidManifest.Error()) {
					t.Errorf("finding repeats the error prefix: %s", f)
				}
			}
		})
	}
}

func TestDoctorFallsBackToSystem(t *testing.T) {
	fx := newDoctorFixture(t)
	writeFile(t, fx.user.Path, "not json", 0o644)
	fx.install(t, fx.sys, NewManifest(fx.bin))
	rep := Doctor(context.Background(), DoctorConfig{Env: fx.env, Hello: (&fakeHello{}).run})
	if !rep.Usable || rep.Active != fx.sys.Path {
		t.Fatalf("Usable %v, Active %q; want the system manifest\n%s", rep.Usable, rep.Active, reportText(rep))
	}
	if !hasFinding(rep, Warning, "skips the broken user manifest") {
		t.Errorf("no warning about the skipped user manifest\n%s", reportText(rep))
	}
}

func TestDoctorPrefersUser(t *testing.T) {
	fx := newDoctorFixture(t)
	fx.install(t, fx.user, NewManifest(fx.bin))
	fx.install(t, fx.sys, NewManifest(fx.bin))
	hello := &fakeHello{}
	rep := Doctor(context.Background(), DoctorConfig{Env: fx.env, Hello: hello.run})
	if !rep.Usable || rep.Active != fx.user.Path {
		t.Fatalf("Active %q, want the user manifest\n%s", rep.Active, reportText(rep))
	}
	if len(hello.calls) != 2 {
		t.Errorf("hello ran %d times, want once per manifest", len(hello.calls))
	}
}

func TestDoctorNotThisBinary(t *testing.T) {
	fx := newDoctorFixture(t)
	fx.install(t, fx.user, NewManifest(fx.bin))
	other := fakeBinary(t)
	rep := Doctor(context.Background(), DoctorConfig{Env: fx.env, Self: other, Hello: (&fakeHello{}).run})
	if !rep.Usable {
		t.Fatalf("not usable\n%s", reportText(rep))
	}
	if !hasFinding(rep, Warning, "it is not this credsync ("+other+")") {
		t.Errorf("no warning about another binary\n%s", reportText(rep))
	}
}

func TestDoctorHelloSkipped(t *testing.T) {
	fx := newDoctorFixture(t)
	fx.install(t, fx.user, NewManifest(fx.bin))
	rep := Doctor(context.Background(), DoctorConfig{Env: fx.env})
	if !rep.Usable || !hasFinding(rep, Note, "hello check skipped") {
		t.Errorf("Usable %v\n%s", rep.Usable, reportText(rep))
	}
}

func TestDoctorMisplacedManifests(t *testing.T) {
	fx := newDoctorFixture(t)
	fx.install(t, fx.user, NewManifest(fx.bin))
	ignored := fx.env.IgnoredPaths()
	if len(ignored) == 0 {
		t.Skipf("no ignored directories known for %s", fx.env.GOOS)
	}
	writeFile(t, ignored[0], goodManifest, 0o644)
	rep := Doctor(context.Background(), DoctorConfig{Env: fx.env, Hello: (&fakeHello{}).run})
	if !hasFinding(rep, Warning, ignored[0]+" is a credsync manifest in a directory Thunderbird does not search") {
		t.Errorf("no warning about %s\n%s", ignored[0], reportText(rep))
	}
	if !rep.Usable {
		t.Errorf("a misplaced extra manifest made the registration unusable\n%s", reportText(rep))
	}
}

func TestDoctorLinuxExtras(t *testing.T) {
	skipUnlessUnix(t) // a Linux layout on disk
	env := Env{GOOS: "linux", Home: wine.TempDir(t), Root: wine.TempDir(t)}
	sys, err := env.Location(System)
	if err != nil {
		t.Fatal(err)
	}
	bin := fakeBinary(t)
	writeFile(t, sys.Mirrors[0].Path, strings.Replace(goodManifest, "/bin/credsync", bin, 1), 0o644)
	if err := os.MkdirAll(filepath.Join(env.Home, "snap/thunderbird"), 0o755); err != nil {
		t.Fatal(err)
	}
	rep := Doctor(context.Background(), DoctorConfig{Env: env, Hello: (&fakeHello{}).run})
	if !rep.Usable || rep.Active != sys.Mirrors[0].Path || !hasFinding(rep, OK, "system manifest (lib64 builds)") {
		t.Errorf("lib64 manifest not used: Usable %v, Active %q\n%s", rep.Usable, rep.Active, reportText(rep))
	}
	if !hasFinding(rep, Note, "a Snap Thunderbird is installed") {
		t.Errorf("no note about the Snap\n%s", reportText(rep))
	}
}

func TestDoctorWindows(t *testing.T) {
	env := Env{GOOS: "windows", Home: `C:\Users\u`}
	hkcu := RegistryKey{Root: "HKCU", Path: RegistryPath}
	hklm32 := RegistryKey{Root: "HKLM", Path: RegistryPath, View32: true}
	hklm64 := RegistryKey{Root: "HKLM", Path: RegistryPath}

	t.Run("no registry", func(t *testing.T) {
		rep := Doctor(context.Background(), DoctorConfig{Env: env})
		if rep.Usable || !hasFinding(rep, Problem, "cannot read the Windows registry") {
			t.Errorf("Usable %v\n%s", rep.Usable, reportText(rep))
		}
	})
	t.Run("nothing registered", func(t *testing.T) {
		rep := Doctor(context.Background(), DoctorConfig{Env: env, Registry: newFakeRegistry()})
		if rep.Usable || !hasFinding(rep, Note, "no user registration (HKCU") || !hasFinding(rep, Note, "no system registration (HKLM") {
			t.Errorf("Usable %v\n%s", rep.Usable, reportText(rep))
		}
	})
	t.Run("first value wins, no fallback", func(t *testing.T) {
		reg := newFakeRegistry()
		reg.vals[hkcu] = `C:/Users/u/gone/credsync.json` // slashes normalised like Thunderbird
		reg.vals[hklm64] = `C:\ProgramData\credsync\credsync.json`
		rep := Doctor(context.Background(), DoctorConfig{Env: env, Registry: reg, Hello: (&fakeHello{}).run})
		if rep.Usable {
			t.Errorf("Usable = true\n%s", reportText(rep))
		}
		if !hasFinding(rep, Problem, `user manifest C:\Users\u\gone\credsync.json (from HKCU\`+RegistryPath+`) does not exist`) {
			t.Errorf("no problem for the HKCU manifest\n%s", reportText(rep))
		}
		if !hasFinding(rep, Problem, "uses only the first registration it finds, HKCU") {
			t.Errorf("no problem about Thunderbird's lookup order\n%s", reportText(rep))
		}
	})
	t.Run("32-bit view before 64-bit", func(t *testing.T) {
		reg := newFakeRegistry()
		reg.vals[hklm32] = `D:\old\credsync.json`
		reg.vals[hklm64] = `C:\ProgramData\credsync\credsync.json`
		rep := Doctor(context.Background(), DoctorConfig{Env: env, Registry: reg})
		if !hasFinding(rep, Problem, "uses only the first registration it finds, HKLM\\"+RegistryPath+" (32-bit view)") {
			t.Errorf("the 32-bit view was not taken first\n%s", reportText(rep))
		}
	})
	t.Run("relative value", func(t *testing.T) {
		reg := newFakeRegistry()
		reg.vals[hkcu] = `credsync.json`
		rep := Doctor(context.Background(), DoctorConfig{Env: env, Registry: reg})
		if rep.Usable || !hasFinding(rep, Problem, "the registry value is not an absolute path") {
			t.Errorf("Usable %v\n%s", rep.Usable, reportText(rep))
		}
	})
	t.Run("unreadable registry", func(t *testing.T) {
		reg := newFakeRegistry()
		reg.readErr = errors.New("access denied")
		rep := Doctor(context.Background(), DoctorConfig{Env: env, Registry: reg})
		if rep.Usable || !hasFinding(rep, Problem, "access denied") {
			t.Errorf("Usable %v\n%s", rep.Usable, reportText(rep))
		}
	})
	t.Run("manifest not registered", func(t *testing.T) {
		if runtime.GOOS != "windows" {
			t.Skip("needs real Windows paths")
		}
		env := Env{GOOS: "windows", LocalAppData: wine.TempDir(t), ProgramData: wine.TempDir(t)}
		loc, err := env.Location(User)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, loc.Path, goodManifest, 0o644)
		rep := Doctor(context.Background(), DoctorConfig{Env: env, Registry: newFakeRegistry()})
		if rep.Usable || !hasFinding(rep, Problem, "exists but HKCU\\"+RegistryPath+" does not point to it") {
			t.Errorf("Usable %v\n%s", rep.Usable, reportText(rep))
		}
	})
	t.Run("Thunderbird key", func(t *testing.T) {
		reg := newFakeRegistry()
		reg.vals[RegistryKey{Root: "HKCU", Path: `Software\Thunderbird\NativeMessagingHosts\credsync`}] = `C:\x.json`
		rep := Doctor(context.Background(), DoctorConfig{Env: env, Registry: reg})
		if !hasFinding(rep, Warning, "Thunderbird does not read it") {
			t.Errorf("no warning about the Thunderbird key\n%s", reportText(rep))
		}
	})
}

func TestChoose(t *testing.T) {
	absent := candidate{absent: &Finding{}}
	present := candidate{}
	tests := []struct {
		goos           string
		cands          []candidate
		usable         []bool
		active, broken int
	}{
		{"linux", nil, nil, -1, -1},
		{"linux", []candidate{absent, absent}, []bool{false, false}, -1, -1},
		{"linux", []candidate{present, present}, []bool{true, true}, 0, -1},
		{"linux", []candidate{present, present}, []bool{false, true}, 1, 0},
		{"linux", []candidate{absent, present}, []bool{false, true}, 1, -1},
		{"linux", []candidate{present, present}, []bool{false, false}, -1, 0},
		// Windows: the first registration found is used or nothing is.
		{"windows", []candidate{present, present}, []bool{false, true}, -1, 0},
		{"windows", []candidate{absent, present, present}, []bool{false, false, true}, -1, 1},
		{"windows", []candidate{absent, present}, []bool{false, true}, 1, -1},
	}
	for _, tt := range tests {
		a, b := choose(tt.goos, tt.cands, tt.usable)
		if a != tt.active || b != tt.broken {
			t.Errorf("choose(%s, usable %v) = %d, %d; want %d, %d", tt.goos, tt.usable, a, b, tt.active, tt.broken)
		}
	}
}

func TestFindingString(t *testing.T) {
	f := Finding{Level: Problem, Text: "no usable registration", Fix: `run "credsync install"`}
	if got, want := f.String(), `problem: no usable registration → run "credsync install"`; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	f = Finding{Level: OK, Text: "user manifest /x"}
	if got, want := f.String(), "ok: user manifest /x"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	for l, want := range map[Level]string{OK: "ok", Note: "note", Warning: "warning", Problem: "problem", Level(9): "level(9)"} {
		if l.String() != want {
			t.Errorf("Level(%d).String() = %q, want %q", int(l), l.String(), want)
		}
	}
}

func TestCommandLine(t *testing.T) {
	if got, want := commandLine("linux", "/opt/my app/credsync", "/h/credsync.json", "credsync@credsync.org"),
		`'/opt/my app/credsync' /h/credsync.json credsync@credsync.org`; got != want {
		t.Errorf("commandLine(linux) = %q, want %q", got, want)
	}
	if got, want := commandLine("windows", `C:\Program Files\credsync\credsync.exe`, `C:\x.json`),
		`"C:\Program Files\credsync\credsync.exe" C:\x.json`; got != want {
		t.Errorf("commandLine(windows) = %q, want %q", got, want)
	}
}
