package nmhost

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestLocations(t *testing.T) {
	hkcu := RegistryKey{Root: "HKCU", Path: `Software\Mozilla\NativeMessagingHosts\credsync`}
	hklm := RegistryKey{Root: "HKLM", Path: `Software\Mozilla\NativeMessagingHosts\credsync`}
	tests := []struct {
		goos  string
		scope Scope
		home  string
		want  Location
	}{
		{"linux", User, "/home/u", Location{
			Path: "/home/u/.mozilla/native-messaging-hosts/credsync.json",
		}},
		{"linux", User, "/home/u/", Location{
			Path: "/home/u/.mozilla/native-messaging-hosts/credsync.json",
		}},
		{"linux", System, "/home/u", Location{
			Path: "/usr/lib/mozilla/native-messaging-hosts/credsync.json",
			Mirrors: []Mirror{{
				Path:     "/usr/lib64/mozilla/native-messaging-hosts/credsync.json",
				IfExists: "/usr/lib64/mozilla",
				Why:      "Thunderbird builds for lib64 distributions (Fedora, openSUSE, …) search it instead",
			}},
		}},
		{"linux", System, "", Location{ // no home needed
			Path: "/usr/lib/mozilla/native-messaging-hosts/credsync.json",
			Mirrors: []Mirror{{
				Path:     "/usr/lib64/mozilla/native-messaging-hosts/credsync.json",
				IfExists: "/usr/lib64/mozilla",
				Why:      "Thunderbird builds for lib64 distributions (Fedora, openSUSE, …) search it instead",
			}},
		}},
		// Thunderbird's macOS quirk: ~/Library/Mozilla, not ~/Library/Application Support/Mozilla.
		{"darwin", User, "/Users/u", Location{
			Path: "/Users/u/Library/Mozilla/NativeMessagingHosts/credsync.json",
		}},
		{"darwin", System, "/Users/u", Location{
			Path: "/Library/Application Support/Mozilla/NativeMessagingHosts/credsync.json",
		}},
		{"freebsd", User, "/home/u", Location{
			Path: "/home/u/.mozilla/native-messaging-hosts/credsync.json",
		}},
		{"freebsd", System, "/home/u", Location{
			Path: "/usr/local/lib/mozilla/native-messaging-hosts/credsync.json",
		}},
		{"openbsd", System, "/home/u", Location{
			Path: "/usr/local/lib/mozilla/native-messaging-hosts/credsync.json",
		}},
		{"windows", User, `C:\Users\u`, Location{
			Path:     `C:\Users\u\AppData\Local\credsync\credsync.json`,
			Registry: hkcu,
			OwnDir:   `C:\Users\u\AppData\Local\credsync`,
		}},
		{"windows", User, `C:\Users\u\`, Location{
			Path:     `C:\Users\u\AppData\Local\credsync\credsync.json`,
			Registry: hkcu,
			OwnDir:   `C:\Users\u\AppData\Local\credsync`,
		}},
		{"windows", System, `C:\Users\u`, Location{
			Path:     `C:\ProgramData\credsync\credsync.json`,
			Registry: hklm,
			OwnDir:   `C:\ProgramData\credsync`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.goos+"/"+tt.scope.String()+"/"+tt.home, func(t *testing.T) {
			got, err := Locations(tt.goos, tt.scope, tt.home)
			if err != nil {
				t.Fatalf("Locations() = %v", err)
			}
			tt.want.GOOS, tt.want.Scope = tt.goos, tt.scope
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Locations(%q, %v, %q) =\n%#v\nwant\n%#v", tt.goos, tt.scope, tt.home, got, tt.want)
			}
		})
	}
}

func TestEnvLocationOverrides(t *testing.T) {
	tests := []struct {
		name  string
		env   Env
		scope Scope
		want  string
		dir   string
	}{
		{"LOCALAPPDATA", Env{GOOS: "windows", Home: `C:\Users\u`, LocalAppData: `D:\Profiles\u\Local`}, User,
			`D:\Profiles\u\Local\credsync\credsync.json`, `D:\Profiles\u\Local\credsync`},
		{"LOCALAPPDATA without home", Env{GOOS: "windows", LocalAppData: `D:\Local`}, User,
			`D:\Local\credsync\credsync.json`, `D:\Local\credsync`},
		{"ProgramData", Env{GOOS: "windows", ProgramData: `D:\ProgramData`}, System,
			`D:\ProgramData\credsync\credsync.json`, `D:\ProgramData\credsync`},
		{"root linux system", Env{GOOS: "linux", Home: "/home/u", Root: "/tmp/stage"}, System,
			"/tmp/stage/usr/lib/mozilla/native-messaging-hosts/credsync.json", ""},
		{"root darwin system", Env{GOOS: "darwin", Root: "/tmp/stage"}, System,
			"/tmp/stage/Library/Application Support/Mozilla/NativeMessagingHosts/credsync.json", ""},
		{"root leaves user alone", Env{GOOS: "linux", Home: "/home/u", Root: "/tmp/stage"}, User,
			"/home/u/.mozilla/native-messaging-hosts/credsync.json", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.env.Location(tt.scope)
			if err != nil {
				t.Fatalf("Location() = %v", err)
			}
			if got.Path != tt.want || got.OwnDir != tt.dir {
				t.Errorf("Location() = %q in %q, want %q in %q", got.Path, got.OwnDir, tt.want, tt.dir)
			}
		})
	}
	loc, err := Env{GOOS: "linux", Root: "/tmp/stage"}.Location(System)
	if err != nil {
		t.Fatal(err)
	}
	if len(loc.Mirrors) != 1 || !strings.HasPrefix(loc.Mirrors[0].Path, "/tmp/stage/usr/lib64/") || loc.Mirrors[0].IfExists != "/tmp/stage/usr/lib64/mozilla" {
		t.Errorf("Location(System) with Root: mirrors %+v, want them under the root", loc.Mirrors)
	}
}

func TestLocationErrors(t *testing.T) {
	tests := []struct {
		name  string
		env   Env
		scope Scope
		want  string
	}{
		{"unsupported OS", Env{GOOS: "plan9", Home: "/usr/u"}, User, "not supported"},
		{"android", Env{GOOS: "android", Home: "/data"}, System, "not supported"},
		{"no home", Env{GOOS: "linux"}, User, "no home directory"},
		{"relative home", Env{GOOS: "linux", Home: "home/u"}, User, "not an absolute path"},
		{"windows home on linux", Env{GOOS: "linux", Home: `C:\Users\u`}, User, "not an absolute path"},
		{"windows no home", Env{GOOS: "windows"}, User, "no home directory"},
		{"windows relative LOCALAPPDATA", Env{GOOS: "windows", LocalAppData: `AppData`}, User, "not an absolute path"},
		{"windows root", Env{GOOS: "windows", Home: `C:\Users\u`, Root: `C:\stage`}, System, "not supported on Windows"},
		{"relative root", Env{GOOS: "linux", Root: "stage"}, System, "not an absolute path"},
		{"bad scope", Env{GOOS: "linux", Home: "/home/u"}, Scope(7), "unknown scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc, err := tt.env.Location(tt.scope)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Location() = %+v, %v; want an error containing %q", loc, err, tt.want)
			}
		})
	}
	if _, err := Locations("plan9", User, "/usr/u"); !errors.Is(err, ErrUnsupportedOS) {
		t.Errorf("Locations(plan9) = %v, want ErrUnsupportedOS", err)
	}
}

func TestIgnoredPaths(t *testing.T) {
	got := Env{GOOS: "linux", Home: "/home/u"}.IgnoredPaths()
	want := []string{
		"/home/u/.thunderbird/native-messaging-hosts/credsync.json",
		"/home/u/.config/mozilla/native-messaging-hosts/credsync.json",
		"/home/u/.config/thunderbird/native-messaging-hosts/credsync.json",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("IgnoredPaths(linux) = %q, want %q", got, want)
	}
	mac := Env{GOOS: "darwin", Home: "/Users/u"}.IgnoredPaths()
	if len(mac) == 0 || mac[0] != "/Users/u/Library/Application Support/Mozilla/NativeMessagingHosts/credsync.json" {
		t.Errorf("IgnoredPaths(darwin) = %q, want Firefox's ~/Library/Application Support/Mozilla first", mac)
	}
	// The searched user locations are never reported as ignored.
	for _, goos := range []string{"linux", "darwin", "freebsd", "openbsd"} {
		env := Env{GOOS: goos, Home: "/h"}
		loc, err := env.Location(User)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range env.IgnoredPaths() {
			if p == loc.Path {
				t.Errorf("IgnoredPaths(%s) contains the searched %s", goos, p)
			}
		}
	}
	if got := (Env{GOOS: "linux"}).IgnoredPaths(); got != nil {
		t.Errorf("IgnoredPaths() without home = %q, want nil", got)
	}
}

func TestIsAbs(t *testing.T) {
	tests := []struct {
		goos, p string
		want    bool
	}{
		{"linux", "/usr/bin/credsync", true},
		{"linux", "usr/bin/credsync", false},
		{"linux", "", false},
		{"linux", `C:\credsync.exe`, false},
		{"darwin", "/Applications/credsync", true},
		{"windows", `C:\credsync\credsync.exe`, true},
		{"windows", `c:/credsync/credsync.exe`, true},
		{"windows", `\\server\share\credsync.exe`, true},
		{"windows", `C:credsync.exe`, false},
		{"windows", `\credsync.exe`, false},
		{"windows", `credsync.exe`, false},
		{"windows", `/usr/bin/credsync`, false},
		{"windows", `1:\x`, false},
		{"windows", `\\`, false},
	}
	for _, tt := range tests {
		if got := IsAbs(tt.goos, tt.p); got != tt.want {
			t.Errorf("IsAbs(%q, %q) = %v, want %v", tt.goos, tt.p, got, tt.want)
		}
	}
}

func TestWindowsPathHelpers(t *testing.T) {
	if got, want := winJoin(`C:\a\`, `\b`, "c.json"), `C:\a\b\c.json`; got != want {
		t.Errorf("winJoin() = %q, want %q", got, want)
	}
	if got, want := winJoin(`C:\`, "x"), `C:\x`; got != want {
		t.Errorf("winJoin() = %q, want %q", got, want)
	}
	for in, want := range map[string]string{
		`C:\a\b.json`: `C:\a`,
		`C:\b.json`:   `C:\`,
		`C:/a/b.json`: `C:/a`,
		`b.json`:      `.`,
	} {
		if got := dirOf("windows", in); got != want {
			t.Errorf("dirOf(windows, %q) = %q, want %q", in, got, want)
		}
	}
	if got := dirOf("linux", "/a/b.json"); got != "/a" {
		t.Errorf("dirOf(linux) = %q, want /a", got)
	}
}

func TestRegistryKeyString(t *testing.T) {
	k := RegistryKey{Root: "HKLM", Path: RegistryPath}
	if got, want := k.String(), `HKLM\Software\Mozilla\NativeMessagingHosts\credsync`; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	k.View32 = true
	if got := k.String(); !strings.HasSuffix(got, "(32-bit view)") {
		t.Errorf("String() = %q, want the 32-bit view named", got)
	}
	if !(RegistryKey{}).IsZero() || k.IsZero() {
		t.Error("IsZero() wrong")
	}
}

func TestScopeString(t *testing.T) {
	if User.String() != "user" || System.String() != "system" || Scope(9).String() != "scope(9)" {
		t.Errorf("Scope strings: %q %q %q", User, System, Scope(9))
	}
}
