package flow

import (
	"context"
	"sync"
	"time"

	"github.com/credsync/credsync/internal/verify"
)

// check logs in once to each server, all in parallel, with one deadline,
// and fills in their results. Progress reports each side as one step:
// running while any of its servers is asked, then ok only if all said ok.
func (e *Engine) check(ctx context.Context, servers []Checked, password string, progress Progress) {
	timeout := e.VerifyTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var mu sync.Mutex
	pending := map[Side]int{}
	failed := map[Side]bool{}
	for _, s := range servers {
		pending[s.Side]++
	}
	for _, side := range []Side{Incoming, Outgoing} {
		if pending[side] > 0 {
			progress(stepOf(side), Running)
		}
	}
	var wg sync.WaitGroup
	for i := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := &servers[i]
			s.Result = verify.Login(ctx, s.Server, password, e.Trust)
			mu.Lock()
			defer mu.Unlock()
			failed[s.Side] = failed[s.Side] || s.Result.Outcome != verify.OK
			if pending[s.Side]--; pending[s.Side] == 0 {
				state := OK
				if failed[s.Side] {
					state = Failed
				}
				progress(stepOf(s.Side), state)
			}
		}()
	}
	wg.Wait()
}

func stepOf(side Side) Step {
	if side == Incoming {
		return StepCheckingIncoming
	}
	return StepCheckingOutgoing
}

func allOK(servers []Checked) bool {
	for _, s := range servers {
		if s.Result.Outcome != verify.OK {
			return false
		}
	}
	return true
}

// anyOK: some server accepted the password, so the provider has it.
func anyOK(servers []Checked) bool {
	for _, s := range servers {
		if s.Result.Outcome == verify.OK {
			return true
		}
	}
	return false
}

// anyRefused: some server answered and refused the password.
func anyRefused(servers []Checked) bool {
	for _, s := range servers {
		if s.Result.Outcome == verify.AuthFailed {
			return true
		}
	}
	return false
}
