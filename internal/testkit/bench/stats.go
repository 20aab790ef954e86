//go:build !windows

package bench

import (
	"fmt"
	"slices"
	"time"
)

// Sample is a set of measured durations.
type Sample []time.Duration

// Percentile is the nearest-rank p-th percentile (0 < p ≤ 100); 0 for an
// empty sample.
func (s Sample) Percentile(p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	sorted := slices.Clone(s)
	slices.Sort(sorted)
	rank := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}

// Median is the 50th percentile.
func (s Sample) Median() time.Duration { return s.Percentile(50) }

// ms formats d in milliseconds with a precision suited to its size.
func ms(d time.Duration) string {
	f := float64(d) / float64(time.Millisecond)
	switch {
	case f < 10:
		return fmt.Sprintf("%.2f ms", f)
	case f < 100:
		return fmt.Sprintf("%.1f ms", f)
	}
	return fmt.Sprintf("%.0f ms", f)
}

// mode is the most frequent value of xs (the smallest on a tie), and
// whether every value equals it.
func mode(xs []int) (int, bool) {
	if len(xs) == 0 {
		return 0, true
	}
	count := map[int]int{}
	for _, x := range xs {
		count[x]++
	}
	best := xs[0]
	for x, n := range count {
		if n > count[best] || n == count[best] && x < best {
			best = x
		}
	}
	return best, count[best] == len(xs)
}
