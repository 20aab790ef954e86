package policy

import (
	"encoding/json"
	"os"
	"sync"
	"testing"

	zxcvbn "github.com/ccojocar/zxcvbn-go"
	"github.com/ccojocar/zxcvbn-go/scoring"
)

// The estimator is zxcvbn-go v1.0.4 with internal/third_party's patch,
// which only defers loading its word lists from init to first use. Its
// estimates must stay upstream's: testdata/zxcvbn-golden.json holds what
// the unpatched release gives (internal/third_party/zxcvbn-go-golden
// writes it; scripts/third-party check proves it current).
func TestStrengthMatchesUpstream(t *testing.T) {
	b, err := os.ReadFile("testdata/zxcvbn-golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var golden []struct {
		Password   string
		UserInputs []string
		Entropy    float64
		Score      int
	}
	if err := json.Unmarshal(b, &golden); err != nil {
		t.Fatal(err)
	}
	if len(golden) < 30 {
		t.Fatalf("the golden file has %d passwords, expected at least 30", len(golden))
	}
	// All at once, so that under -race concurrent first calls (the lazy
	// load) are exercised too.
	got := make([]scoring.MinEntropyMatch, len(golden))
	var wg sync.WaitGroup
	for i, g := range golden {
		wg.Go(func() { got[i] = zxcvbn.PasswordStrength(g.Password, g.UserInputs) })
	}
	wg.Wait()
	scores := map[int]bool{}
	for i, g := range golden {
		if got[i].Entropy != g.Entropy || got[i].Score != g.Score {
			t.Errorf("%q: entropy %v score %d, upstream %v score %d", g.Password, got[i].Entropy, got[i].Score, g.Entropy, g.Score)
		}
		if len([]rune(g.Password)) <= StrengthPrefix {
			if s, ok := Strength(g.Password, g.UserInputs...); !ok || s != g.Score {
				t.Errorf("Strength(%q) = %d, %v; upstream's score is %d", g.Password, s, ok, g.Score)
			}
		}
		scores[g.Score] = true
	}
	if len(scores) != MaxScore+1 {
		t.Errorf("the golden passwords cover scores %v; every score 0-%d should be there", scores, MaxScore)
	}
}
