//go:build !windows

package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/nmhost"
	"github.com/credsync/credsync/internal/testkit/tbharness"
	"github.com/credsync/credsync/internal/wire"
)

// The Thunderbird-side store time is measured here, outside the end-to-end
// suite (internal/e2e does not log it): a real headless Thunderbird with the
// extension runs password changes from its popup against the sandbox, and a
// tap between Thunderbird and the real host times each store request from
// the moment the tap hands it to Thunderbird until Thunderbird's answer
// comes back. That is Thunderbird's share of a flow: native-messaging
// transport both ways, the extension, its Experiment and the login manager.

// Environment of the tap (the bench binary started by Thunderbird as the
// native-messaging host).
const (
	TapHostEnv = "CREDSYNC_BENCH_TAP_HOST" // the real credsync binary
	TapLogEnv  = "CREDSYNC_BENCH_TAP_LOG"  // file that receives "store <ns>" lines
)

// ErrNoThunderbird means the store time cannot be measured on this machine.
var ErrNoThunderbird = errors.New("no Thunderbird to measure with")

// StoreConfig configures MeasureStore.
type StoreConfig struct {
	Thunderbird string // executable or directory; "" = System153, then the 140 cache
	Credsync    string // the real host
	Tap         string // the tap executable; "" = this program
	Extension   string // the add-on: the .xpi, or a directory
	N           int
	Log         func(string, ...any)
}

// StoreTimes are the store requests timed in Thunderbird.
type StoreTimes struct {
	Thunderbird string
	Times       Sample
	Start       time.Duration // Thunderbird's start-up, for scale
}

// TapRequested reports whether this process was started by Thunderbird as
// the tap: `<manifest.json> <extension id>` with TapHostEnv set.
func TapRequested(args []string) bool {
	return len(args) == 2 && strings.HasSuffix(args[0], ".json") && os.Getenv(TapHostEnv) != ""
}

// Tap runs the real host with args, relays native-messaging frames both
// ways unchanged and logs, in the file TapLogEnv names, one line per frame
// before relaying it ("frame > <kind>" from Thunderbird to the host,
// "frame < <kind>" back; kind is the message's type, or "reply"; never
// anything else of the message) and the time Thunderbird takes to answer
// each store request ("store <ns> <status>"). It returns the host's exit
// status.
func Tap(args []string) int {
	cmd := exec.Command(os.Getenv(TapHostEnv), args...)
	cmd.Stderr = os.Stderr
	toHost, err := cmd.StdinPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "credsync-bench tap:", err)
		return 1
	}
	fromHost, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "credsync-bench tap:", err)
		return 1
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "credsync-bench tap:", err)
		return 1
	}
	logFile, err := os.OpenFile(os.Getenv(TapLogEnv), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "credsync-bench tap:", err)
		logFile = nil
	}
	var mu sync.Mutex
	pending := map[string]time.Time{}
	logf := func(format string, a ...any) {
		if logFile == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(logFile, format, a...)
	}

	go func() { // Thunderbird → host
		defer toHost.Close()
		r, w := wire.NewReader(os.Stdin, 64<<20), wire.NewWriter(toHost)
		for {
			body, err := r.Read()
			if err != nil {
				return
			}
			m := gjson.ParseBytes(body)
			logf("frame > %s\n", frameKind(m))
			if m.Get("status").Exists() {
				mu.Lock()
				sent, ok := pending[m.Get("id").String()]
				delete(pending, m.Get("id").String())
				mu.Unlock()
				if ok {
					logf("store %d %s\n", time.Since(sent).Nanoseconds(), frameWord(m.Get("status").String()))
				}
			}
			if w.Write(body) != nil {
				return
			}
		}
	}()
	// host → Thunderbird
	r, w := wire.NewReader(fromHost, 64<<20), wire.NewWriter(os.Stdout)
	for {
		body, err := r.Read()
		if err != nil {
			break
		}
		m := gjson.ParseBytes(body)
		logf("frame < %s\n", frameKind(m))
		if m.Get("type").String() == "store" {
			mu.Lock()
			pending[m.Get("id").String()] = time.Now()
			mu.Unlock()
		}
		if w.Write(body) != nil {
			break
		}
	}
	err = cmd.Wait()
	if logFile != nil {
		logFile.Close()
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return 1
	}
	return 0
}

