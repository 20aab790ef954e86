//go:build !windows

package bench

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var s Sample
	for i := 10; i >= 1; i-- {
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{10: 1 * time.Millisecond, 50: 5 * time.Millisecond, 90: 9 * time.Millisecond, 100: 10 * time.Millisecond} {
		if got := s.Percentile(p); got != want {
			t.Errorf("Percentile(%v) = %v, want %v", p, got, want)
		}
	}
	if s[0] != 10*time.Millisecond {
		t.Error("Percentile sorted the sample in place")
	}
	if (Sample{}).Median() != 0 {
		t.Error("the median of nothing is not 0")
	}
}

func TestMode(t *testing.T) {
	if m, all := mode([]int{7, 7, 8}); m != 7 || all {
		t.Errorf("mode = %d, %v", m, all)
	}
	if m, all := mode([]int{5, 5}); m != 5 || !all {
		t.Errorf("mode = %d, %v", m, all)
	}
}

func TestStartMailstackWithoutTheStack(t *testing.T) {
	if _, err := StartMailstack(filepath.Join(t.TempDir(), "absent")); !errors.Is(err, ErrNoMailstack) {
		t.Errorf("StartMailstack with no env file = %v, want ErrNoMailstack", err)
	}
}
