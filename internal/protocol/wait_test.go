package protocol

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/flow"
	"github.com/credsync/credsync/internal/testkit/sandbox"
)

// A compressed schedule for the wait over a real sandbox whose servers
// lag behind its change endpoint (the flow's own tests use a fake clock).
var testSchedule = []time.Duration{300 * time.Millisecond, 600 * time.Millisecond, 1 * time.Second, 2 * time.Second, 3500 * time.Millisecond}

// startLagging is alice's account1 alone (IMAP and SMTP) over a sandbox
// whose servers take a changed password lag after the change.
func startLagging(t *testing.T, lag time.Duration) (*fakeExt, *sandbox.Sandbox) {
	t.Helper()
	sb, trust := startSandbox(t)
	sb.SetLag(lag)
	x := startExt(t, &Host{Version: "test", Trust: trust, Recheck: &flow.Recheck{Schedule: testSchedule}})
	x.mailbox(sb)
	x.mu.Lock()
	x.accounts = x.accounts[:1]
	x.mu.Unlock()
	return x, sb
}

func (x *fakeExt) pauseRequests() string {
	x.mu.Lock()
	defer x.mu.Unlock()
	var s []string
	for _, m := range x.pauses {
		s = append(s, m.Get("type").String()+" "+m.Get("accounts").Raw)
	}
	return strings.Join(s, ", ")
}

func failedLogins(sb *sandbox.Sandbox) int {
	n := 0
	for _, l := range sb.Logins() {
		if !l.OK {
			n++
		}
	}
	return n
}

