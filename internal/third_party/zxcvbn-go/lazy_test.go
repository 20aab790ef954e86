package zxcvbn

import (
	"sync"
	"testing"

	"github.com/ccojocar/zxcvbn-go/adjacency"
	"github.com/ccojocar/zxcvbn-go/frequency"
)

// TestLoadedOnFirstUse runs first in this package (file order): nothing may
// be loaded by init, and concurrent first calls must agree (and, under
// -race, not race).
func TestLoadedOnFirstUse(t *testing.T) {
	if len(frequency.Lists) != 0 || len(adjacency.GraphMap) != 0 {
		t.Fatalf("loaded before first use: %d frequency lists, %d graphs", len(frequency.Lists), len(adjacency.GraphMap))
	}
	const password = "qwerty147852369Tr0ub4dour"
	entropies := make([]float64, 8)
	var wg sync.WaitGroup
	for i := range entropies {
		i := i // this module is go 1.20: one i for the whole loop
		wg.Go(func() { entropies[i] = PasswordStrength(password, []string{"alice"}).Entropy })
	}
	wg.Wait()
	for _, e := range entropies[1:] {
		if e != entropies[0] {
			t.Fatalf("concurrent first calls disagree: %v", entropies)
		}
	}
	if len(frequency.Lists) != 5 || len(adjacency.GraphMap) != 5 {
		t.Fatalf("after first use: %d frequency lists, %d graphs; want 5 and 5", len(frequency.Lists), len(adjacency.GraphMap))
	}
}
