//go:build !windows

package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Goals (docs/benchmarks.md).
const (
	GoalVerifyRatio = 1.10
	GoalFlowRatio   = 1.15
	GoalFlowSlack   = 100 * time.Millisecond
	GoalColdStart   = 5 * time.Millisecond
	GoalRSS         = 14_000_000 // bytes, with Go's default runtime settings
)

// Goal is one goal's verdict.
type Goal struct {
	Name     string
	Measured string
	Limit    string
	Met      bool
	Skipped  string // why it was not checked
}

// Goals evaluates every goal at the largest RTT.
func (r *Report) Goals() []Goal {
	if r.PopupOnly {
		return r.popupGoals()
	}
	top := r.MaxRTT()
	var goals []Goal
	for _, s := range r.Servers {
		c := s.Cells[top]
		floor := time.Duration(s.VerifyFloor()) * top
		limit := time.Duration(float64(floor) * GoalVerifyRatio)
		goals = append(goals, Goal{
			Name:     fmt.Sprintf("verify both ≤ %.2f × the slower floor at %v (%s)", GoalVerifyRatio, top, s.Name),
			Measured: fmt.Sprintf("%s = %s × %d RTT", ms(c.Both.Median()), ratio(c.Both.Median(), floor), s.VerifyFloor()),
			Limit:    ms(limit),
			Met:      c.Both.Median() <= limit,
		})
		ffloor := time.Duration(s.FlowFloor()) * top
		flimit := time.Duration(float64(ffloor)*GoalFlowRatio) + GoalFlowSlack
		goals = append(goals, Goal{
			Name:     fmt.Sprintf("full flow ≤ %.2f × floors + %v at %v (%s, %s back-end)", GoalFlowRatio, GoalFlowSlack, top, s.Name, s.Backend),
			Measured: fmt.Sprintf("%s = %s × %d RTT", ms(c.Flow.Median()), ratio(c.Flow.Median(), ffloor), s.FlowFloor()),
			Limit:    ms(flimit),
			Met:      c.Flow.Median() <= flimit,
		})
	}
	cold := Goal{Name: fmt.Sprintf("host cold start to first reply ≤ %v (median, Go's default runtime settings)", GoalColdStart), Limit: ms(GoalColdStart)}
	if r.Cold != nil {
		m := r.Cold.Host.Median()
		cold.Measured = fmt.Sprintf("%s (/bin/true %s)", ms(m), ms(r.Cold.True.Median()))
		cold.Met = m <= GoalColdStart
	} else {
		cold.Skipped = "no credsync binary"
	}
	rss := Goal{Name: fmt.Sprintf("host peak RSS after a verify ≤ %.0f MB (Go's default runtime settings)", GoalRSS/1e6),
		Limit: fmt.Sprintf("%.1f MB", GoalRSS/1e6)}
	if r.Host != nil {
		peak := r.Host.Runs[0].VerifyPeak
		rss.Measured = mb(peak)
		rss.Met = peak <= GoalRSS
	} else {
		rss.Skipped = "no credsync binary"
	}
	return append(append(goals, cold, rss), r.popupGoals()...)
}

