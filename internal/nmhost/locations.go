package nmhost

import (
	"errors"
	"fmt"
	"os"
	"path"
	"runtime"
	"strings"
)

// ErrUnsupportedOS is returned for an OS Thunderbird has no native
// messaging on (as far as credsync knows).
var ErrUnsupportedOS = errors.New("native messaging is not supported on this OS")

// Env describes the machine a registration is for. Paths are built for
// GOOS, not for the OS the code runs on, so every OS's layout can be
// computed (and tested) anywhere.
type Env struct {
	// GOOS is the target OS, as in runtime.GOOS.
	GOOS string
	// Home is the user's home directory; required for the User scope.
	Home string
	// Root, if set, is prepended to system-wide paths, like DESTDIR, for
	// staged packaging and tests. Not supported on Windows (the system
	// registration lives in the registry).
	Root string
	// LocalAppData is %LOCALAPPDATA% (Windows, User scope); empty means
	// Home\AppData\Local.
	LocalAppData string
	// ProgramData is %ProgramData% (Windows, System scope); empty means
	// C:\ProgramData.
	ProgramData string
}

// HostEnv returns the Env of the running machine: runtime.GOOS, the
// current user's home directory and, on Windows, %LOCALAPPDATA% and
// %ProgramData%.
func HostEnv() (Env, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return Env{}, err
	}
	e := Env{GOOS: runtime.GOOS, Home: home}
	if e.GOOS == "windows" {
		e.LocalAppData = os.Getenv("LOCALAPPDATA")
		e.ProgramData = os.Getenv("ProgramData")
	}
	return e, nil
}

// RegistryKey names a registry key. Root is "HKCU" or "HKLM".
type RegistryKey struct {
	Root string
	Path string
	// View32 selects the 32-bit registry view (WOW6432Node) when reading;
	// otherwise the 64-bit view is read. Writes use the process's view.
	View32 bool
}

// IsZero reports whether k names no key.
func (k RegistryKey) IsZero() bool { return k.Root == "" }

