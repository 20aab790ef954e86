//go:build !windows

package bench

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/credsync/credsync/internal/testkit/tbharness"
)

// The popup's opening time and the native messages of one change, in a
// real headless Thunderbird. The popup page is opened the way tbharness
// opens it (a Thunderbird tab showing popup/popup.html: the toolbar
// popup's page and code); the page marks with performance.mark when the
// account list is shown ("credsync-accounts"), when the back-end line is
// final after the host's hello ("credsync-backends"), and when all it
// shows on opening is there ("credsync-ready"). An opening's time runs
// from Thunderbird's clock just before the tab is opened
// (tbharness.Page.OpenedAt) to the page's mark, so the Marionette polling
// adds nothing. Messages are counted by the tap (see Tap): every frame on
// the native port, both ways.

// Popup goals (docs/benchmarks.md): per Thunderbird, over every timed
// opening.
const (
	GoalPopupMedian = 200 * time.Millisecond
	GoalPopupMax    = 500 * time.Millisecond
)

// PopupConfig configures MeasurePopup.
type PopupConfig struct {
	Thunderbird string // executable or directory; "" = System153, then the 140 cache
	Credsync    string // the real host
	Tap         string // the tap executable; "" = this program
	Extension   string // the add-on: the .xpi (make bench), or a directory (no strength meter)
	Reopen      int    // reopenings timed (with no change in between)
	Changes     int    // changes, each followed by a timed opening
	Log         func(string, ...any)
}

// Opening is one timed opening of the popup, from the tab's opening.
type Opening struct {
	// Loaded is the page's DOMContentLoaded: its document and modules are
	// loaded and its code has started (and sent its first messages).
	Loaded   time.Duration
	Accounts time.Duration // the account list is shown
	Backends time.Duration // the back-end line is final (hello answered)
	Ready    time.Duration // everything is shown: the opening's time
}

// Openings are timed openings of one kind.
type Openings []Opening

// Ready is the openings' times.
func (o Openings) Ready() Sample { return o.pick(func(x Opening) time.Duration { return x.Ready }) }

// Loaded is when each page's code had started.
func (o Openings) Loaded() Sample { return o.pick(func(x Opening) time.Duration { return x.Loaded }) }

// Accounts is when each showed its account list.
func (o Openings) Accounts() Sample {
	return o.pick(func(x Opening) time.Duration { return x.Accounts })
}

// Backends is when each showed its final back-end line.
func (o Openings) Backends() Sample {
	return o.pick(func(x Opening) time.Duration { return x.Backends })
}

func (o Openings) pick(f func(Opening) time.Duration) Sample {
	s := make(Sample, len(o))
	for i, x := range o {
		s[i] = f(x)
	}
	return s
}

// Messages counts the native messages of one change, by direction and kind
// (a message's type, or "reply").
type Messages struct {
	ToHost, FromHost map[string]int
}

// Total is every message both ways.
func (m Messages) Total() int {
	n := 0
	for _, c := range m.ToHost {
		n += c
	}
	for _, c := range m.FromHost {
		n += c
	}
	return n
}

// WithoutProgress leaves out the host's progress events.
func (m Messages) WithoutProgress() int { return m.Total() - m.FromHost["progress"] }

func (m Messages) String() string {
	side := func(c map[string]int) string {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(c)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, c[k]))
		}
		return strings.Join(parts, ", ")
	}
	return fmt.Sprintf("Thunderbird → host: %s; host → Thunderbird: %s", side(m.ToHost), side(m.FromHost))
}

// PopupTimes is what MeasurePopup measured in one Thunderbird.
type PopupTimes struct {
	Thunderbird string
	Start       time.Duration // Thunderbird's start-up, for scale
	// First is the first opening in a fresh Thunderbird (the host is
	// already running: the background page starts it).
	First Opening
	// Reopen are openings with no change since the previous one: cfg.Reopen
	// in a row, then the second opening after each change.
	Reopen Openings
	// AfterChange are the first openings after each completed change.
	AfterChange Openings
	// Change are the messages of each change (of an account with one
	// sibling account sharing its login); Opening, of each reopening.
	Change  []Messages
	Opening []Messages
	// Meter is the strength meter's time from a keystroke to its estimate.
	Meter *MeterTimes
}

