//go:build !windows

// Package tbharness launches a real, headless Thunderbird for tests and the
// demo and drives it over Marionette: fresh HOME and profile per run, own
// process group, log capture, clean quit, and chrome-script helpers to
// create accounts, import a CA, seed and read logins, handle the primary
// password, install add-ons, make Thunderbird log in, and detect password
// prompts. It supports Thunderbird 153 ESR (the Debian package) and 140 ESR
// (the Debian package unpacked with dpkg -x, see scripts/thunderbird).
//
// The recipe is /work/shared/notes/thunderbird-e2e.md.
package tbharness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/credsync/credsync/internal/testkit/marionette"
)

// System153 is where Debian installs Thunderbird (a wrapper script that execs
// the real binary, so the spawned PID is the main process).
const System153 = "/usr/bin/thunderbird"

// Binary is a Thunderbird executable and its version.
type Binary struct {
	Path    string // executable to run
	Version string // e.g. "153.7.0", from application.ini
	Major   int    // e.g. 153
}

func (b Binary) String() string { return "Thunderbird " + b.Version + " (" + b.Path + ")" }

// FindBinary resolves p, which may be an executable (such as
// /usr/bin/thunderbird), a Thunderbird installation directory (containing
// application.ini and thunderbird), or the root of an unpacked Debian
// package (containing usr/lib/thunderbird). An empty p means System153.
func FindBinary(p string) (Binary, error) {
	if p == "" {
		p = System153
	}
	fi, err := os.Stat(p)
	if err != nil {
		return Binary{}, fmt.Errorf("tbharness: %w", err)
	}
	var exe, appDir string
	if fi.IsDir() {
		for _, d := range []string{p, filepath.Join(p, "usr", "lib", "thunderbird")} {
			if isExec(filepath.Join(d, "thunderbird")) {
				appDir, exe = d, filepath.Join(d, "thunderbird")
				break
			}
		}
		if exe == "" {
			return Binary{}, fmt.Errorf("tbharness: no thunderbird executable in %s or %s/usr/lib/thunderbird", p, p)
		}
	} else {
		if !isExec(p) {
			return Binary{}, fmt.Errorf("tbharness: %s is not executable", p)
		}
		exe = p
		// /usr/bin/thunderbird is a wrapper; its application lives in /usr/lib/thunderbird.
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			real = p
		}
		appDir = filepath.Dir(real)
		if _, err := os.Stat(filepath.Join(appDir, "application.ini")); err != nil {
			appDir = "/usr/lib/thunderbird"
		}
	}
	ver, err := readAppVersion(filepath.Join(appDir, "application.ini"))
	if err != nil {
		return Binary{}, err
	}
	major, err := strconv.Atoi(strings.SplitN(ver, ".", 2)[0])
	if err != nil {
		return Binary{}, fmt.Errorf("tbharness: bad version %q in %s/application.ini", ver, appDir)
	}
	return Binary{Path: exe, Version: ver, Major: major}, nil
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// readAppVersion returns [App] Version from an application.ini.
func readAppVersion(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("tbharness: %w", err)
	}
	defer f.Close()
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && section == "App" && k == "Version" {
			return strings.TrimSpace(v), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("tbharness: reading %s: %w", path, err)
	}
	return "", fmt.Errorf("tbharness: no [App] Version in %s", path)
}

// Default140Dir is where scripts/thunderbird unpacks Thunderbird 140:
// $CREDSYNC_TB140, else ${XDG_CACHE_HOME:-$HOME/.cache}/credsync/thunderbird-140.
func Default140Dir() string {
	if d := os.Getenv("CREDSYNC_TB140"); d != "" {
		return d
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "credsync", "thunderbird-140")
}