// popupGoals: per Thunderbird, the median and the largest of every timed
// opening of the popup.
func (r *Report) popupGoals() []Goal {
	if len(r.Popup) == 0 {
		why := strings.TrimPrefix(r.PopupErr, "not measured: ")
		return []Goal{
			{Name: fmt.Sprintf("popup opening → accounts and services shown ≤ %v (median)", GoalPopupMedian), Limit: ms(GoalPopupMedian), Skipped: why},
			{Name: fmt.Sprintf("no popup opening over %v", GoalPopupMax), Limit: ms(GoalPopupMax), Skipped: why},
		}
	}
	var goals []Goal
	for _, p := range r.Popup {
		meter := Goal{Name: fmt.Sprintf("strength meter: a keystroke → the estimate shown ≤ %v, 64-character passwords, median (%s)", GoalMeter, shortTB(p.Thunderbird)),
			Limit: ms(GoalMeter)}
		if p.Meter == nil || p.Meter.Err != "" {
			meter.Skipped = "not measured"
			if p.Meter != nil {
				meter.Skipped = p.Meter.Err
			}
		} else {
			all := p.Meter.All()
			worst := p.Meter.Kinds[0]
			for _, k := range p.Meter.Kinds {
				if k.Times.Median() > worst.Times.Median() {
					worst = k
				}
			}
			meter.Measured = fmt.Sprintf("%s of %d (largest %s; slowest kind %s: median %s)", ms(all.Median()), len(all), ms(slices.Max(all)), worst.Kind, ms(worst.Times.Median()))
			meter.Met = all.Median() <= GoalMeter
		}
		goals = append(goals, meter)
		all := p.All().Ready()
		goals = append(goals, Goal{
			Name: fmt.Sprintf("popup opening → accounts and services shown ≤ %v, median of %d openings (%s)", GoalPopupMedian, len(all), shortTB(p.Thunderbird)),
			Measured: fmt.Sprintf("%s (first %s, reopened %s, after a change %s)", ms(all.Median()),
				ms(p.First.Ready), ms(p.Reopen.Ready().Median()), ms(p.AfterChange.Ready().Median())),
			Limit: ms(GoalPopupMedian),
			Met:   all.Median() <= GoalPopupMedian,
		}, Goal{
			Name:     fmt.Sprintf("no popup opening over %v (%s)", GoalPopupMax, shortTB(p.Thunderbird)),
			Measured: fmt.Sprintf("largest %s", ms(slices.Max(all))),
			Limit:    ms(GoalPopupMax),
			Met:      slices.Max(all) <= GoalPopupMax,
		})
	}
	return goals
}

// shortTB is "Thunderbird 153.8.0" of "Thunderbird 153.8.0 (/usr/bin/thunderbird)".
func shortTB(s string) string {
	short, _, _ := strings.Cut(s, " (")
	return short
}

