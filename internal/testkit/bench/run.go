//go:build !windows

package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/credsync/credsync/internal/testkit/mailstack"
)

// Config says what Run measures.
type Config struct {
	// Credsync is the built host binary (cold start and peak RSS); empty
	// skips those rows.
	Credsync string
	// RTTs are the modelled round-trip times; the largest is the one the
	// goals are checked at and the round trips are counted at.
	RTTs []time.Duration
	// N is the number of samples per verify and flow cell.
	N int
	// ColdN is the number of cold starts.
	ColdN int
	// Mailstack is scripts/mailstack's env file; its rows are skipped with
	// a note when the stack is not up.
	Mailstack string
	// Thunderbird is the Thunderbird to measure the extension's store with:
	// "" finds one (tbharness.System153, then the 140 cache), "off" skips.
	Thunderbird string
	// Extension is the add-on for the Thunderbird measurement: the .xpi
	// (make bench), or a directory (then without the strength meter).
	Extension string
	// StoreN is the number of store requests timed in Thunderbird.
	StoreN int
	// PopupReopen and PopupChanges are the popup's reopenings timed, and
	// the changes each followed by a timed opening, per Thunderbird
	// (MeasurePopup: in Thunderbird, or the system one and the 140 cache).
	PopupReopen, PopupChanges int
	// PopupOnly measures the popup only.
	PopupOnly bool
	// Trace, if set, receives each protocol's flights at the largest RTT.
	Trace io.Writer
	// Log, if set, receives progress lines.
	Log io.Writer
}

func (c *Config) defaults() {
	if len(c.RTTs) == 0 {
		c.RTTs = []time.Duration{0, 20 * time.Millisecond, 50 * time.Millisecond}
	}
	if c.N <= 0 {
		c.N = 7
	}
	if c.ColdN <= 0 {
		c.ColdN = 100
	}
	if c.StoreN <= 0 {
		c.StoreN = 20
	}
	if c.PopupReopen <= 0 {
		c.PopupReopen = 10
	}
	if c.PopupChanges <= 0 {
		c.PopupChanges = 5
	}
	if c.Mailstack == "" {
		c.Mailstack = mailstack.EnvPath()
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// Report is what one Run measured.
type Report struct {
	Date    time.Time
	Machine Machine
	RTTs    []time.Duration
	N       int
	Servers []*ServersReport
	Notes   []string
	// Load is /proc/loadavg's 1-minute load at the start and the end.
	Load [2]string

	Cold     *ColdStart
	ColdN    int
	Host     *Host
	Store    *StoreTimes
	StoreErr string // why the store time was not measured

	Popup    []*PopupTimes // per Thunderbird
	PopupErr string        // why the popup was not measured
	// PopupOnly: nothing else was measured.
	PopupOnly bool
}

// MaxRTT is the RTT the goals are checked at.
func (r *Report) MaxRTT() time.Duration { return slices.Max(r.RTTs) }

// ServersReport is what was measured against one set of servers.
type ServersReport struct {
	Name, Note   string
	Backend      string
	BackendFloor int
	BackendSteps string
	In, Out      Kind
	Cells        map[time.Duration]*Cell
	Kinds        []*KindReport
}

// VerifyFloor is the round trips of verify both: the slower side's floor.
func (s *ServersReport) VerifyFloor() int { return max(s.In.Floor, s.Out.Floor) }

// FlowFloor adds the back-end's floor; the store request crosses a pipe.
func (s *ServersReport) FlowFloor() int { return s.BackendFloor + s.VerifyFloor() }

// Cell is one set of servers at one RTT.
type Cell struct {
	Both, Seq                           Sample
	Flow, FlowChange, FlowVerify, Store Sample
	// Completed and FlowCompleted count, per leg, the round trips
	// completed by the time verify.Both returned or the flow's reply
	// arrived: on the slower side the ones waited for; the faster side may
	// have finished its goodbye meanwhile.
	Completed, FlowCompleted map[string][]int
}

// KindReport is one protocol's round-trip accounting at the largest RTT.
type KindReport struct {
	Kind           Kind
	Wall           Sample
	Awaited, Total []int
	Conns          []int
	Flights        []Flight
}

// Machine describes where the run happened.
type Machine struct {
	CPU    string
	Cores  int
	Kernel string
	Go     string
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b) + " ?")[0]
}

func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = runtime.GOOS + " " + strings.TrimSpace(string(b))
	} else {
		m.Kernel = runtime.GOOS
	}
	if m.CPU == "" {
		m.CPU = "unknown CPU"
	}
	return m
}