// The end to end of a lagging change: the provider takes the password,
// the servers refuse it for 2 s. The host pauses Thunderbird's checks,
// says when it checks next (waiting events), logs in to the incoming
// server at +0.3 s (refused), then at the schedule's end (the last check
// the budget allows), stores every login in one store, resumes the
// checks, and answers stored with what the wait cost: 3 failed logins,
// within the budget of 4. Nothing of the password reaches the audit
// record or the log.
func TestChangeWaitsForLaggingServers(t *testing.T) {
	x, sb := startLagging(t, 2*time.Second)
	x.send(changeReq("c", "account1", sb, oldPw, newPw))
	var waits []gjson.Result
	var steps []string
	var final gjson.Result
	for final.Raw == "" {
		select {
		case m := <-x.msgs:
			switch {
			case m.Get("type").String() == "waiting" && m.Get("request").String() == "c":
				waits = append(waits, m)
			case m.Get("type").String() == "progress":
				steps = append(steps, m.Get("step").String()+":"+m.Get("state").String())
			case m.Get("id").String() == "c":
				final = m
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no reply; steps %v", steps)
		}
	}
	r := final.Get("result")
	if final.Get("status").String() != "ok" || !r.Get("stored").Bool() || !r.Get("changed").Bool() || len(x.storeRequests()) != 1 ||
		r.Get("waited.end").String() != "accepted" || r.Get("waited.checks").Int() != 2 || r.Get("waited.failedLogins").Int() != 3 ||
		r.Get("waited.budget").Int() != flow.LockoutBudget {
		t.Fatalf("final %s with %d stores", final.Raw, len(x.storeRequests()))
	}
	if len(waits) != 2 || waits[0].Get("failedLogins").Int() != 2 || waits[1].Get("failedLogins").Int() != 3 || waits[0].Get("checks").Int() != 0 {
		t.Fatalf("waiting events %v", waits)
	}
	for _, w := range waits {
		if _, err := time.Parse(time.RFC3339, w.Get("nextCheck").String()); err != nil {
			t.Fatalf("nextCheck %q: %v", w.Get("nextCheck").String(), err)
		}
	}
	if got := x.pauseRequests(); got != `pause ["account1"], resume ["account1"]` {
		t.Fatalf("pause requests: %s", got)
	}
	for _, want := range []string{"waiting:running", "checking_incoming:failed", "waiting:ok", "saving:ok"} {
		if !contains(steps, want) {
			t.Fatalf("steps %v; want %s", steps, want)
		}
	}
	if n := failedLogins(sb); n != 3 || n > flow.LockoutBudget {
		t.Fatalf("%d failed logins in the sandbox's log", n)
	}
	if x.password("imap://localhost", "alice") != newPw || x.password("smtp://localhost", "alice") != newPw {
		t.Fatal("the logins do not hold the new password")
	}
	recs := x.auditRecords()
	b, _ := json.Marshal(recs)
	if len(recs) != 1 || recs[0].Outcome != "stored" || strings.Contains(string(b), newPw) || strings.Contains(string(b), oldPw) ||
		!strings.Contains(string(b), "waiting") {
		t.Fatalf("audit %s", b)
	}
	if strings.Contains(x.logBuf.String(), newPw) {
		t.Fatal("the log holds the password")
	}
}

// The servers never catch up: the wait stops at the budget and the reply
// says so; nothing is stored, at most LockoutBudget failed logins.
func TestChangeWaitStopsAtTheBudget(t *testing.T) {
	x, sb := startLagging(t, time.Hour)
	final, steps := x.waitReplyAfter(changeReq("c", "account1", sb, oldPw, newPw), 20*time.Second)
	if final.Get("code").String() != "verification_failed" || !final.Get("changed").Bool() || final.Get("waited.end").String() == "accepted" ||
		final.Get("waited.failedLogins").Int() != flow.LockoutBudget || !contains(steps, "waiting:failed") {
		t.Fatalf("final %s, steps %v", final.Raw, steps)
	}
	x.wantNothingStored()
	if n := failedLogins(sb); n > flow.LockoutBudget {
		t.Fatalf("%d failed logins; the budget is %d", n, flow.LockoutBudget)
	}
	if got := x.pauseRequests(); got != `pause ["account1"], resume ["account1"]` {
		t.Fatalf("pause requests: %s", got)
	}
}

// cancel ends a waiting change at once; a cancel with nothing waiting
// says so and changes nothing.
func TestCancelWait(t *testing.T) {
	x, sb := startLagging(t, time.Hour)
	if r, _ := x.call(map[string]any{"id": "k0", "type": "cancel", "accountId": "account1"}); r.Get("result.cancelled").Bool() || r.Get("status").String() != "ok" {
		t.Fatalf("cancel with nothing waiting: %s", r.Raw)
	}
	x.send(changeReq("c", "account1", sb, oldPw, newPw))
	for {
		m := <-x.msgs
		if m.Get("type").String() == "waiting" {
			break
		}
	}
	x.send(map[string]any{"id": "k1", "type": "cancel", "accountId": "account1"})
	replies := map[string]gjson.Result{}
	for len(replies) < 2 {
		select {
		case m := <-x.msgs:
			if id := m.Get("id").String(); m.Get("status").Exists() {
				replies[id] = m
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("replies %v", replies)
		}
	}
	if !replies["k1"].Get("result.cancelled").Bool() {
		t.Fatalf("cancel: %s", replies["k1"].Raw)
	}
	if final := replies["c"]; final.Get("code").String() != "verification_failed" || final.Get("waited.end").String() != "cancelled" ||
		final.Get("waited.checks").Int() != 0 {
		t.Fatalf("final %s", final.Raw)
	}
	x.wantNothingStored()
	if r, _ := x.call(map[string]any{"id": "k2", "type": "cancel"}); r.Get("code").String() != "invalid_request" {
		t.Fatalf("cancel without accountId: %s", r.Raw)
	}
}

// waitReplyAfter sends req and waits for its reply.
func (x *fakeExt) waitReplyAfter(req map[string]any, d time.Duration) (gjson.Result, []string) {
	x.t.Helper()
	x.send(req)
	return x.waitReply(req["id"].(string), d)
}
