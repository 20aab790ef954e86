package main

// The install, uninstall and doctor subcommands: register credsync as
// Thunderbird's native-messaging host, remove that registration, and check
// it. All of the logic is in internal/nmhost; this file is flags and output.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/credsync/credsync/internal/nmhost"
)

// nmHiddenFlags are left out of -h: they exist for the end-to-end suite and
// for packaging.
var nmHiddenFlags = map[string]bool{"home": true, "root": true}

// nmFlagSet returns a FlagSet for a subcommand whose -h prints synopsis,
// about and the non-hidden flags to stderr.
func nmFlagSet(name, synopsis, about string, stderr io.Writer) *flag.FlagSet {
	fset := flag.NewFlagSet("credsync "+name, flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.Usage = func() {
		fmt.Fprintf(stderr, "usage: credsync %s %s\n\n%s\n\n", name, synopsis, about)
		visible := flag.NewFlagSet("", flag.ContinueOnError)
		visible.SetOutput(stderr)
		fset.VisitAll(func(f *flag.Flag) {
			if !nmHiddenFlags[f.Name] {
				visible.Var(f.Value, f.Name, f.Usage)
			}
		})
		visible.PrintDefaults()
	}
	return fset
}

// nmCommonFlags adds the hidden --home and --root flags.
func nmCommonFlags(fset *flag.FlagSet) (home, root *string) {
	home = fset.String("home", "", "testing/packaging: use `DIR` as the home directory (default: the current user's)")
	root = fset.String("root", "", "testing/packaging: prefix system-wide paths with `DIR`, like DESTDIR (not on Windows)")
	return home, root
}

// nmParse parses args; ok false means return code.
func nmParse(fset *flag.FlagSet, args []string) (code int, ok bool) {
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if fset.NArg() > 0 {
		fmt.Fprintf(fset.Output(), "%s: unexpected argument %q\n", fset.Name(), fset.Arg(0))
		fset.Usage()
		return 2, false
	}
	return 0, true
}

// nmEnv builds the Env for the running machine, honouring --home/--root.
func nmEnv(home, root string) (nmhost.Env, error) {
	var env nmhost.Env
	if home == "" {
		e, err := nmhost.HostEnv()
		if err != nil {
			// Only the user scope needs a home directory; Location
			// reports its absence there.
			e = nmhost.Env{GOOS: runtime.GOOS}
			if e.GOOS == "windows" {
				e.ProgramData = os.Getenv("ProgramData")
			}
		}
		env = e
	} else {
		abs, err := filepath.Abs(home)
		if err != nil {
			return nmhost.Env{}, err
		}
		// LocalAppData stays empty: it follows --home.
		env = nmhost.Env{GOOS: runtime.GOOS, Home: abs}
		if env.GOOS == "windows" {
			env.ProgramData = os.Getenv("ProgramData")
		}
	}
	if root != "" {
		abs, err := filepath.Abs(root)
		if err != nil {
			return nmhost.Env{}, err
		}
		env.Root = abs
	}
	return env, nil
}

// nmSelf is the running binary, symlinks resolved.
func nmSelf() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(p)
}

// nmIDList is a repeatable string flag.
type nmIDList []string

func (l *nmIDList) String() string { return strings.Join(*l, ",") }

func (l *nmIDList) Set(s string) error {
	if s == "" {
		return errors.New("empty extension ID")
	}
	*l = append(*l, s)
	return nil
}

func nmScope(system bool) nmhost.Scope {
	if system {
		return nmhost.System
	}
	return nmhost.User
}

// nmWriteFailure explains a failed install/uninstall on stderr.
func nmWriteFailure(stderr io.Writer, verb string, scope nmhost.Scope, err error) {
	if errors.Is(err, fs.ErrPermission) {
		var fix string
		switch {
		case scope == nmhost.User:
			fix = "check the permissions of the directories named above"
		case runtime.GOOS == "windows":
			fix = fmt.Sprintf(`run "credsync %s --system" from an administrator prompt`, verb)
		default:
			fix = fmt.Sprintf(`run "sudo credsync %s --system"`, verb)
		}
		fmt.Fprintf(stderr, "problem: cannot %s the %s registration: %v → %s\n", verb, scope, err, fix)
		return
	}
	fmt.Fprintf(stderr, "problem: cannot %s the %s registration: %v\n", verb, scope, err)
}