// basePrefs is user.js from the recipe (thunderbird-e2e.md §4).
var basePrefs = map[string]any{
	"marionette.port":                                             0,
	"remote.prefs.recommended":                                    true,
	"mail.provider.suppress_dialog_on_startup":                    true,
	"mail.shell.checkDefaultClient":                               false,
	"mail.rights.override":                                        true,
	"mail.rights.version":                                         1,
	"mailnews.start_page.enabled":                                 false,
	"mail.inappnotifications.enabled":                             false,
	"mail.spotlight.firstRunDone":                                 true,
	"mail.winsearch.firstRunDone":                                 true,
	"calendar.timezone.useSystemTimezone":                         true,
	"app.update.disabledForTesting":                               true,
	"app.update.auto":                                             false,
	"app.update.checkInstallTime":                                 false,
	"datareporting.policy.dataSubmissionEnabled":                  false,
	"datareporting.policy.dataSubmissionPolicyBypassNotification": true,
	"datareporting.healthreport.uploadEnabled":                    false,
	"datareporting.usage.uploadEnabled":                           false,
	"toolkit.telemetry.enabled":                                   false,
	"toolkit.telemetry.unified":                                   false,
	"toolkit.telemetry.archive.enabled":                           false,
	"toolkit.telemetry.server":                                    "",
	"network.connectivity-service.enabled":                        false,
	"network.captive-portal-service.enabled":                      false,
	"network.dns.disablePrefetch":                                 true,
	"network.prefetch-next":                                       false,
	"services.settings.server":                                    "data:,#remote-settings-dummy/v1",
	"extensions.update.enabled":                                   false,
	"extensions.getAddons.cache.enabled":                          false,
	"browser.safebrowsing.malware.enabled":                        false,
	"browser.safebrowsing.phishing.enabled":                       false,
	"browser.safebrowsing.downloads.enabled":                      false,
	"mail.biff.play_sound":                                        false,
	"mail.chat.enabled":                                           false,
	"xpinstall.signatures.required":                               false,
	"extensions.experiments.enabled":                              true,
	"extensions.experiments.suppressed":                           false,
	"extensions.autoDisableScopes":                                0,
	"extensions.enabledScopes":                                    5,
	"browser.dom.window.dump.enabled":                             true,
	"devtools.console.stdout.chrome":                              true,
	"devtools.console.stdout.content":                             true,
	"extensions.logging.enabled":                                  true,
	"signon.rememberSignons":                                      true,
	// Do not fetch anything on startup or when a server is first used.
	"mailnews.auto_config.fetchFromISP.enabled": false,
	"mail.cloud_files.enabled":                  false,
	"network.proxy.type":                        0,
}

// UserJS renders prefs (the recipe's plus extra, extra winning) as user.js.
func UserJS(extra map[string]any) (string, error) {
	all := make(map[string]any, len(basePrefs)+len(extra))
	for k, v := range basePrefs {
		all[k] = v
	}
	for k, v := range extra {
		all[k] = v
	}
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("// written by credsync tbharness\n")
	for _, k := range keys {
		var lit string
		switch v := all[k].(type) {
		case bool:
			lit = strconv.FormatBool(v)
		case int:
			lit = strconv.Itoa(v)
		case string:
			lit = strconv.Quote(v)
		default:
			return "", fmt.Errorf("tbharness: pref %s has unsupported type %T", k, v)
		}
		fmt.Fprintf(&b, "user_pref(%s, %s);\n", strconv.Quote(k), lit)
	}
	return b.String(), nil
}

// Options configures Launch.
type Options struct {
	// Binary is the executable or directory given to FindBinary ("" = System153).
	Binary string
	// StateDir holds home/, profile/ and thunderbird.log. Required; use a test's TempDir.
	StateDir string
	// Home overrides StateDir/home (e.g. a HOME prepared by `credsync install --home`).
	Home string
	// Env is added to Thunderbird's environment (e.g. SSL_CERT_FILE=…).
	Env []string
	// RuntimeDir is Thunderbird's XDG_RUNTIME_DIR, where the credsync host
	// it starts puts its local socket (credsync/host.sock). Empty: Launch
	// creates a fresh 0700 directory (a short path under the system's
	// temporary directory, for the socket path limit) and Close removes it.
	// Never the caller's own XDG_RUNTIME_DIR.
	RuntimeDir string
	// Prefs are added to (and override) the recipe's user.js.
	Prefs map[string]any
	// StartTimeout bounds launch up to a chrome-context session (default 90 s).
	StartTimeout time.Duration
	// Logf, if set, receives progress lines.
	Logf func(format string, args ...any)
}