// Run measures everything cfg asks for. Only harness failures (a server
// refusing the bench user, a proxy that cannot connect, a host that does
// not answer) are errors; missed goals are in the Report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.defaults()
	r := &Report{Date: time.Now().UTC(), Machine: machine(), RTTs: cfg.RTTs, N: cfg.N}
	r.Load[0] = loadavg()
	defer func() { r.Load[1] = loadavg() }()
	logf := func(format string, a ...any) { fmt.Fprintf(cfg.Log, "bench: "+format+"\n", a...) }
	if cfg.PopupOnly {
		r.PopupOnly = true
		return r, r.measurePopup(ctx, cfg, logf)
	}

	sb, err := StartSandbox()
	if err != nil {
		return nil, fmt.Errorf("starting the sandbox: %w", err)
	}
	defer sb.Close()
	all := []*Servers{sb}
	ms, err := StartMailstack(cfg.Mailstack)
	switch {
	case errors.Is(err, ErrNoMailstack):
		r.Notes = append(r.Notes, fmt.Sprintf("mailstack rows skipped: %v (start it with scripts/mailstack start)", err))
		logf("%v: skipping the mailstack rows", err)
	case err != nil:
		return nil, fmt.Errorf("mailstack: %w", err)
	default:
		defer ms.Close()
		all = append(all, ms)
		logf("mailstack up; throw-away LDAP user %s", ms.User)
	}

	l := newLinks()
	defer l.close()
	var setups []*setup
	for _, s := range all {
		st, err := newSetup(l, s, cfg.RTTs)
		if err != nil {
			return nil, err
		}
		defer st.x.close()
		setups = append(setups, st)
	}
	// drop removes the mail stack's rows when it stopped answering during
	// the run (other users of the stack restart it); any other failure is
	// the harness's.
	drop := func(st *setup, err error) error {
		if st.s.Name != "mailstack" || st.s.Reachable() {
			return err
		}
		r.Notes = append(r.Notes, fmt.Sprintf("mailstack rows dropped: the stack stopped answering during the run (%v)", err))
		logf("the mail stack went away (%v): dropping its rows", err)
		setups = slices.DeleteFunc(setups, func(o *setup) bool { return o == st })
		return nil
	}

	// One untimed round first: TLS session set-up, Postfix's smtpd
	// processes, page cache.
	l.setRTT(0)
	for _, st := range slices.Clone(setups) {
		if err := st.warmUp(ctx); err != nil {
			if err := drop(st, err); err != nil {
				return nil, err
			}
		}
	}

	// The cells, interleaved: every iteration visits every RTT (in a
	// rotating order) and every set of servers, so that a slow period of
	// the machine spreads over all of them.
	for i := range cfg.N {
		logf("round %d/%d", i+1, cfg.N)
		for j := range cfg.RTTs {
			d := cfg.RTTs[(i+j)%len(cfg.RTTs)]
			l.setRTT(d)
			for _, st := range slices.Clone(setups) {
				if err := st.sample(ctx, st.rep.Cells[d]); err != nil {
					if err := drop(st, err); err != nil {
						return nil, err
					}
				}
			}
		}
	}

	// Round trips per protocol, at the largest RTT.
	top := r.MaxRTT()
	l.setRTT(top)
	for _, st := range slices.Clone(setups) {
		logf("%s: round trips per protocol at %v", st.s.Name, top)
		if err := st.account(ctx, l, top, cfg.Trace); err != nil {
			if err := drop(st, err); err != nil {
				return nil, err
			}
		}
	}
	for _, st := range setups {
		r.Servers = append(r.Servers, st.rep)
	}

	if cfg.Credsync != "" {
		logf("cold start: %d runs of %s and /bin/true", cfg.ColdN, cfg.Credsync)
		cs, err := MeasureColdStart(ctx, cfg.Credsync, cfg.ColdN)
		if err != nil {
			return nil, fmt.Errorf("cold start: %w", err)
		}
		r.Cold, r.ColdN = &cs, cfg.ColdN
		logf("host process: peak RSS after a verify, first change, per runtime setting")
		host, err := MeasureHost(ctx, cfg.Credsync, sb, HostSettingsCompared(), 5)
		if err != nil {
			return nil, fmt.Errorf("host process: %w", err)
		}
		r.Host = &host
	} else {
		r.Notes = append(r.Notes, "cold start and host process skipped: no credsync binary given (-credsync)")
	}

	if cfg.Thunderbird == "off" {
		r.StoreErr = "not measured: Thunderbird measurement turned off (-thunderbird off)"
	} else {
		logf("Thunderbird-side store time")
		st, err := MeasureStore(ctx, StoreConfig{Thunderbird: cfg.Thunderbird, Credsync: cfg.Credsync,
			Extension: cfg.Extension, N: cfg.StoreN, Log: logf})
		switch {
		case errors.Is(err, ErrNoThunderbird):
			r.StoreErr = "not measured: " + err.Error()
		case err != nil:
			return nil, fmt.Errorf("the Thunderbird store time: %w", err)
		default:
			r.Store = st
		}
	}
	if err := r.measurePopup(ctx, cfg, logf); err != nil {
		return nil, err
	}
	return r, nil
}