// String returns e.g. `HKCU\Software\Mozilla\NativeMessagingHosts\credsync`,
// with " (32-bit view)" for View32.
func (k RegistryKey) String() string {
	s := k.Root + `\` + k.Path
	if k.View32 {
		s += " (32-bit view)"
	}
	return s
}

// RegistryPath is the key, under HKCU or HKLM, whose default value
// Thunderbird reads on Windows: the full path of the manifest file.
const RegistryPath = `Software\Mozilla\NativeMessagingHosts\` + HostName

// Mirror is a second place to write the manifest, for Thunderbird builds
// that search it instead of Location.Path.
type Mirror struct {
	// Path is the manifest path some builds search.
	Path string
	// IfExists: Install writes Path only when this directory exists.
	IfExists string
	// Why says which builds search Path.
	Why string
}

// Location is where a registration lives for one OS and scope.
type Location struct {
	GOOS  string
	Scope Scope
	// Path is the manifest file.
	Path string
	// Registry is, on Windows, the key whose default value must be Path
	// (zero elsewhere).
	Registry RegistryKey
	// OwnDir is a directory that holds only credsync's manifest (Windows);
	// Install creates it, Uninstall removes it when empty.
	OwnDir string
	// Mirrors are other paths some Thunderbird builds search instead of
	// Path (Linux system scope: /usr/lib64/mozilla on lib64 distributions).
	Mirrors []Mirror
}

// unixLayout is where Gecko's XREUserNativeManifests (relative to the home
// directory) and XRESysNativeManifests point, with the manifest
// sub-directory already appended. Sources: nsXREDirProvider.cpp,
// NativeManifests.sys.mjs; see /work/shared/notes/thunderbird.md §1.
type unixLayout struct {
	user   string // relative to Home
	system string // absolute
	// lib64 is the system directory of builds with HAVE_USR_LIB64_DIR.
	lib64 string
}

var unixLayouts = map[string]unixLayout{
	"linux": {
		user:   ".mozilla/native-messaging-hosts",
		system: "/usr/lib/mozilla/native-messaging-hosts",
		lib64:  "/usr/lib64/mozilla/native-messaging-hosts",
	},
	// Thunderbird (MOZ_THUNDERBIRD) uses ~/Library, not ~/Library/Application
	// Support like Firefox, for the user directory.
	"darwin": {
		user:   "Library/Mozilla/NativeMessagingHosts",
		system: "/Library/Application Support/Mozilla/NativeMessagingHosts",
	},
	"freebsd": {
		user:   ".mozilla/native-messaging-hosts",
		system: "/usr/local/lib/mozilla/native-messaging-hosts",
	},
	"openbsd": {
		user:   ".mozilla/native-messaging-hosts",
		system: "/usr/local/lib/mozilla/native-messaging-hosts",
	},
}

// Windows: Thunderbird finds the manifest through the registry, so the
// file may live anywhere. credsync keeps it out of the binary's directory
// (which a user cannot write for a per-machine install, and which an
// uninstaller may wipe) in a directory of its own:
//
//	User:   %LOCALAPPDATA%\credsync\credsync.json   + HKCU\Software\Mozilla\NativeMessagingHosts\credsync
//	System: %ProgramData%\credsync\credsync.json    + HKLM\Software\Mozilla\NativeMessagingHosts\credsync
const (
	winDirName            = "credsync"
	winDefaultProgramData = `C:\ProgramData`
)

// Locations returns where the manifest for scope lives on goos, for the
// user whose home directory is home. It is Env{GOOS: goos, Home: home}.Location(scope).
func Locations(goos string, scope Scope, home string) (Location, error) {
	return Env{GOOS: goos, Home: home}.Location(scope)
}

// Location returns where the manifest for scope lives in e.
func (e Env) Location(scope Scope) (Location, error) {
	if scope != User && scope != System {
		return Location{}, fmt.Errorf("unknown scope %v", scope)
	}
	loc := Location{GOOS: e.GOOS, Scope: scope}
	if e.GOOS == "windows" {
		if e.Root != "" {
			return Location{}, errors.New("a root directory is not supported on Windows: the registration lives in the registry")
		}
		var base string
		switch scope {
		case User:
			base = e.LocalAppData
			if base == "" {
				if e.Home == "" {
					return Location{}, errors.New("no home directory")
				}
				base = winJoin(e.Home, "AppData", "Local")
			}
			loc.Registry = RegistryKey{Root: "HKCU", Path: RegistryPath}
		case System:
			base = e.ProgramData
			if base == "" {
				base = winDefaultProgramData
			}
			loc.Registry = RegistryKey{Root: "HKLM", Path: RegistryPath}
		}
		if !IsAbs("windows", base) {
			return Location{}, fmt.Errorf("%s is not an absolute path", base)
		}
		loc.OwnDir = winJoin(base, winDirName)
		loc.Path = winJoin(loc.OwnDir, manifestFile)
		return loc, nil
	}
	l, ok := unixLayouts[e.GOOS]
	if !ok {
		return Location{}, fmt.Errorf("%w: %q", ErrUnsupportedOS, e.GOOS)
	}
	switch scope {
	case User:
		if e.Home == "" {
			return Location{}, errors.New("no home directory")
		}
		if !IsAbs(e.GOOS, e.Home) {
			return Location{}, fmt.Errorf("home directory %q is not an absolute path", e.Home)
		}
		loc.Path = path.Join(e.Home, l.user, manifestFile)
	case System:
		if e.Root != "" && !IsAbs(e.GOOS, e.Root) {
			return Location{}, fmt.Errorf("root directory %q is not an absolute path", e.Root)
		}
		loc.Path = path.Join(e.Root, l.system, manifestFile)
		if l.lib64 != "" {
			loc.Mirrors = []Mirror{{
				Path:     path.Join(e.Root, l.lib64, manifestFile),
				IfExists: path.Join(e.Root, "/usr/lib64/mozilla"),
				Why:      "Thunderbird builds for lib64 distributions (Fedora, openSUSE, …) search it instead",
			}}
		}
	}
	return loc, nil
}

// ignoredDirs are directories where users (and some guides) put manifests
// but that Thunderbird does not search, relative to Home (per-user) for
// each OS. Verified on TB 153 Linux for the first two.
var ignoredDirs = map[string][]string{
	"linux": {
		".thunderbird/native-messaging-hosts",
		".config/mozilla/native-messaging-hosts",
		".config/thunderbird/native-messaging-hosts",
	},
	"darwin": {
		"Library/Application Support/Mozilla/NativeMessagingHosts", // Firefox's
		"Library/Thunderbird/NativeMessagingHosts",
		"Library/Application Support/Thunderbird/NativeMessagingHosts",
	},
	"freebsd": {".thunderbird/native-messaging-hosts", ".config/mozilla/native-messaging-hosts"},
	"openbsd": {".thunderbird/native-messaging-hosts", ".config/mozilla/native-messaging-hosts"},
}

// IgnoredPaths returns manifest paths that Thunderbird on e.GOOS does NOT
// search although people put manifests there; a credsync manifest found
// there is a misplaced one.
func (e Env) IgnoredPaths() []string {
	if e.Home == "" {
		return nil
	}
	var out []string
	for _, d := range ignoredDirs[e.GOOS] {
		out = append(out, path.Join(e.Home, d, manifestFile))
	}
	return out
}

// IsAbs reports whether p is an absolute path on goos. On Windows that is
// a drive path (C:\ or C:/) or a UNC path (\\server\share).
func IsAbs(goos, p string) bool {
	if goos != "windows" {
		return strings.HasPrefix(p, "/")
	}
	if strings.HasPrefix(p, `\\`) || strings.HasPrefix(p, "//") {
		return len(p) > 2
	}
	return len(p) >= 3 && isLetter(p[0]) && p[1] == ':' && (p[2] == '\\' || p[2] == '/')
}

func isLetter(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }

// winJoin joins Windows path elements with backslashes.
func winJoin(elem ...string) string {
	var b strings.Builder
	for i, e := range elem {
		if i > 0 {
			e = strings.TrimLeft(e, `\/`)
			if b.Len() > 0 && !strings.HasSuffix(b.String(), `\`) {
				b.WriteByte('\\')
			}
		}
		b.WriteString(e)
	}
	return b.String()
}

// dirOf is filepath.Dir for goos.
func dirOf(goos, p string) string {
	if goos != "windows" {
		return path.Dir(p)
	}
	i := strings.LastIndexAny(p, `\/`)
	switch {
	case i < 0:
		return "."
	case i == 2 && p[1] == ':':
		return p[:3]
	}
	return p[:i]
}