// TB is a running Thunderbird.
type TB struct {
	Binary  Binary
	Home    string
	Profile string
	LogPath string
	M       *marionette.Client
	// StartDuration is the time from spawn to a ready chrome-context session.
	StartDuration time.Duration
	// RuntimeDir is Thunderbird's XDG_RUNTIME_DIR (Options.RuntimeDir).
	RuntimeDir string

	cmd     *exec.Cmd
	logFile *os.File
	done    chan struct{}
	waitErr error

	pageSeq atomic.Int64

	closeOnce sync.Once
	closeErr  error
	logf      func(string, ...any)
	// ownRuntimeDir is removed by Close (Launch created it).
	ownRuntimeDir string
}

// Launch starts Thunderbird with a fresh profile, connects Marionette, opens
// a session and switches to the chrome context. On error everything it
// started is stopped.
func Launch(ctx context.Context, o Options) (_ *TB, err error) {
	bin, err := FindBinary(o.Binary)
	if err != nil {
		return nil, err
	}
	if o.StateDir == "" {
		return nil, errors.New("tbharness: Options.StateDir is required")
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 90 * time.Second
	}
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	home := o.Home
	if home == "" {
		home = filepath.Join(o.StateDir, "home")
	}
	profile := filepath.Join(o.StateDir, "profile")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(profile); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(profile, 0o700); err != nil {
		return nil, err
	}
	js, err := UserJS(o.Prefs)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(profile, "user.js"), []byte(js), 0o600); err != nil {
		return nil, err
	}
	runtimeDir, ownRuntimeDir := o.RuntimeDir, ""
	if runtimeDir == "" {
		if runtimeDir, err = os.MkdirTemp("", "tbrun-"); err != nil {
			return nil, err
		}
		ownRuntimeDir = runtimeDir
	} else if err := os.MkdirAll(runtimeDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(runtimeDir, 0o700); err != nil {
		return nil, err
	}
	logPath := filepath.Join(o.StateDir, "thunderbird.log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		if ownRuntimeDir != "" {
			os.RemoveAll(ownRuntimeDir)
		}
		return nil, err
	}

	cmd := exec.Command(bin.Path, "--headless", "--profile", profile, "--no-remote",
		"--marionette", "-remote-allow-system-access")
	cmd.Env = append(envWithout(os.Environ(), "HOME", "MOZ_CRASHREPORTER_DISABLE", "DISPLAY", "WAYLAND_DISPLAY",
		"XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR"),
		"HOME="+home, "MOZ_CRASHREPORTER_DISABLE=1", "XDG_RUNTIME_DIR="+runtimeDir)
	cmd.Env = append(cmd.Env, o.Env...)
	cmd.Dir = o.StateDir
	cmd.Stdout, cmd.Stderr = lf, lf // an *os.File is passed as is: no copying goroutine
	// Own process group (Close kills the whole group); and if this process
	// dies without Close (a test timeout panic), the kernel kills
	// Thunderbird, whose helpers and native host then exit with it.
	cmd.SysProcAttr = sysProcAttr()
	becomeSubreaper()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		lf.Close()
		if ownRuntimeDir != "" {
			os.RemoveAll(ownRuntimeDir)
		}
		return nil, fmt.Errorf("tbharness: starting %s: %w", bin.Path, err)
	}
	tb := &TB{Binary: bin, Home: home, Profile: profile, LogPath: logPath, RuntimeDir: runtimeDir,
		cmd: cmd, logFile: lf, done: make(chan struct{}), logf: logf, ownRuntimeDir: ownRuntimeDir}
	go func() {
		tb.waitErr = cmd.Wait()
		close(tb.done)
	}()
	defer func() {
		if err != nil {
			_ = tb.Close()
			err = fmt.Errorf("%w (log: %s)", err, logPath)
		}
	}()
	logf("started %s, pid %d", bin, cmd.Process.Pid)

	sctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()
	port, err := tb.waitPort(sctx)
	if err != nil {
		return tb, err
	}
	m, err := marionette.DialRetry(sctx, "127.0.0.1:"+strconv.Itoa(port), 100*time.Millisecond)
	if err != nil {
		return tb, err
	}
	tb.M = m
	if _, err := m.NewSession(sctx); err != nil {
		return tb, fmt.Errorf("tbharness: NewSession: %w", err)
	}
	if err := m.SetContext(sctx, marionette.Chrome); err != nil {
		return tb, fmt.Errorf("tbharness: chrome context: %w", err)
	}
	if err := m.SetScriptTimeout(sctx, 120*time.Second); err != nil {
		return tb, err
	}
	if err := tb.WatchPrompts(sctx); err != nil {
		return tb, err
	}
	tb.StartDuration = time.Since(start)
	logf("Marionette session ready after %s", tb.StartDuration.Round(time.Millisecond))
	return tb, nil
}