// measurePopup times the popup in each Thunderbird (MeasurePopup).
func (r *Report) measurePopup(ctx context.Context, cfg Config, logf func(string, ...any)) error {
	if cfg.Thunderbird == "off" {
		r.PopupErr = "not measured: Thunderbird measurement turned off (-thunderbird off)"
		return nil
	}
	tbs, err := popupThunderbirds(cfg.Thunderbird)
	if errors.Is(err, ErrNoThunderbird) {
		r.PopupErr = "not measured: " + err.Error()
		return nil
	}
	if err != nil {
		return err
	}
	for _, tb := range tbs {
		logf("popup opening and messages per change in %s", tb)
		p, err := MeasurePopup(ctx, PopupConfig{Thunderbird: tb, Credsync: cfg.Credsync, Extension: cfg.Extension,
			Reopen: cfg.PopupReopen, Changes: cfg.PopupChanges, Log: logf})
		if errors.Is(err, ErrNoThunderbird) {
			r.PopupErr = "not measured: " + err.Error()
			return nil
		}
		if err != nil {
			return fmt.Errorf("the popup in %s: %w", tb, err)
		}
		r.Popup = append(r.Popup, p)
	}
	return nil
}

// setup is one set of servers being measured: its proxies, its fake
// extension session and what was measured so far.
type setup struct {
	s       *Servers
	rep     *ServersReport
	in, out leg
	backend *Proxy
	x       *extension
}

func newSetup(l *links, s *Servers, rtts []time.Duration) (*setup, error) {
	rep := &ServersReport{Name: s.Name, Note: s.Note, Backend: s.Backend, BackendFloor: s.BackendFloor,
		BackendSteps: s.BackendSteps, In: KindByKey("imaps"), Out: KindByKey("submission"),
		Cells: map[time.Duration]*Cell{}}
	for _, d := range rtts {
		rep.Cells[d] = &Cell{Completed: map[string][]int{}, FlowCompleted: map[string][]int{}}
	}
	st := &setup{s: s, rep: rep}
	var err error
	if st.in, err = s.leg(l, rep.In.Key); err != nil {
		return nil, err
	}
	if st.out, err = s.leg(l, rep.Out.Key); err != nil {
		return nil, err
	}
	if st.backend, err = l.to(s.BackendAddr); err != nil {
		return nil, err
	}
	st.x = startExtension(verifyTrust(s))
	return st, nil
}

func (st *setup) warmUp(ctx context.Context) error {
	if _, err := verifyBoth(ctx, st.s, st.in, st.out); err != nil {
		return err
	}
	_, err := st.x.change(ctx, st.s, st.backend, st.in, st.out)
	return err
}

// sample measures verify both, the sequential baseline and the flow once.
func (st *setup) sample(ctx context.Context, c *Cell) error {
	b, err := verifyBoth(ctx, st.s, st.in, st.out)
	if err != nil {
		return err
	}
	in, err := login(ctx, st.s, st.in, 0)
	if err != nil {
		return err
	}
	out, err := login(ctx, st.s, st.out, 0)
	if err != nil {
		return err
	}
	f, err := st.x.change(ctx, st.s, st.backend, st.in, st.out)
	if err != nil {
		return err
	}
	c.Both = append(c.Both, b.wall)
	for k, n := range b.completed {
		c.Completed[k] = append(c.Completed[k], n)
	}
	c.Seq = append(c.Seq, in.wall+out.wall)
	c.Flow = append(c.Flow, f.wall)
	c.FlowChange = append(c.FlowChange, f.change)
	c.FlowVerify = append(c.FlowVerify, f.verify)
	c.Store = append(c.Store, f.store)
	for k, n := range f.completed {
		c.FlowCompleted[k] = append(c.FlowCompleted[k], n)
	}
	return nil
}

// account logs in with every kind three times at the RTT top and counts
// the round trips.
func (st *setup) account(ctx context.Context, l *links, top time.Duration, trace io.Writer) error {
	var kinds []*KindReport
	for _, k := range Kinds {
		lg, err := st.s.leg(l, k.Key)
		if err != nil {
			return err
		}
		kr := &KindReport{Kind: k}
		for i := range 3 {
			lr, err := login(ctx, st.s, lg, 3*time.Second)
			if err != nil {
				return err
			}
			kr.Wall = append(kr.Wall, lr.wall)
			kr.Awaited = append(kr.Awaited, lr.awaited)
			kr.Total = append(kr.Total, lr.total)
			kr.Conns = append(kr.Conns, lr.conns)
			if i == 0 && len(lr.logs) > 0 {
				kr.Flights = lr.logs[0].Flights()
			}
		}
		kinds = append(kinds, kr)
		if trace != nil {
			writeTrace(trace, st.s.Name, k, top, kr)
		}
	}
	st.rep.Kinds = kinds
	return nil
}
