//go:build !windows

package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/nmhost"
	"github.com/credsync/credsync/internal/wire"
)

// host runs the credsync binary the way Thunderbird does: `credsync
// <manifest> <extension id>` with a valid manifest, stdin and stdout as the
// native-messaging pipes.
type host struct {
	bin      string
	manifest string
	// account is what the fake extension lists (benchAccount).
	account map[string]any
}

func newHost(bin, dir string) (*host, error) {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, err
	}
	m, err := nmhost.NewManifest(bin).JSON()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, nmhost.HostName+".json")
	if err := os.WriteFile(path, m, 0o644); err != nil {
		return nil, err
	}
	return &host{bin: bin, manifest: path}, nil
}

// session is one running host process.
type session struct {
	// account is what the fake extension lists (benchAccount).
	account map[string]any
	cmd     *exec.Cmd
	in      io.WriteCloser
	frames  *wire.Reader
	stderr  *strings.Builder
}

func (h *host) start(ctx context.Context, env []string) (*session, error) {
	cmd := exec.CommandContext(ctx, h.bin, h.manifest, nmhost.ExtensionID)
	cmd.Dir = filepath.Dir(h.bin)
	cmd.Env = env
	cmd.WaitDelay = 2 * time.Second
	s := &session{account: h.account, cmd: cmd, stderr: &strings.Builder{}}
	cmd.Stderr = s.stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s.in, s.frames = in, wire.NewReader(out, 1<<20)
	return s, nil
}

// request writes one framed request (already JSON) and reads messages until
// the reply with the request's id, answering the host's store requests on
// the way at once, as an extension whose store succeeded.
func (s *session) request(body []byte) (gjson.Result, error) {
	id := gjson.GetBytes(body, "id").String()
	w := wire.NewWriter(s.in)
	if err := w.Write(body); err != nil {
		return gjson.Result{}, err
	}
	for {
		b, err := s.frames.Read()
		if err != nil {
			return gjson.Result{}, fmt.Errorf("reading the host's reply: %w (stderr: %q)", err, strings.TrimSpace(s.stderr.String()))
		}
		m := gjson.ParseBytes(b)
		if answer, ok := answerHost(m, s.account); ok {
			reply, _ := json.Marshal(answer)
			if err := w.Write(reply); err != nil {
				return gjson.Result{}, err
			}
			continue
		}
		if m.Get("id").String() == id && m.Get("status").Exists() {
			if m.Get("status").String() != "ok" {
				return m, fmt.Errorf("the host answered %s", m.Raw)
			}
			return m, nil
		}
	}
}

// end closes stdin, as Thunderbird does to stop the host, and waits.
func (s *session) end() (*os.ProcessState, error) {
	s.in.Close()
	err := s.cmd.Wait()
	if err != nil {
		return s.cmd.ProcessState, fmt.Errorf("the host exited with %v (stderr: %q)", err, strings.TrimSpace(s.stderr.String()))
	}
	return s.cmd.ProcessState, nil
}

var helloRequest = []byte(`{"id":"bench","type":"hello"}`)

// ColdStart holds start-up times: fork+exec of the host to its first reply,
// and fork+exec+exit of /bin/true as the machine's baseline.
type ColdStart struct {
	Host, True Sample
}

// MeasureColdStart starts the host n times, each followed by /bin/true,
// sends hello and times until the reply.
func MeasureColdStart(ctx context.Context, bin string, n int) (ColdStart, error) {
	dir, err := os.MkdirTemp("", "credsync-bench-")
	if err != nil {
		return ColdStart{}, err
	}
	defer os.RemoveAll(dir)
	h, err := newHost(bin, dir)
	if err != nil {
		return ColdStart{}, err
	}
	truePath, err := exec.LookPath("true")
	if err != nil {
		return ColdStart{}, err
	}
	env := defaultRuntimeEnv()
	var cs ColdStart
	for i := -1; i < n; i++ { // i == -1 warms the page cache
		start := time.Now()
		s, err := h.start(ctx, env)
		if err != nil {
			return cs, err
		}
		if _, err := s.request(helloRequest); err != nil {
			s.end()
			return cs, err
		}
		d := time.Since(start)
		if _, err := s.end(); err != nil {
			return cs, err
		}

		start = time.Now()
		if err := exec.CommandContext(ctx, truePath).Run(); err != nil {
			return cs, err
		}
		t := time.Since(start)
		if i >= 0 {
			cs.Host = append(cs.Host, d)
			cs.True = append(cs.True, t)
		}
	}
	return cs, nil
}

// HostSettings is an environment for the host's Go runtime, added to the
// bench's own.
type HostSettings struct {
	Name string
	Env  []string
}

// HostSettingsCompared are the settings MeasureHost runs the host with:
// Go's defaults, which the host keeps and the goals are checked against
// (issue 18), and the settings the host made for itself before 0.2, to
// show what they would still change.
func HostSettingsCompared() []HostSettings {
	return []HostSettings{
		{Name: fmt.Sprintf("Go's defaults (GOMAXPROCS=%d, no memory limit)", runtime.NumCPU())},
		{Name: "for comparison, the host's own settings before 0.2: GOMAXPROCS=1 GOMEMLIMIT=6MiB (here never lifted)",
			Env: []string{"GOMAXPROCS=1", "GOMEMLIMIT=6MiB"}},
	}
}