func envWithout(env []string, names ...string) []string {
	out := env[:0:0]
outer:
	for _, kv := range env {
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				continue outer
			}
		}
		out = append(out, kv)
	}
	return out
}

// waitPort polls <profile>/MarionetteActivePort.
func (tb *TB) waitPort(ctx context.Context) (int, error) {
	path := filepath.Join(tb.Profile, "MarionetteActivePort")
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if b, err := os.ReadFile(path); err == nil {
			if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && p > 0 {
				return p, nil
			}
		}
		select {
		case <-tb.done:
			return 0, fmt.Errorf("tbharness: Thunderbird exited before Marionette started: %v", tb.waitErr)
		case <-ctx.Done():
			return 0, fmt.Errorf("tbharness: waiting for %s: %w", path, ctx.Err())
		case <-t.C:
		}
	}
}

// Pid is the main process id (also the process group id).
func (tb *TB) Pid() int { return tb.cmd.Process.Pid }

// Exited reports whether the main process has exited.
func (tb *TB) Exited() bool {
	select {
	case <-tb.done:
		return true
	default:
		return false
	}
}

// Close quits Thunderbird (Marionette:Quit with eForceQuit), waits up to 30 s
// for it to exit, then kills its whole process group (which also ends any
// native-messaging host it started). It is safe to call more than once.
func (tb *TB) Close() error {
	tb.closeOnce.Do(func() {
		start := time.Now()
		pgid := tb.cmd.Process.Pid
		wait := 30 * time.Second
		if tb.M != nil && !tb.Exited() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := tb.M.Quit(ctx); err != nil {
				tb.logf("Marionette:Quit: %v", err)
				wait = 0
			}
			cancel()
		} else if tb.M == nil {
			wait = 0 // never connected (launch failed)
		}
		if wait == 0 && !tb.Exited() {
			_ = syscall.Kill(-pgid, syscall.SIGTERM)
			wait = 5 * time.Second
		}
		select {
		case <-tb.done:
		case <-time.After(wait):
			tb.logf("Thunderbird did not exit within %s; killing its process group", wait)
			if tb.M != nil {
				tb.closeErr = fmt.Errorf("tbharness: Thunderbird did not quit within %s", wait)
			}
		}
		// The rest of the group (content processes, a native host) normally
		// exits right after the main process; kill whatever is still there.
		deadline := time.Now().Add(3 * time.Second)
		for len(groupMembers(pgid)) > 0 && time.Now().Before(deadline) {
			reapGroup(pgid)
			time.Sleep(50 * time.Millisecond)
		}
		if left := groupMembers(pgid); len(left) > 0 {
			tb.logf("killing %d leftover process(es) of group %d", len(left), pgid)
		}
		if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			tb.logf("kill process group %d: %v", pgid, err)
		}
		select {
		case <-tb.done:
		case <-time.After(10 * time.Second):
			tb.closeErr = errors.New("tbharness: Thunderbird survived SIGKILL")
		}
		deadline = time.Now().Add(5 * time.Second)
		for len(groupMembers(pgid)) > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		reapGroup(pgid)
		if left := groupMembers(pgid); len(left) > 0 && tb.closeErr == nil {
			tb.closeErr = fmt.Errorf("tbharness: processes %v of group %d survived SIGKILL", left, pgid)
		}
		tb.logFile.Close()
		if tb.ownRuntimeDir != "" {
			if err := os.RemoveAll(tb.ownRuntimeDir); err != nil {
				tb.logf("removing %s: %v", tb.ownRuntimeDir, err)
			}
		}
		tb.logf("Thunderbird stopped after %s", time.Since(start).Round(time.Millisecond))
	})
	return tb.closeErr
}

// Log returns the captured stdout/stderr so far.
func (tb *TB) Log() string {
	b, _ := os.ReadFile(tb.LogPath)
	return string(b)
}