// All is every timed opening.
func (p *PopupTimes) All() Openings {
	return slices.Concat(Openings{p.First}, p.Reopen, p.AfterChange)
}

// MeasurePopup launches Thunderbird with the extension and the tap as the
// host, creates an IMAP account and a POP3 account sharing its login on a
// sandbox, and times the popup's openings: the first, cfg.Reopen more, then
// after each of cfg.Changes password changes of the IMAP account (run in
// the popup, which updates the sibling too) the next two openings. The tap
// counts the messages of each change and of the first cfg.Reopen
// reopenings.
func MeasurePopup(ctx context.Context, cfg PopupConfig) (*PopupTimes, error) {
	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	logf := orQuiet(cfg.Log)
	s, err := startSession(ctx, cfg.Thunderbird, cfg.Credsync, cfg.Tap, cfg.Extension, logf)
	if err != nil {
		return nil, err
	}
	defer s.close()
	sb := s.sb
	acct, err := s.createAccount(ctx)
	if err != nil {
		return nil, err
	}
	host, port := splitAddr(sb.Addr["pop3s"])
	shost, sport := splitAddr(sb.Addr["submission"])
	sibling, err := s.tb.CreateAccount(ctx, tbharness.AccountSpec{
		Type: "pop3",
		Incoming: tbharness.ServerSpec{Host: host, Port: port, SocketType: tbharness.SocketSSL,
			AuthMethod: tbharness.AuthPasswordCleartext, Username: sb.User, Password: sb.Password},
		// Its SMTP login is the IMAP account's (already saved).
		SMTP: &tbharness.ServerSpec{Host: shost, Port: sport, SocketType: tbharness.SocketSTARTTLS,
			AuthMethod: tbharness.AuthPasswordCleartext, Username: sb.User},
		Email: sb.User + "-pop@example.test",
	})
	if err != nil {
		return nil, err
	}
	// The background page's hello at start-up is not the popup's: let it pass.
	if err := waitTap(ctx, s, func(lines []string) bool { return countFrames(lines).FromHost["reply"] > 0 }); err != nil {
		return nil, fmt.Errorf("the host did not answer the background page's hello: %w", err)
	}

	p := &PopupTimes{Thunderbird: s.bin.String(), Start: s.tb.StartDuration}
	popup, first, err := openPopup(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("first opening: %w", err)
	}
	p.First = first
	logf("popup: first opening %s", ms(first.Ready))
	accounts, err := popup.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range accounts {
		if a.ID == acct.Key && !slices.Equal(a.Siblings, []string{sibling.Key}) {
			return nil, fmt.Errorf("the popup lists the siblings %v for %s, want [%s]", a.Siblings, acct.Key, sibling.Key)
		}
	}
	if err := popup.Command(ctx, map[string]any{"cmd": "setBackend", "accountId": acct.Key,
		"name": sb.Backend, "url": sb.BackendURL(sb.BackendAddr)}, nil); err != nil {
		return nil, err
	}
	if err := popup.Close(ctx); err != nil {
		return nil, err
	}

	for range cfg.Reopen {
		before, err := s.tapLines()
		if err != nil {
			return nil, err
		}
		popup, o, err := openPopup(ctx, s)
		if err != nil {
			return nil, fmt.Errorf("reopening: %w", err)
		}
		if err := popup.Close(ctx); err != nil {
			return nil, err
		}
		p.Reopen = append(p.Reopen, o)
		after, err := s.tapLines()
		if err != nil {
			return nil, err
		}
		p.Opening = append(p.Opening, countFrames(after[len(before):]))
	}
	if len(p.Reopen) > 0 {
		logf("popup: %d reopenings, median %s, max %s", len(p.Reopen), ms(p.Reopen.Ready().Median()), ms(slices.Max(p.Reopen.Ready())))
	}

	popup, _, err = openPopup(ctx, s)
	if err != nil {
		return nil, err
	}
	if p.Meter, err = measureMeter(ctx, popup); err != nil {
		return nil, fmt.Errorf("the strength meter: %w", err)
	}
	logf("popup: strength meter: %s", p.Meter)
	for i := range cfg.Changes {
		before, err := s.tapLines()
		if err != nil {
			return nil, err
		}
		next := randomPassword()
		out, err := popup.Change(ctx, acct.Key, sb.Password, next, time.Minute)
		if err != nil {
			return nil, fmt.Errorf("change %d: %w", i+1, err)
		}
		if out.Kind != "success" || out.Steps["sibling:"+sibling.Key] != "ok" {
			return nil, fmt.Errorf("change %d: the popup says %s: %q (steps %v)", i+1, out.Kind, out.Text, out.Steps)
		}
		sb.Password = next
		if err := popup.Close(ctx); err != nil {
			return nil, err
		}
		after, err := s.tapLines()
		if err != nil {
			return nil, err
		}
		p.Change = append(p.Change, countFrames(after[len(before):]))
		var o Opening
		if popup, o, err = openPopup(ctx, s); err != nil {
			return nil, fmt.Errorf("opening after change %d: %w", i+1, err)
		}
		p.AfterChange = append(p.AfterChange, o)
		// The next opening, under the same load: a reopening.
		if err := popup.Close(ctx); err != nil {
			return nil, err
		}
		var again Opening
		if popup, again, err = openPopup(ctx, s); err != nil {
			return nil, fmt.Errorf("second opening after change %d: %w", i+1, err)
		}
		p.Reopen = append(p.Reopen, again)
		logf("popup: change %d (%d messages); the next opening %s (accounts %s, back-ends %s), the one after it %s",
			i+1, p.Change[i].Total(), ms(o.Ready), ms(o.Accounts), ms(o.Backends), ms(again.Ready))
	}
	if err := popup.Close(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// openPopup opens the popup page, waits until it is ready and returns it
// with its timings.
func openPopup(ctx context.Context, s *tbSession) (*tbharness.Popup, Opening, error) {
	popup, err := s.tb.OpenPopup(ctx, s.addon)
	if err != nil {
		return nil, Opening{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var marks struct {
		Origin                            float64
		Loaded, Accounts, Backends, Ready *float64
	}
	err = popup.WaitFor(wctx, `
if (document.documentElement.dataset.ready !== "true") return null;
const at = name => performance.getEntriesByName(name, "mark")[0]?.startTime ?? null;
const nav = performance.getEntriesByType("navigation")[0];
return { origin: performance.timeOrigin, loaded: nav ? nav.domContentLoadedEventStart : null, accounts: at("credsync-accounts"), backends: at("credsync-backends"), ready: at("credsync-ready") };`,
		nil, 20*time.Millisecond, &marks)
	if err != nil {
		return nil, Opening{}, err
	}
	if marks.Loaded == nil || marks.Accounts == nil || marks.Backends == nil || marks.Ready == nil {
		return nil, Opening{}, errors.New("the popup did not set its performance marks")
	}
	since := func(mark float64) time.Duration {
		return time.Duration((marks.Origin + mark - popup.OpenedAt) * float64(time.Millisecond))
	}
	return popup, Opening{Loaded: since(*marks.Loaded), Accounts: since(*marks.Accounts), Backends: since(*marks.Backends), Ready: since(*marks.Ready)}, nil
}

// countFrames counts the tap's "frame" lines.
func countFrames(lines []string) Messages {
	m := Messages{ToHost: map[string]int{}, FromHost: map[string]int{}}
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "frame" {
			continue
		}
		switch f[1] {
		case ">":
			m.ToHost[f[2]]++
		case "<":
			m.FromHost[f[2]]++
		}
	}
	return m
}

// waitTap waits until the tap's log satisfies ok.
func waitTap(ctx context.Context, s *tbSession, ok func([]string) bool) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		lines, err := s.tapLines()
		if err != nil {
			return err
		}
		if ok(lines) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// popupThunderbirds are the Thunderbirds to time the popup in: the one
// given, else the system one and the 140 cache, each if present.
func popupThunderbirds(given string) ([]string, error) {
	if given != "" {
		return []string{given}, nil
	}
	var found []string
	var errs []error
	for _, p := range []string{tbharness.System153, tbharness.Default140Dir()} {
		if p == "" {
			continue
		}
		if _, err := tbharness.FindBinary(p); err != nil {
			errs = append(errs, err)
			continue
		}
		found = append(found, filepath.Clean(p))
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("%w (%v); install them with `make thunderbird`", ErrNoThunderbird, errors.Join(errs...))
	}
	return found, nil
}
