package nmhost

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
)

// Level grades a Finding.
type Level int

const (
	OK      Level = iota // as it should be
	Note                 // information; nothing to do
	Warning              // works, but probably not as intended
	Problem              // this registration cannot work
)

// String returns "ok", "note", "warning" or "problem".
func (l Level) String() string {
	switch l {
	case OK:
		return "ok"
	case Note:
		return "note"
	case Warning:
		return "warning"
	case Problem:
		return "problem"
	}
	return "level(" + fmt.Sprint(int(l)) + ")"
}

// Finding is one line of a doctor report.
type Finding struct {
	Level Level
	// Text says what was found, in words a user can act on.
	Text string
	// Fix says what to do about it; empty when there is nothing to do.
	Fix string
}

// String formats f as `level: text` or `level: text → fix`.
func (f Finding) String() string {
	s := f.Level.String() + ": " + f.Text
	if f.Fix != "" {
		s += " → " + f.Fix
	}
	return s
}

// Report is the result of Doctor.
type Report struct {
	Findings []Finding
	// Usable is true when Thunderbird will find a manifest that lets the
	// extension start a host which answers hello (when checked).
	Usable bool
	// Active is the path of the manifest Thunderbird will use; empty when
	// none is usable.
	Active string
}

// Problems counts the findings of level Problem.
func (r Report) Problems() int {
	n := 0
	for _, f := range r.Findings {
		if f.Level == Problem {
			n++
		}
	}
	return n
}

// DoctorConfig is what Doctor inspects.
type DoctorConfig struct {
	// Env is the machine; its GOOS selects the layout.
	Env Env
	// ExtensionID is the extension that must be allowed; empty means
	// ExtensionID.
	ExtensionID string
	// Self is the running credsync binary; when set, Doctor says whether
	// a manifest points at it.
	Self string
	// Registry is read on Windows. Nil there means the registrations
	// cannot be checked.
	Registry Registry
	// Hello, when set, is used to start each otherwise sound registration's
	// host and ask it hello (RunHello in production).
	Hello HelloFunc
}

// candidate is a manifest Thunderbird may use, in its search order.
type candidate struct {
	scope Scope
	label string // "user manifest", "system manifest", …
	path  string
	via   RegistryKey // the registry value naming path (Windows)
	// absent, when set, means there is no such manifest; it is the
	// finding that says so.
	absent *Finding
}

// Doctor checks both scopes the way Thunderbird looks them up and returns
// what it found. It reads files and, on Windows, cfg.Registry, and runs
// cfg.Hello; it changes nothing.
func Doctor(ctx context.Context, cfg DoctorConfig) Report {
	d := &doctor{cfg: cfg, id: cfg.ExtensionID}
	if d.id == "" {
		d.id = ExtensionID
	}
	return d.run(ctx)
}

type doctor struct {
	cfg      DoctorConfig
	id       string
	findings []Finding
}

func (d *doctor) add(l Level, fix, format string, args ...any) {
	d.findings = append(d.findings, Finding{Level: l, Text: fmt.Sprintf(format, args...), Fix: fix})
}

func (d *doctor) goos() string { return d.cfg.Env.GOOS }

// installFix is the command that (re)writes the registration for scope.
func (d *doctor) installFix(scope Scope) string {
	switch {
	case scope == User:
		return `run "credsync install"`
	case d.goos() == "windows":
		return `run "credsync install --system" from an administrator prompt`
	}
	return `run "sudo credsync install --system"`
}

func (d *doctor) run(ctx context.Context) Report {
	var locs []Location
	for _, scope := range []Scope{User, System} {
		loc, err := d.cfg.Env.Location(scope)
		if err != nil {
			d.add(Problem, "", "cannot tell where the %s manifest belongs: %v", scope, err)
			continue
		}
		locs = append(locs, loc)
	}

	var cands []candidate
	if d.goos() == "windows" {
		cands = d.windowsCandidates(locs)
	} else {
		cands = d.unixCandidates(locs)
	}

	usable := make([]bool, len(cands))
	for i, c := range cands {
		if c.absent != nil {
			d.findings = append(d.findings, *c.absent)
			continue
		}
		usable[i] = d.check(ctx, c)
	}
	active, firstBroken := choose(d.goos(), cands, usable)

	d.misplaced()

	rep := Report{}
	switch {
	case active >= 0:
		a := cands[active]
		if firstBroken >= 0 {
			b := cands[firstBroken]
			d.add(Warning, d.installFix(b.scope), "Thunderbird skips the broken %s %s and falls back to the %s", b.label, b.path, a.label)
		}
		d.add(OK, "", "Thunderbird will use the %s %s", a.label, a.path)
		rep.Usable, rep.Active = true, a.path
	case firstBroken >= 0 && d.goos() == "windows":
		b := cands[firstBroken]
		d.add(Problem, d.installFix(b.scope), "Thunderbird uses only the first registration it finds, %s, and that one is broken", b.via)
	default:
		d.add(Problem, `run "credsync install"`, "Thunderbird cannot start credsync: no usable registration")
	}
	rep.Findings = d.findings
	return rep
}