// writePopup prints the popup's openings and the messages per change.
func (r *Report) writePopup(w io.Writer) {
	fmt.Fprintln(w, "### Popup opening and messages per change (real Thunderbird)")
	fmt.Fprintln(w)
	if len(r.Popup) == 0 {
		fmt.Fprintln(w, r.PopupErr)
		fmt.Fprintln(w)
		return
	}
	fmt.Fprintln(w, "Time from opening popup/popup.html in a Thunderbird tab (as tbharness does) to the page's DOMContentLoaded (its code has started) and to its marks: account list shown, back-end line final (hello answered), everything shown (the opening's time); median (min–max).")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| Thunderbird | opening | n | page loaded | account list | back-end line | everything shown |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, p := range r.Popup {
		tb := shortTB(p.Thunderbird)
		for _, row := range []struct {
			name string
			o    Openings
		}{
			{"first in a fresh Thunderbird", Openings{p.First}},
			{"reopened (no change since the last opening)", p.Reopen},
			{"first after a completed change", p.AfterChange},
		} {
			fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %s | %s |\n", tb, row.name, len(row.o),
				minMax(row.o.Loaded()), minMax(row.o.Accounts()), minMax(row.o.Backends()), minMax(row.o.Ready()))
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Strength meter: the time from a keystroke that completes a 64-character password (its first 63 characters estimated just before) to the meter showing the estimate, as the popup measures it (the input event's time to the drawing of the estimate); each kind typed 5 times; median (min–max). The first estimate after the popup opened includes loading the estimator.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| Thunderbird | password (64 characters) | score | keystroke → estimate shown |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, p := range r.Popup {
		tb := shortTB(p.Thunderbird)
		switch {
		case p.Meter == nil:
			fmt.Fprintf(w, "| %s | not measured | | |\n", tb)
		case p.Meter.Err != "":
			fmt.Fprintf(w, "| %s | not measured: %s | | |\n", tb, p.Meter.Err)
		default:
			fmt.Fprintf(w, "| %s | the first estimate (the estimator loads) | | %s |\n", tb, ms(p.Meter.First))
			for _, k := range p.Meter.Kinds {
				fmt.Fprintf(w, "| %s | %s | %d | %s |\n", tb, k.Kind, k.Score, minMax(k.Times))
			}
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Native messages (frames on the host's stdin and stdout, counted by the tap) for one change of an account with one sibling account sharing its login, and for one popup opening:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| Thunderbird | one change: messages | without progress events | by kind | one popup opening |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, p := range r.Popup {
		if len(p.Change) == 0 {
			continue
		}
		c := p.Change[0]
		totals, opens := make([]int, len(p.Change)), make([]int, len(p.Opening))
		for i, m := range p.Change {
			totals[i] = m.Total()
		}
		for i, m := range p.Opening {
			opens[i] = m.Total()
		}
		fmt.Fprintf(w, "| %s | %s | %d | %s | %s |\n", shortTB(p.Thunderbird), turnsOf(totals), c.WithoutProgress(), c, turnsOf(opens))
	}
	fmt.Fprintln(w)
}

// minMax is "median (min–max)", or the one value.
func minMax(s Sample) string {
	if len(s) == 1 {
		return ms(s[0])
	}
	return fmt.Sprintf("%s (%s–%s)", ms(s.Median()), ms(slices.Min(s)), ms(slices.Max(s)))
}

func ratio(d, floor time.Duration) string {
	if floor <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", float64(d)/float64(floor))
}

func mb(b int64) string {
	return fmt.Sprintf("%.1f MB (%.1f MiB)", float64(b)/1e6, float64(b)/(1<<20))
}

func spread(s Sample) string {
	return fmt.Sprintf("%s (%s–%s)", ms(s.Median()), ms(s.Percentile(10)), ms(s.Percentile(90)))
}

// turnsOf shows a list of counts as its mode, marking disagreement.
func turnsOf(xs []int) string {
	m, all := mode(xs)
	if all {
		return fmt.Sprint(m)
	}
	return fmt.Sprintf("%d (varied %v)", m, xs)
}

// Write prints the report as Markdown tables.
func (r *Report) Write(w io.Writer) {
	top := r.MaxRTT()
	fmt.Fprintf(w, "## credsync bench, %s\n\n", r.Date.Format("2006-01-02 15:04 MST"))
	if r.PopupOnly {
		fmt.Fprintf(w, "Machine: %s, %d cores, %s, %s; load average %s at the start, %s at the end. The popup only (-popup-only).\n\n",
			r.Machine.CPU, r.Machine.Cores, r.Machine.Kernel, r.Machine.Go, r.Load[0], r.Load[1])
	} else {
		fmt.Fprintf(w, "Machine: %s, %d cores, %s, %s; load average %s at the start, %s at the end. Links: loopback through the latency proxy (internal/testkit/bench), RTTs %v; n = %d per cell, medians (p10–p90).\n\n",
			r.Machine.CPU, r.Machine.Cores, r.Machine.Kernel, r.Machine.Go, r.Load[0], r.Load[1], durations(r.RTTs), r.N)
	}

	fmt.Fprintln(w, "### Goals")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| Goal | Measured | Limit | Result |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, g := range r.Goals() {
		res := "met"
		switch {
		case g.Skipped != "":
			res, g.Measured = "not checked: "+g.Skipped, "—"
		case !g.Met:
			res = "**MISSED**"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", g.Name, g.Measured, g.Limit, res)
	}
	fmt.Fprintln(w)
	if r.PopupOnly {
		r.writePopup(w)
		return
	}

	fmt.Fprintln(w, "### Verify both: IMAP implicit TLS ∥ SMTP submission with STARTTLS")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| Servers | RTT | verify.Both | ÷ RTT | floor | ratio | sequential IMAP then SMTP | parallel ÷ sequential | round trips completed (IMAP / SMTP) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, s := range r.Servers {
		for _, d := range r.RTTs {
			c := s.Cells[d]
			floor := time.Duration(s.VerifyFloor()) * d
			fmt.Fprintf(w, "| %s | %v | %s | %s | %d RTT = %s | %s | %s | %s | %s / %s |\n", s.Name, d, spread(c.Both),
				perRTT(c.Both.Median(), d), s.VerifyFloor(), ms(floor), ratio(c.Both.Median(), floor), spread(c.Seq),
				ratio(c.Both.Median(), c.Seq.Median()), turnsAt(d, c.Completed[s.In.Key]), turnsAt(d, c.Completed[s.Out.Key]))
		}
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "### Full flow: change at the back-end → verify both → store (a fake extension answers at once)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| Servers | back-end | RTT | flow | ÷ RTT | change | verify | store | floors | ratio | limit | round trips completed (back-end / IMAP / SMTP) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, s := range r.Servers {
		for _, d := range r.RTTs {
			c := s.Cells[d]
			floor := time.Duration(s.FlowFloor()) * d
			limit := time.Duration(float64(floor)*GoalFlowRatio) + GoalFlowSlack
			fmt.Fprintf(w, "| %s | %s | %v | %s | %s | %s | %s | %s | %d+%d RTT = %s | %s | %s | %s / %s / %s |\n",
				s.Name, s.Backend, d, spread(c.Flow), perRTT(c.Flow.Median(), d), ms(c.FlowChange.Median()), ms(c.FlowVerify.Median()), ms(c.Store.Median()),
				s.BackendFloor, s.VerifyFloor(), ms(floor), ratio(c.Flow.Median(), floor), ms(limit),
				turnsAt(d, c.FlowCompleted["backend"]), turnsAt(d, c.FlowCompleted[s.In.Key]), turnsAt(d, c.FlowCompleted[s.Out.Key]))
		}
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "### Round trips per protocol (one verify.Login at %v, counted by the proxy; n = 3)\n\n", top)
	fmt.Fprint(w, "| Protocol | floor |")
	for _, s := range r.Servers {
		fmt.Fprintf(w, " %s: waited (on the connection) | %s: wall ÷ RTT |", s.Name, s.Name)
	}
	fmt.Fprintln(w, " floor's round trips |")
	fmt.Fprint(w, "|---|---|")
	for range r.Servers {
		fmt.Fprint(w, "---|---|")
	}
	fmt.Fprintln(w, "---|")
	for i, k := range Kinds {
		fmt.Fprintf(w, "| %s | %d |", k.Name, k.Floor)
		for _, s := range r.Servers {
			kr := s.Kinds[i]
			fmt.Fprintf(w, " %s (%s) | %.2f |", turnsOf(kr.Awaited), turnsOf(kr.Total), float64(kr.Wall.Median())/float64(top))
		}
		fmt.Fprintf(w, " %s |\n", k.Steps)
	}
	for _, s := range r.Servers {
		fmt.Fprintf(w, "| back-end %q (%s), in the flow | %d |", s.Backend, s.Name, s.BackendFloor)
		for _, o := range r.Servers {
			if o == s {
				c := s.Cells[top]
				fmt.Fprintf(w, " %s | %s |", turnsOf(c.FlowCompleted["backend"]), perRTT(c.FlowChange.Median(), top))
			} else {
				fmt.Fprint(w, " — | — |")
			}
		}
		fmt.Fprintf(w, " %s |\n", s.BackendSteps)
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "### Host process (`credsync <manifest> <extension id>`, as Thunderbird starts it)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| Measure | median | p10 | p90 |")
	fmt.Fprintln(w, "|---|---|---|---|")
	if r.Cold != nil {
		fmt.Fprintf(w, "| cold start: fork+exec → hello reply read (n = %d) | %s | %s | %s |\n", r.ColdN,
			ms(r.Cold.Host.Median()), ms(r.Cold.Host.Percentile(10)), ms(r.Cold.Host.Percentile(90)))
		fmt.Fprintf(w, "| /bin/true: fork+exec+exit+wait, interleaved (n = %d) | %s | %s | %s |\n", r.ColdN,
			ms(r.Cold.True.Median()), ms(r.Cold.True.Percentile(10)), ms(r.Cold.True.Percentile(90)))
		fmt.Fprintf(w, "| difference of the medians | %s | | |\n", ms(r.Cold.Host.Median()-r.Cold.True.Median()))
	} else {
		fmt.Fprintln(w, "| cold start | not measured | | |")
	}
	if r.Host != nil {
		fmt.Fprintf(w, "| not used: ru_maxrss of a verify run as os/exec reports it (includes the bench's own peak; /bin/true: %s) | %s | | |\n", mb(r.Host.TrueMaxRSS), mb(r.Host.MaxRSS))
	}
	fmt.Fprintln(w)
	if r.Host != nil {
		fmt.Fprintf(w, "Per Go runtime setting, %d runs each, interleaved (no added latency; the sandbox back-end; the goals use the first row):\n\n", r.Host.Count)
		fmt.Fprintln(w, "| host's Go runtime | peak RSS after hello + verify (largest) | first change in a fresh host: hello reply → change reply (median, p10–p90) | peak RSS after that change (largest) |")
		fmt.Fprintln(w, "|---|---|---|---|")
		for _, h := range r.Host.Runs {
			fmt.Fprintf(w, "| %s | %s | %s (%s–%s) | %s |\n", h.Settings, mb(h.VerifyPeak),
				ms(h.Change.Median()), ms(h.Change.Percentile(10)), ms(h.Change.Percentile(90)), mb(h.ChangePeak))
		}
	} else {
		fmt.Fprintln(w, "Peak RSS and the first change: not measured.")
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "### Thunderbird side of the store request")
	fmt.Fprintln(w)
	if r.Store != nil {
		fmt.Fprintln(w, "| Thunderbird | store request handed to Thunderbird → its answer (n, median, p10–p90) |")
		fmt.Fprintln(w, "|---|---|")
		fmt.Fprintf(w, "| %s (started in %s) | n = %d: %s |\n", r.Store.Thunderbird, ms(r.Store.Start), len(r.Store.Times), spread(r.Store.Times))
	} else {
		fmt.Fprintln(w, r.StoreErr)
	}
	fmt.Fprintln(w)
	r.writePopup(w)
	for _, n := range r.Notes {
		fmt.Fprintln(w, "Note:", n)
	}
}

// perRTT is d in round trips, "—" without latency.
func perRTT(d, rtt time.Duration) string {
	if rtt <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", float64(d)/float64(rtt))
}

// turnsAt shows round-trip counts, which mean nothing without latency
// (chunks then merge or split at random).
func turnsAt(rtt time.Duration, xs []int) string {
	if rtt <= 0 {
		return "—"
	}
	return turnsOf(xs)
}

func durations(ds []time.Duration) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.String())
	}
	return strings.Join(s, ", ")
}

// writeTrace prints one connection's flights on the client's timeline.
func writeTrace(w io.Writer, servers string, k Kind, rtt time.Duration, kr *KindReport) {
	fmt.Fprintf(w, "trace %s %s at RTT %v: %s round trips waited, %s on the connection\n", servers, k.Key, rtt, turnsOf(kr.Awaited), turnsOf(kr.Total))
	for _, f := range kr.Flights {
		dir := "←"
		if f.Up {
			dir = "→"
		}
		fmt.Fprintf(w, "  %8.1f ms %s %5d B  %s\n", float64(f.At)/float64(time.Millisecond), dir, f.Bytes, f.Label)
	}
}