// frameKind names a native message for the tap's log: "reply" for an
// answer, else its type.
func frameKind(m gjson.Result) string {
	if m.Get("status").Exists() {
		return "reply"
	}
	return frameWord(m.Get("type").String())
}

// frameWord keeps a protocol word ([a-z_], at most 32 bytes) for the log;
// anything else becomes "?".
func frameWord(s string) string {
	if s == "" || len(s) > 32 {
		return "?"
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && c != '_' {
			return "?"
		}
	}
	return s
}

// findThunderbird resolves cfg.Thunderbird, or the system Thunderbird, or
// the 140 that scripts/thunderbird unpacks.
func findThunderbird(p string) (tbharness.Binary, error) {
	if p != "" {
		b, err := tbharness.FindBinary(p)
		if err != nil {
			return b, fmt.Errorf("%w: %v", ErrNoThunderbird, err)
		}
		return b, nil
	}
	var errs []error
	for _, p := range []string{tbharness.System153, tbharness.Default140Dir()} {
		if p == "" {
			continue
		}
		b, err := tbharness.FindBinary(p)
		if err == nil {
			return b, nil
		}
		errs = append(errs, err)
	}
	return tbharness.Binary{}, fmt.Errorf("%w (%v); install one with `make thunderbird`", ErrNoThunderbird, errors.Join(errs...))
}

// tbSession is a headless Thunderbird with the extension installed, the
// tap in front of the real host, and a sandbox to change passwords on.
type tbSession struct {
	tb     *tbharness.TB
	bin    tbharness.Binary
	addon  string // the extension's ID
	sb     *Servers
	tapLog string
	state  string
}

// orQuiet is logf, or a log that drops everything when logf is nil.
func orQuiet(logf func(string, ...any)) func(string, ...any) {
	if logf == nil {
		return func(string, ...any) {}
	}
	return logf
}

// startSession launches Thunderbird (see findThunderbird) with the
// extension at ext and the tap as its native host, which runs credsync,
// and logs how long Thunderbird took to start.
func startSession(ctx context.Context, thunderbird, credsync, tap, ext string, logf func(string, ...any)) (_ *tbSession, err error) {
	if credsync == "" {
		return nil, fmt.Errorf("%w: it needs the credsync binary (-credsync)", ErrNoThunderbird)
	}
	bin, err := findThunderbird(thunderbird)
	if err != nil {
		return nil, err
	}
	if tap == "" {
		if tap, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	if credsync, err = filepath.Abs(credsync); err != nil {
		return nil, err
	}
	if ext == "" {
		ext = "extension"
	}
	if ext, err = filepath.Abs(ext); err != nil {
		return nil, err
	}
	// The .xpi (make bench builds it), or a directory holding manifest.json.
	if st, err := os.Stat(ext); err != nil {
		return nil, fmt.Errorf("extension: %w", err)
	} else if st.IsDir() {
		if _, err := os.Stat(filepath.Join(ext, "manifest.json")); err != nil {
			return nil, fmt.Errorf("extension: %w", err)
		}
	}

	s := &tbSession{bin: bin}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if s.state, err = os.MkdirTemp("", "credsync-bench-tb-"); err != nil {
		return nil, err
	}
	home := filepath.Join(s.state, "home")
	hosts := filepath.Join(home, ".mozilla", "native-messaging-hosts")
	if err := os.MkdirAll(hosts, 0o700); err != nil {
		return nil, err
	}
	manifest, err := nmhost.NewManifest(tap).JSON()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(hosts, nmhost.HostName+".json"), manifest, 0o644); err != nil {
		return nil, err
	}
	if s.sb, err = StartSandbox(); err != nil {
		return nil, err
	}
	ca := filepath.Join(s.state, "sandbox-ca.pem")
	if err := os.WriteFile(ca, s.sb.CAPEM, 0o644); err != nil {
		return nil, err
	}
	s.tapLog = filepath.Join(s.state, "tap.log")
	if s.tb, err = tbharness.Launch(ctx, tbharness.Options{
		Binary: bin.Path, StateDir: s.state, Home: home,
		Env: []string{"SSL_CERT_FILE=" + ca, TapHostEnv + "=" + credsync, TapLogEnv + "=" + s.tapLog},
	}); err != nil {
		return nil, err
	}
	logf("%s started in %v", s.bin, s.tb.StartDuration.Round(time.Millisecond))
	if s.addon, err = s.tb.InstallAddon(ctx, ext); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *tbSession) close() {
	if s.tb != nil {
		s.tb.Close()
	}
	if s.sb != nil {
		s.sb.Close()
	}
	if s.state != "" {
		os.RemoveAll(s.state)
	}
}

