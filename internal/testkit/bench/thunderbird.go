package bench

import (
	"bufio"
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
	Extension   string // extension directory
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
// ways unchanged and logs the time Thunderbird takes to answer each store
// request. It returns the host's exit status.
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

	go func() { // Thunderbird → host
		defer toHost.Close()
		r, w := wire.NewReader(os.Stdin, 64<<20), wire.NewWriter(toHost)
		for {
			body, err := r.Read()
			if err != nil {
				return
			}
			if m := gjson.ParseBytes(body); m.Get("status").Exists() {
				mu.Lock()
				sent, ok := pending[m.Get("id").String()]
				delete(pending, m.Get("id").String())
				mu.Unlock()
				if ok && logFile != nil {
					fmt.Fprintf(logFile, "store %d %s\n", time.Since(sent).Nanoseconds(), m.Get("status").String())
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
		isStore := m.Get("type").String() == "store"
		if isStore {
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

// MeasureStore launches Thunderbird with the extension and the tap as the
// host, creates an account on a sandbox, and changes its password cfg.N
// times from the extension's popup, timing each store request.
func MeasureStore(ctx context.Context, cfg StoreConfig) (*StoreTimes, error) {
	if cfg.Credsync == "" {
		return nil, fmt.Errorf("%w: it needs the credsync binary (-credsync)", ErrNoThunderbird)
	}
	bin, err := findThunderbird(cfg.Thunderbird)
	if err != nil {
		return nil, err
	}
	logf := cfg.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	tap := cfg.Tap
	if tap == "" {
		if tap, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	credsync, err := filepath.Abs(cfg.Credsync)
	if err != nil {
		return nil, err
	}
	ext := cfg.Extension
	if ext == "" {
		ext = "extension"
	}
	if ext, err = filepath.Abs(ext); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(ext, "manifest.json")); err != nil {
		return nil, fmt.Errorf("extension: %w", err)
	}

	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	state, err := os.MkdirTemp("", "credsync-bench-tb-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(state)
	home := filepath.Join(state, "home")
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

	sb, err := StartSandbox()
	if err != nil {
		return nil, err
	}
	defer sb.Close()
	ca := filepath.Join(state, "sandbox-ca.pem")
	if err := os.WriteFile(ca, sb.CAPEM, 0o644); err != nil {
		return nil, err
	}
	tapLog := filepath.Join(state, "tap.log")

	tb, err := tbharness.Launch(ctx, tbharness.Options{
		Binary: bin.Path, StateDir: state, Home: home,
		Env: []string{"SSL_CERT_FILE=" + ca, TapHostEnv + "=" + credsync, TapLogEnv + "=" + tapLog},
	})
	if err != nil {
		return nil, err
	}
	defer tb.Close()
	logf("%s started in %v", bin, tb.StartDuration.Round(time.Millisecond))
	id, err := tb.InstallAddon(ctx, ext)
	if err != nil {
		return nil, err
	}
	host, port := splitAddr(sb.Addr["imaps"])
	shost, sport := splitAddr(sb.Addr["submission"])
	acct, err := tb.CreateAccount(ctx, tbharness.AccountSpec{
		Type: "imap",
		Incoming: tbharness.ServerSpec{Host: host, Port: port, SocketType: tbharness.SocketSSL,
			AuthMethod: tbharness.AuthPasswordCleartext, Username: sb.User, Password: sb.Password},
		SMTP: &tbharness.ServerSpec{Host: shost, Port: sport, SocketType: tbharness.SocketSTARTTLS,
			AuthMethod: tbharness.AuthPasswordCleartext, Username: sb.User, Password: sb.Password},
	})
	if err != nil {
		return nil, err
	}
	popup, err := tb.OpenPopup(ctx, id)
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
	st := &StoreTimes{Thunderbird: bin.String(), Start: tb.StartDuration}
	f, err := os.Open(tapLog)
	if err != nil {
		return nil, fmt.Errorf("the tap logged nothing: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
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