func runInstall(args []string, stdout, stderr io.Writer) int {
	fset := nmFlagSet("install", "[--system] [--print] [--binary PATH] [--extension-id ID]...",
		"Registers credsync as Thunderbird's native-messaging host \""+nmhost.HostName+"\": writes the host manifest\n"+
			"(and on Windows the registry value) for the current user, or with --system for all users.\n"+
			"Running it again is harmless; run it again after moving the credsync binary.", stderr)
	system := fset.Bool("system", false, "register for all users of this machine (needs root, or an administrator on Windows)")
	printOnly := fset.Bool("print", false, "print the manifest to stdout instead of writing anything")
	binary := fset.String("binary", "", "absolute `PATH` of the host for the manifest, for packaging (default: this binary)")
	var ids nmIDList
	fset.Var(&ids, "extension-id", "allow the extension `ID` instead of "+nmhost.ExtensionID+" (repeat for several)")
	home, root := nmCommonFlags(fset)
	if code, ok := nmParse(fset, args); !ok {
		return code
	}

	bin := *binary
	if bin == "" {
		self, err := nmSelf()
		if err != nil {
			fmt.Fprintf(stderr, "problem: cannot find the credsync binary: %v → pass --binary PATH\n", err)
			return 1
		}
		bin = self
	} else if !nmhost.IsAbs(runtime.GOOS, bin) {
		fmt.Fprintf(stderr, "problem: --binary %q is not an absolute path\n", bin)
		return 2
	}
	m := nmhost.NewManifest(bin, ids...)

	if *printOnly {
		data, err := m.JSON()
		if err == nil {
			err = m.Validate(runtime.GOOS)
		}
		if err != nil {
			fmt.Fprintf(stderr, "problem: %v\n", err)
			return 1
		}
		stdout.Write(data)
		return 0
	}

	env, err := nmEnv(*home, *root)
	if err != nil {
		fmt.Fprintf(stderr, "problem: %v\n", err)
		return 1
	}
	scope := nmScope(*system)
	loc, err := env.Location(scope)
	if err != nil {
		fmt.Fprintf(stderr, "problem: cannot tell where the %s manifest belongs: %v\n", scope, err)
		return 1
	}
	if *binary != "" {
		if _, err := os.Stat(bin); err != nil {
			fmt.Fprintf(stdout, "note: %s does not exist (yet); the manifest points to it anyway\n", bin)
		}
	}

	res, err := nmhost.Install(loc, m, nmhost.SystemRegistry())
	for _, p := range res.Written {
		fmt.Fprintf(stdout, "ok: wrote %s manifest %s\n", scope, p)
	}
	for _, p := range res.Unchanged {
		fmt.Fprintf(stdout, "ok: %s manifest %s is already up to date\n", scope, p)
	}
	if err != nil {
		nmWriteFailure(stderr, "install", scope, err)
		return 1
	}
	switch {
	case res.RegistrySet:
		fmt.Fprintf(stdout, "ok: set %s to %s\n", loc.Registry, loc.Path)
	case res.RegistryUnchanged:
		fmt.Fprintf(stdout, "ok: %s already points to %s\n", loc.Registry, loc.Path)
	}
	fmt.Fprintf(stdout, "ok: Thunderbird will start %s for the extension %s\n", bin, strings.Join(m.AllowedExtensions, ", "))

	if scope == nmhost.System {
		nmShadowNote(stdout, env)
	}
	fmt.Fprintln(stdout, `Run "credsync doctor" to check the registration.`)
	return 0
}

// nmShadowNote says when the current user's own registration takes
// precedence over the system one just installed.
func nmShadowNote(stdout io.Writer, env nmhost.Env) {
	u, err := env.Location(nmhost.User)
	if err != nil {
		return
	}
	if !u.Registry.IsZero() {
		if _, err := nmhost.SystemRegistry().ReadDefault(u.Registry); err == nil {
			fmt.Fprintf(stdout, "note: your own registration %s takes precedence for you; \"credsync uninstall\" removes it\n", u.Registry)
		}
		return
	}
	if _, err := os.Stat(u.Path); err == nil {
		fmt.Fprintf(stdout, "note: your user manifest %s takes precedence for you while it is valid; \"credsync uninstall\" removes it\n", u.Path)
	}
}

func runUninstall(args []string, stdout, stderr io.Writer) int {
	fset := nmFlagSet("uninstall", "[--system]",
		"Removes what \"credsync install\" wrote for the current user, or with --system for all users.\n"+
			"Not being installed is not an error.", stderr)
	system := fset.Bool("system", false, "remove the registration for all users (needs root, or an administrator on Windows)")
	home, root := nmCommonFlags(fset)
	if code, ok := nmParse(fset, args); !ok {
		return code
	}
	env, err := nmEnv(*home, *root)
	if err != nil {
		fmt.Fprintf(stderr, "problem: %v\n", err)
		return 1
	}
	scope := nmScope(*system)
	loc, err := env.Location(scope)
	if err != nil {
		fmt.Fprintf(stderr, "problem: cannot tell where the %s manifest belongs: %v\n", scope, err)
		return 1
	}
	res, err := nmhost.Uninstall(loc, nmhost.SystemRegistry())
	if res.RegistryRemoved {
		fmt.Fprintf(stdout, "ok: removed %s\n", loc.Registry)
	}
	for _, p := range res.Removed {
		fmt.Fprintf(stdout, "ok: removed %s manifest %s\n", scope, p)
	}
	if err != nil {
		nmWriteFailure(stderr, "uninstall", scope, err)
		return 1
	}
	if res.Nothing() {
		where := loc.Path
		if !loc.Registry.IsZero() {
			where = loc.Registry.String()
		}
		fmt.Fprintf(stdout, "ok: credsync was not installed for the %s scope (no %s); nothing to remove\n", scope, where)
	}
	return 0
}

func runDoctor(args []string, stdout, stderr io.Writer) int {
	fset := nmFlagSet("doctor", "[--extension-id ID]",
		"Checks, for the current user and for all users, that Thunderbird can find and start credsync\n"+
			"as its native-messaging host, the way Thunderbird does it. Exit status 0 when a usable\n"+
			"registration exists, 1 otherwise.", stderr)
	id := fset.String("extension-id", nmhost.ExtensionID, "the extension `ID` that must be allowed")
	home, root := nmCommonFlags(fset)
	if code, ok := nmParse(fset, args); !ok {
		return code
	}
	env, err := nmEnv(*home, *root)
	if err != nil {
		fmt.Fprintf(stderr, "problem: %v\n", err)
		return 1
	}
	self, _ := nmSelf() // without it the "is it this binary" line is left out
	rep := nmhost.Doctor(context.Background(), nmhost.DoctorConfig{
		Env:         env,
		ExtensionID: *id,
		Self:        self,
		Registry:    nmhost.SystemRegistry(),
		Hello:       nmhost.RunHello,
	})
	for _, f := range rep.Findings {
		fmt.Fprintln(stdout, f)
	}
	if !rep.Usable {
		return 1
	}
	return 0
}