// choose returns the candidate Thunderbird uses (-1 if none) and the first
// broken one it met before (-1 if none). On Windows it takes the first
// registry value found, usable or not; elsewhere the first usable manifest.
func choose(goos string, cands []candidate, usable []bool) (active, firstBroken int) {
	active, firstBroken = -1, -1
	for i, c := range cands {
		if c.absent != nil {
			continue
		}
		if usable[i] {
			return i, firstBroken
		}
		if firstBroken < 0 {
			firstBroken = i
		}
		if goos == "windows" {
			break
		}
	}
	return active, firstBroken
}

func (d *doctor) unixCandidates(locs []Location) []candidate {
	var cands []candidate
	for _, loc := range locs {
		label := loc.Scope.String() + " manifest"
		c := candidate{scope: loc.Scope, label: label, path: loc.Path}
		if !exists(loc.Path) {
			c.absent = &Finding{Level: Note, Text: fmt.Sprintf("no %s at %s", label, loc.Path)}
		}
		cands = append(cands, c)
		for _, mi := range loc.Mirrors {
			if exists(mi.Path) {
				cands = append(cands, candidate{scope: loc.Scope, label: label + " (lib64 builds)", path: mi.Path})
			}
		}
	}
	return cands
}

func (d *doctor) windowsCandidates(locs []Location) []candidate {
	if d.cfg.Registry == nil {
		d.add(Problem, "", "cannot read the Windows registry, so the registrations cannot be checked")
		return nil
	}
	var cands []candidate
	for _, loc := range locs {
		// Thunderbird's order: HKCU (64-bit view), HKLM 32-bit view, HKLM
		// 64-bit view (NativeManifests.sys.mjs _winLookup).
		keys := []RegistryKey{loc.Registry}
		if loc.Scope == System {
			k32 := loc.Registry
			k32.View32 = true
			keys = []RegistryKey{k32, loc.Registry}
		}
		label := loc.Scope.String() + " manifest"
		var found []candidate
		var readErr *Finding
		for _, k := range keys {
			v, err := d.cfg.Registry.ReadDefault(k)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				continue
			case err != nil:
				readErr = &Finding{Level: Problem, Fix: d.installFix(loc.Scope), Text: fmt.Sprintf("cannot read registry value %s: %v", k, err)}
				continue
			}
			p := strings.ReplaceAll(v, "/", `\`) // as Thunderbird does
			found = append(found, candidate{scope: loc.Scope, label: label, path: p, via: k})
		}
		switch {
		case len(found) > 0:
			cands = append(cands, found...)
		case readErr != nil:
			cands = append(cands, candidate{absent: readErr})
		case exists(loc.Path):
			cands = append(cands, candidate{absent: &Finding{Level: Problem, Fix: d.installFix(loc.Scope),
				Text: fmt.Sprintf("%s %s exists but %s does not point to it", label, loc.Path, loc.Registry)}})
		default:
			cands = append(cands, candidate{absent: &Finding{Level: Note,
				Text: fmt.Sprintf("no %s registration (%s)", loc.Scope, loc.Registry)}})
		}
	}
	return cands
}

// check inspects one manifest and reports whether Thunderbird can use it.
func (d *doctor) check(ctx context.Context, c candidate) bool {
	goos := d.goos()
	fix := d.installFix(c.scope)
	where := c.label + " " + c.path
	if !c.via.IsZero() {
		where += " (from " + c.via.String() + ")"
	}

	if goos == "windows" && !IsAbs(goos, c.path) {
		d.add(Problem, fix, "%s: the registry value is not an absolute path", where)
		return false
	}
	m, err := ReadManifest(c.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		d.add(Problem, fix, "%s does not exist", where)
		return false
	case errors.Is(err, fs.ErrPermission):
		d.add(Problem, "make it readable: chmod 644 "+c.path, "%s cannot be read: permission denied", where)
		return false
	case err != nil:
		d.add(Problem, fix+" to rewrite it", "%s is not a valid manifest: %v", where, invalidReason(err))
		return false
	}
	d.add(OK, "", "%s", where)
	ok := true

	if c.scope == System && goos != "windows" {
		if fi, err := os.Stat(c.path); err == nil && fi.Mode().Perm()&0o004 == 0 {
			d.add(Problem, "chmod 644 "+c.path, "%s is not readable by other users, so their Thunderbird cannot read it", c.label)
			ok = false
		}
	}
	if m.Name != HostName {
		d.add(Problem, fix, "its name is %q, not %q", m.Name, HostName)
		ok = false
	}
	if m.Type != "stdio" {
		d.add(Problem, fix, "its type is %q, not \"stdio\"", m.Type)
		ok = false
	}
	if ok {
		d.add(OK, "", "it parses, with name %q and type %q", m.Name, m.Type)
	}
	if m.Allows(d.id) {
		d.add(OK, "", "it allows the extension %s", d.id)
	} else {
		d.add(Problem, fix, "it does not allow the extension %s (it allows: %s)", d.id, strings.Join(quoteAll(m.AllowedExtensions), ", "))
		ok = false
	}

	bin := m.Path
	switch {
	case bin == "":
		d.add(Problem, fix, "its path is empty")
		return false
	case !IsAbs(goos, bin) && goos != "windows":
		d.add(Problem, fix, "its path %q is not absolute; Thunderbird requires an absolute path", bin)
		return false
	case !IsAbs(goos, bin):
		bin = winJoin(dirOf(goos, c.path), bin) // Windows: relative to the manifest
		d.add(Note, "", "its path is relative; Thunderbird resolves it to %s", bin)
	}
	fi, err := os.Stat(bin)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		d.add(Problem, fix+" with the credsync you want Thunderbird to start", "its host program %s does not exist", bin)
		return false
	case err != nil:
		d.add(Problem, fix, "its host program %s cannot be inspected: %v", bin, err)
		return false
	case !fi.Mode().IsRegular():
		d.add(Problem, fix, "its host program %s is not a regular file", bin)
		return false
	case goos != "windows" && fi.Mode().Perm()&0o111 == 0:
		d.add(Problem, "chmod 755 "+bin, "its host program %s is not executable", bin)
		return false
	}
	d.add(OK, "", "its host program %s exists and is executable", bin)
	if d.cfg.Self != "" {
		if self, err := os.Stat(d.cfg.Self); err == nil {
			if os.SameFile(fi, self) {
				d.add(OK, "", "it is this credsync")
			} else {
				d.add(Warning, fix+" to use this one instead", "it is not this credsync (%s); Thunderbird will start %s", d.cfg.Self, bin)
			}
		}
	}
	if !ok {
		return false
	}

	if d.cfg.Hello == nil {
		d.add(Note, "", "did not start the host (hello check skipped)")
		return true
	}
	r, err := d.cfg.Hello(ctx, bin, c.path, d.id)
	if err != nil {
		d.add(Problem, "run it by hand to see why: "+commandLine(goos, bin, c.path, d.id),
			"the host did not answer hello: %v", err)
		return false
	}
	d.add(OK, "", "the host answers hello (%s)", describeHello(r))
	return true
}

// misplaced warns about credsync manifests where Thunderbird does not look,
// and about sandboxed Thunderbird packages.
func (d *doctor) misplaced() {
	for _, p := range d.cfg.Env.IgnoredPaths() {
		if exists(p) {
			d.add(Warning, `delete it ("credsync install" writes the manifest where Thunderbird looks)`,
				"%s is a credsync manifest in a directory Thunderbird does not search", p)
		}
	}
	if d.goos() == "windows" && d.cfg.Registry != nil {
		for _, root := range []string{"HKCU", "HKLM"} {
			k := RegistryKey{Root: root, Path: `Software\Thunderbird\NativeMessagingHosts\` + HostName}
			if _, err := d.cfg.Registry.ReadDefault(k); err == nil {
				d.add(Warning, "delete that key; Thunderbird reads "+root+`\`+RegistryPath,
					"%s exists but Thunderbird does not read it", k)
			}
		}
	}
	if d.goos() == "linux" && d.cfg.Env.Home != "" {
		for _, s := range []struct{ dir, what string }{
			{".var/app/org.mozilla.Thunderbird", "Flatpak"},
			{"snap/thunderbird", "Snap"},
		} {
			if exists(path.Join(d.cfg.Env.Home, s.dir)) {
				d.add(Note, "if the extension reports \"No such native application credsync\", set widget.use-xdg-desktop-portal.native-messaging to 1 in that Thunderbird's Config Editor",
					"a %s Thunderbird is installed (%s); it is sandboxed and finds native hosts only through the XDG desktop portal",
					s.what, path.Join(d.cfg.Env.Home, s.dir))
			}
		}
	}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	if len(out) == 0 {
		out = []string{"none"}
	}
	return out
}

func describeHello(r HelloReply) string {
	var parts []string
	if r.Name != "" {
		parts = append(parts, r.Name)
	}
	if r.Version != "" {
		parts = append(parts, r.Version)
	}
	s := strings.Join(parts, " ")
	if r.Protocol != 0 {
		if s != "" {
			s += ", "
		}
		s += fmt.Sprintf("protocol %d", r.Protocol)
	}
	if s == "" {
		s = "status ok"
	}
	return s
}

// commandLine formats args as a command to type into a shell of goos.
func commandLine(goos string, args ...string) string {
	out := make([]string, len(args))
	for i, a := range args {
		switch {
		case goos == "windows" && (a == "" || strings.ContainsAny(a, " \t&()^;,")):
			out[i] = `"` + a + `"`
		case goos != "windows" && (a == "" || strings.ContainsAny(a, " \t\n'\"\\$`!*?[]{}()<>|&;#~")):
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		default:
			out[i] = a
		}
	}
	return strings.Join(out, " ")
}