// defaultRuntimeEnv is this program's environment without the Go
// runtime's settings, so that the host runs with Go's defaults.
func defaultRuntimeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOMAXPROCS=") && !strings.HasPrefix(kv, "GOMEMLIMIT=") && !strings.HasPrefix(kv, "GOGC=") {
			env = append(env, kv)
		}
	}
	return env
}

// HostRun is the host process's figures under one HostSettings.
type HostRun struct {
	Settings string
	// VerifyPeak is the host's peak RSS (VmHWM) after hello and a verify
	// of both sandbox servers, the largest over the runs.
	VerifyPeak int64
	// Change is hello's reply → the reply to the first change request of a
	// fresh host (sandbox back-end, no added latency). ChangePeak is the
	// peak RSS after it, the largest over the runs.
	Change     Sample
	ChangePeak int64
}

// Host holds HostRun per HostSettings, and getrusage's view of the first.
type Host struct {
	Runs  []HostRun
	Count int // runs per measure and setting
	// MaxRSS is getrusage's ru_maxrss of a verify run as os/exec reports
	// it, and TrueMaxRSS /bin/true's: both include this program's own peak
	// (see peakRSS), so they are shown, not used.
	MaxRSS, TrueMaxRSS int64
}

// MeasureHost runs the host as Thunderbird does under each setting, n
// times each, interleaved: hello and a verify of both servers of the
// sandbox s, reading the peak RSS once the reply is in, so the TLS and
// protocol code has run; then, in a fresh host, hello and a change of the
// password at s's back-end. The sandbox is trusted through SSL_CERT_FILE,
// as the end-to-end suite does.
func MeasureHost(ctx context.Context, bin string, s *Servers, settings []HostSettings, n int) (Host, error) {
	res := Host{Count: n}
	dir, err := os.MkdirTemp("", "credsync-bench-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	h, err := newHost(bin, dir)
	if err != nil {
		return res, err
	}
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, s.CAPEM, 0o644); err != nil {
		return res, err
	}
	var base []string
	for _, kv := range defaultRuntimeEnv() {
		if !strings.HasPrefix(kv, "SSL_CERT_FILE=") && !strings.HasPrefix(kv, "SSL_CERT_DIR=") {
			base = append(base, kv)
		}
	}
	base = append(base, "SSL_CERT_FILE="+ca)

	ep := func(key string) map[string]any {
		e := s.endpoint(KindByKey(key), s.Addr[key])
		return map[string]any{"protocol": string(e.Protocol), "host": e.Host, "port": e.Port,
			"socketType": int(e.Security), "authMethod": int(e.AuthMethod), "username": e.Username}
	}
	h.account = benchAccount(*s.endpoint(KindByKey("imaps"), s.Addr["imaps"]), *s.endpoint(KindByKey("submission"), s.Addr["submission"]))
	res.Runs = make([]HostRun, len(settings))
	for i, st := range settings {
		res.Runs[i].Settings = st.Name
	}
	for range n {
		for i, st := range settings {
			env := append(slices.Clone(base), st.Env...)
			verify, err := json.Marshal(map[string]any{"id": "verify", "type": "verify", "password": s.Password,
				"incoming": ep("imaps"), "outgoing": ep("submission")})
			if err != nil {
				return res, err
			}
			peak, ps, err := h.measure(ctx, env, verify, func(r gjson.Result) bool { return r.Get("result.verified").Bool() })
			if err != nil {
				return res, fmt.Errorf("verify: %w", err)
			}
			run := &res.Runs[i]
			run.VerifyPeak = max(run.VerifyPeak, peak.rss)
			if m, ok := maxRSS(ps); ok && i == 0 {
				res.MaxRSS = max(res.MaxRSS, m)
			}

			next := randomPassword()
			change, err := json.Marshal(map[string]any{"id": "change", "type": "change", "accountId": "bench",
				"backend": map[string]any{"name": s.Backend, "url": s.BackendURL(s.BackendAddr)},
				"current": s.Password, "new": next})
			if err != nil {
				return res, err
			}
			peak, _, err = h.measure(ctx, env, change, func(r gjson.Result) bool { return r.Get("result.stored").Bool() })
			if err != nil {
				return res, fmt.Errorf("change: %w", err)
			}
			s.Password = next
			run.Change = append(run.Change, peak.took)
			run.ChangePeak = max(run.ChangePeak, peak.rss)
		}
	}
	if truePath, err := exec.LookPath("true"); err == nil {
		c := exec.CommandContext(ctx, truePath)
		if c.Run() == nil {
			res.TrueMaxRSS, _ = maxRSS(c.ProcessState)
		}
	}
	return res, nil
}

type hostPeak struct {
	took time.Duration // hello's reply → req's reply
	rss  int64         // VmHWM once req's reply is in
}

// measure starts a host with env, sends hello and then req, checks req's
// reply with ok, and reads the host's peak RSS before stopping it.
func (h *host) measure(ctx context.Context, env []string, req []byte, ok func(gjson.Result) bool) (hostPeak, *os.ProcessState, error) {
	sess, err := h.start(ctx, env)
	if err != nil {
		return hostPeak{}, nil, err
	}
	var p hostPeak
	_, err = sess.request(helloRequest)
	if err == nil {
		start := time.Now()
		var r gjson.Result
		r, err = sess.request(req)
		p.took = time.Since(start)
		if err == nil && !ok(r) {
			err = fmt.Errorf("the host's reply: %s", r.Raw)
		}
	}
	if err == nil {
		p.rss, err = peakRSS(sess.cmd.Process.Pid)
	}
	st, endErr := sess.end()
	return p, st, errors.Join(err, endErr)
}