// createAccount creates an IMAP account (implicit TLS) with SMTP
// submission (STARTTLS) on the sandbox, its logins saved.
func (s *tbSession) createAccount(ctx context.Context) (tbharness.Account, error) {
	host, port := splitAddr(s.sb.Addr["imaps"])
	shost, sport := splitAddr(s.sb.Addr["submission"])
	return s.tb.CreateAccount(ctx, tbharness.AccountSpec{
		Type: "imap",
		Incoming: tbharness.ServerSpec{Host: host, Port: port, SocketType: tbharness.SocketSSL,
			AuthMethod: tbharness.AuthPasswordCleartext, Username: s.sb.User, Password: s.sb.Password},
		SMTP: &tbharness.ServerSpec{Host: shost, Port: sport, SocketType: tbharness.SocketSTARTTLS,
			AuthMethod: tbharness.AuthPasswordCleartext, Username: s.sb.User, Password: s.sb.Password},
	})
}

// tapLines returns the tap's log so far, one entry per line.
func (s *tbSession) tapLines() ([]string, error) {
	b, err := os.ReadFile(s.tapLog)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"), nil
}

// MeasureStore launches Thunderbird with the extension and the tap as the
// host, creates an account on a sandbox, and changes its password cfg.N
// times from the extension's popup, timing each store request.
func MeasureStore(ctx context.Context, cfg StoreConfig) (*StoreTimes, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	logf := orQuiet(cfg.Log)
	s, err := startSession(ctx, cfg.Thunderbird, cfg.Credsync, cfg.Tap, cfg.Extension, logf)
	if err != nil {
		return nil, err
	}
	defer s.close()
	acct, err := s.createAccount(ctx)
	if err != nil {
		return nil, err
	}
	sb := s.sb
	popup, err := s.tb.OpenPopup(ctx, s.addon)
	if err != nil {
		return nil, err
	}
	u := sb.BackendURL(sb.BackendAddr)
	if err := popup.SetBackend(ctx, acct.Key, sb.Backend, u); err != nil {
		return nil, err
	}
	for i := range cfg.N {
		next := randomPassword()
		o, err := popup.Change(ctx, acct.Key, sb.Password, next, time.Minute)
		if err != nil {
			return nil, fmt.Errorf("change %d: %w", i+1, err)
		}
		if o.Kind != "success" {
			return nil, fmt.Errorf("change %d: the popup says %s: %q", i+1, o.Kind, o.Text)
		}
		sb.Password = next
	}
	st := &StoreTimes{Thunderbird: s.bin.String(), Start: s.tb.StartDuration}
	lines, err := s.tapLines()
	if err != nil {
		return nil, err
	}
	for _, line := range lines {
		fields := strings.Fields(line)
		if len(fields) < 3 || fields[0] != "store" {
			continue
		}
		if fields[2] != "ok" {
			return nil, fmt.Errorf("a store request was answered with %s", fields[2])
		}
		ns, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			return nil, err
		}
		st.Times = append(st.Times, time.Duration(ns))
	}
	if len(st.Times) != cfg.N {
		return nil, fmt.Errorf("the tap timed %d store requests, want %d", len(st.Times), cfg.N)
	}
	return st, nil
}

func splitAddr(addr string) (string, int) {
	h, p, _ := strings.Cut(addr, ":")
	n, _ := strconv.Atoi(p)
	return h, n
}
