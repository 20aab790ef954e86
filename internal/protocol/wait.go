// A change waiting for servers that lag behind the provider (PROTOCOL.md,
// "Waiting for the servers"): the `waiting` events of a change, the
// extension's `cancel` request, and the host's `pause` and `resume`
// requests (flow.CheckPauser).

package protocol

import (
	"context"
	"fmt"
	"time"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/flow"
)

// pauseTimeout bounds the wait for the extension's answer to pause and
// resume: pausing is best effort, the change does not wait for long.
const pauseTimeout = 10 * time.Second

// waitingEvent is sent before each recheck of a waiting change.
type waitingEvent struct {
	Type         string `json:"type"`
	Request      string `json:"request"`
	NextCheck    string `json:"nextCheck"`
	Checks       int    `json:"checks"`
	FailedLogins int    `json:"failedLogins"`
	Budget       int    `json:"budget"`
}

// waitedJSON is the "waited" member of a change's reply.
type waitedJSON struct {
	Checks       int          `json:"checks"`
	FailedLogins int          `json:"failedLogins"`
	Budget       int          `json:"budget"`
	End          flow.WaitEnd `json:"end"`
}

func waitedOf(w *flow.Waited) *waitedJSON {
	if w == nil {
		return nil
	}
	return &waitedJSON{Checks: w.Checks, FailedLogins: w.FailedLogins, Budget: w.Budget, End: w.End}
}

// waiter is one change of the session that may wait for its servers.
type waiter struct {
	cancel  chan struct{}
	waiting bool
	done    bool
}

// waitable prepares c to wait for lagging servers: its waiting events go
// to the extension, and a cancel request for its account ends the wait.
// The returned function forgets it once the change is over.
func (s *session) waitable(id string, c *flow.Change) (forget func()) {
	w := &waiter{cancel: make(chan struct{})}
	s.mu.Lock()
	if s.waiters == nil {
		s.waiters = map[string]*waiter{}
	}
	s.waiters[c.AccountID] = w // the account's logins are busy: one change at a time
	s.mu.Unlock()
	c.Cancel = w.cancel
	c.Waiting = func(wait flow.Wait) {
		s.mu.Lock()
		w.waiting = true
		s.mu.Unlock()
		s.send(waitingEvent{Type: "waiting", Request: id, NextCheck: wait.NextCheck.UTC().Format(time.RFC3339),
			Checks: wait.Checks, FailedLogins: wait.FailedLogins, Budget: wait.Budget})
	}
	account := c.AccountID
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		w.done = true
		if s.waiters[account] == w {
			delete(s.waiters, account)
		}
	}
}

// cancelRequest ends the wait of the account's change: {"cancelled": true}
// when it was waiting, false when no change of the account waits (none
// runs, or it has not reached the wait: a change at the provider is never
// interrupted).
func cancelRequest(_ context.Context, s *session, _ string, req gjson.Result) (any, error) {
	account, err := requiredString(req, "accountId", 1, 128)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.waiters[account]
	if w == nil || !w.waiting || w.done {
		return map[string]bool{"cancelled": false}, nil
	}
	w.done = true
	close(w.cancel)
	return map[string]bool{"cancelled": true}, nil
}

// PauseChecks implements flow.CheckPauser: Thunderbird stops its own
// background checks of these accounts (PROTOCOL.md, "pause").
func (s *session) PauseChecks(ctx context.Context, accountIDs []string) error {
	return s.checksRequest(ctx, "pause", accountIDs)
}

// ResumeChecks implements flow.CheckPauser: Thunderbird restores what
// pause changed (PROTOCOL.md, "resume").
func (s *session) ResumeChecks(ctx context.Context, accountIDs []string) error {
	return s.checksRequest(ctx, "resume", accountIDs)
}

func (s *session) checksRequest(ctx context.Context, typ string, accountIDs []string) error {
	ctx, cancel := context.WithTimeout(ctx, pauseTimeout)
	defer cancel()
	reply, err := s.request(ctx, typ, map[string]any{"accounts": accountIDs})
	if err == nil && reply.Get("status").String() != "ok" {
		err = fmt.Errorf("%s", truncate(reply.Get("code").String(), 64))
	}
	if err != nil {
		s.log.Printf("%s of Thunderbird's own checks of %d accounts failed: %v", typ, len(accountIDs), err)
	}
	return err
}
