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
	cmd    *exec.Cmd
	in     io.WriteCloser
	frames *wire.Reader
	stderr *strings.Builder
}

func (h *host) start(ctx context.Context, env []string) (*session, error) {
	cmd := exec.CommandContext(ctx, h.bin, h.manifest, nmhost.ExtensionID)
	cmd.Dir = filepath.Dir(h.bin)
	cmd.Env = env
	cmd.WaitDelay = 2 * time.Second
	s := &session{cmd: cmd, stderr: &strings.Builder{}}
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
// the reply with the request's id.
func (s *session) request(body []byte) (gjson.Result, error) {
	id := gjson.GetBytes(body, "id").String()
	if err := wire.NewWriter(s.in).Write(body); err != nil {
		return gjson.Result{}, err
	}
	for {
		b, err := s.frames.Read()
		if err != nil {
			return gjson.Result{}, fmt.Errorf("reading the host's reply: %w (stderr: %q)", err, strings.TrimSpace(s.stderr.String()))
		}
		if m := gjson.ParseBytes(b); m.Get("id").String() == id && m.Get("status").Exists() {
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
	env := os.Environ()
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

// RSS is the host's peak resident set size after a verify.
type RSS struct {
	Peak int64 // VmHWM of the host, the largest over Runs runs
	Runs int
	// MaxRSS is getrusage's ru_maxrss of the same child as os/exec reports
	// it, and TrueMaxRSS /bin/true's: both include this program's own peak
	// (see peakRSS), so they are shown, not used.
	MaxRSS, TrueMaxRSS int64
}

// MeasureRSS runs the host as Thunderbird does, sends hello and a verify
// request for both servers of the sandbox s (trusted through SSL_CERT_FILE,
// as the end-to-end suite does), and reads the host's peak RSS once the
// verify reply is in, so the TLS and protocol code has run.
func MeasureRSS(ctx context.Context, bin string, s *Servers, runs int) (RSS, error) {
	res := RSS{Runs: runs}
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
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SSL_CERT_FILE=") && !strings.HasPrefix(kv, "SSL_CERT_DIR=") {
			env = append(env, kv)
		}
	}
	env = append(env, "SSL_CERT_FILE="+ca)

	ep := func(key string) map[string]any {
		e := s.endpoint(KindByKey(key), s.Addr[key])
		return map[string]any{"protocol": string(e.Protocol), "host": e.Host, "port": e.Port,
			"socketType": int(e.Security), "authMethod": int(e.AuthMethod), "username": e.Username}
	}
	req, err := json.Marshal(map[string]any{"id": "rss", "type": "verify", "password": s.Password,
		"incoming": ep("imaps"), "outgoing": ep("submission")})
	if err != nil {
		return res, err
	}
	for range runs {
		sess, err := h.start(ctx, env)
		if err != nil {
			return res, err
		}
		if _, err := sess.request(helloRequest); err != nil {
			sess.end()
			return res, err
		}
		r, err := sess.request(req)
		if err == nil && !r.Get("result.verified").Bool() {
			err = fmt.Errorf("the host did not verify against the sandbox: %s", r.Raw)
		}
		var peak int64
		if err == nil {
			peak, err = peakRSS(sess.cmd.Process.Pid)
		}
		st, endErr := sess.end()
		if err := errors.Join(err, endErr); err != nil {
			return res, err
		}
		res.Peak = max(res.Peak, peak)
		if m, ok := maxRSS(st); ok {
			res.MaxRSS = max(res.MaxRSS, m)
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
