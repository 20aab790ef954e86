//go:build !windows

package bench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/credsync/credsync/internal/testkit/tbharness"
)

// The popup's strength meter (extension/lib/strength.js), in a real
// Thunderbird: the time from a keystroke in the new-password field to the
// meter showing the new estimate, for 64-character passwords. The popup
// measures it itself: an input event's timeStamp to the moment it draws
// the estimate (performance.measure "credsync-meter"); the harness only
// types and waits. Each keystroke completes a 64-character password
// whose first 63 characters were estimated just before, as a user typing
// it would.

// GoalMeter is the meter's goal (docs/benchmarks.md): the median keystroke
// of every 64-character password kind, per Thunderbird.
const GoalMeter = 50 * time.Millisecond

// meterPasswords are the 64-character passwords typed, by kind.
var meterPasswords = []struct{ Kind, Password string }{
	{"passphrase", "quercia-lavagna-torrente-girasole-fiume-collina-tramonto-garda-8"},
	{"words and years", "Lombardia2024Primavera2025Ciao1234!Aclibresciane1!Brescia1977Iseo"},
	{"random", "k7#Qp2@vL9!xR4$mT6^wZ1&nB8*cY3%hJ5(fD0)gS2_aE7+uK4=oI9-lP6~qW1zz"},
	{"l33t-heavy", "P4$$w0rd!1337@3l1t3$5P4$$w0rd!1337@3l1t3$5P4$$w0rd!1337@3l1t3$5x"},
}

// meterRounds is how many keystrokes are timed per password.
const meterRounds = 5

// MeterTimes is what measureMeter measured in one popup.
type MeterTimes struct {
	// First is the first estimate after the popup opened: the estimator
	// loads (its scripts, its ranked word lists) at the first keystroke.
	First time.Duration
	// Kinds are the 64-character keystrokes, by password kind.
	Kinds []MeterKind
	// Err says why the meter could not be measured ("" when it was).
	Err string
}

// MeterKind is the keystrokes of one kind of 64-character password.
type MeterKind struct {
	Kind  string
	Score int
	Times Sample
}

// All is every timed keystroke.
func (m *MeterTimes) All() Sample {
	var all Sample
	for _, k := range m.Kinds {
		all = append(all, k.Times...)
	}
	return all
}

// measureMeter times the meter in the popup's change view; it leaves the
// new-password field empty.
func measureMeter(ctx context.Context, popup *tbharness.Popup) (*MeterTimes, error) {
	m := &MeterTimes{}
	const script = `
const [value, complete] = arguments;
const input = document.getElementById("new");
const box = document.getElementById("meter");
if (!box) return { state: "absent", score: -1, ms: null };
const type = v => {
  input.focus();
  input.value = v;
  input.dispatchEvent(new Event("input", { bubbles: true }));
};
const shown = () => new Promise(resolve => {
  const tick = () => (box.dataset.state === "pending" ? setTimeout(tick, 2) : resolve());
  tick();
});
const last = () => performance.getEntriesByName("credsync-meter", "measure").at(-1)?.duration ?? null;
if (complete) {
  type(value.slice(0, -1));
  await shown();
}
type(value);
await shown();
return { state: box.dataset.state, score: box.dataset.score === "" ? -1 : Number(box.dataset.score), ms: last() };`
	var r struct {
		State string   `json:"state"`
		Score int      `json:"score"`
		MS    *float64 `json:"ms"`
	}
	if err := popup.Eval(ctx, script, []any{"a", false}, &r); err != nil {
		return nil, err
	}
	if r.State != "ready" || r.MS == nil {
		m.Err = fmt.Sprintf("the meter shows %q, not an estimate (an extension directory without the estimator? make bench installs the .xpi)", r.State)
		return m, nil
	}
	m.First = msDuration(*r.MS)
	for _, p := range meterPasswords {
		k := MeterKind{Kind: p.Kind}
		for range meterRounds {
			if err := popup.Eval(ctx, script, []any{p.Password, true}, &r); err != nil {
				return nil, err
			}
			if r.State != "ready" || r.MS == nil {
				return nil, fmt.Errorf("meter: %s: the meter shows %q", p.Kind, r.State)
			}
			k.Score = r.Score
			k.Times = append(k.Times, msDuration(*r.MS))
		}
		m.Kinds = append(m.Kinds, k)
	}
	if err := popup.Eval(ctx, script, []any{"", false}, nil); err != nil {
		return nil, err
	}
	return m, nil
}

func msDuration(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// String is one line per kind, for the log.
func (m *MeterTimes) String() string {
	if m.Err != "" {
		return m.Err
	}
	parts := []string{fmt.Sprintf("first estimate %s", ms(m.First))}
	for _, k := range m.Kinds {
		parts = append(parts, fmt.Sprintf("%s %s", k.Kind, minMax(k.Times)))
	}
	return strings.Join(parts, "; ")
}
