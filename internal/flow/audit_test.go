package flow

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/credsync/credsync/internal/audit"
	"github.com/credsync/credsync/internal/provider"
)

// auditTrail collects the records an Engine writes, failing like a full
// disk when err is set.
type auditTrail struct {
	mu      sync.Mutex
	err     error
	records []audit.Record
}

func (a *auditTrail) write(_ context.Context, r audit.Record) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.records = append(a.records, r)
	return a.err
}

func (a *auditTrail) only(t *testing.T) audit.Record {
	t.Helper()
	if len(a.records) != 1 {
		t.Fatalf("%d audit records, want 1: %+v", len(a.records), a.records)
	}
	return a.records[0]
}

func stepNames(r audit.Record) string {
	var s []string
	for _, st := range r.Steps {
		s = append(s, st.Step+":"+st.State)
	}
	return strings.Join(s, " ")
}

func TestAuditRecords(t *testing.T) {
	t.Run("change stored", func(t *testing.T) {
		f := newFixture(t)
		trail := &auditTrail{}
		f.eng.Audit = trail.write
		res, err := f.change(&fakeBackend{sb: f.sb, apply: true}, oldPassword, newPassword)
		if err != nil || !res.Stored || res.AuditFailed {
			t.Fatalf("Change() = %+v, %v", res, err)
		}
		r := trail.only(t)
		if r.Kind != "change" || r.Account != "account1" || r.Login != "alice@127.0.0.1" ||
			r.Outcome != "stored" || !r.Changed || r.Time.IsZero() {
			t.Fatalf("record = %+v", r)
		}
		// Both checks run in parallel: their order is not fixed.
		got := stepNames(r)
		if got != "policy:ok changing:ok checking_incoming:ok checking_outgoing:ok saving:ok" &&
			got != "policy:ok changing:ok checking_outgoing:ok checking_incoming:ok saving:ok" {
			t.Fatalf("steps = %s", got)
		}
		// The caller still gets every progress event.
		if len(f.steps) != 10 {
			t.Fatalf("progress seen by the caller: %v", f.steps)
		}
	})
	t.Run("change rejected by the provider", func(t *testing.T) {
		f := newFixture(t)
		trail := &auditTrail{}
		f.eng.Audit = trail.write
		_, err := f.change(&fakeBackend{sb: f.sb, err: &provider.Error{Kind: provider.Rejected}}, oldPassword, newPassword)
		if err == nil || err.Code != BackendRejected {
			t.Fatalf("Change() = %v", err)
		}
		if r := trail.only(t); r.Outcome != "backend_rejected" || r.Changed || stepNames(r) != "policy:ok changing:failed" {
			t.Fatalf("record = %+v", r)
		}
	})
	t.Run("changed but not verified", func(t *testing.T) {
		f := newFixture(t)
		trail := &auditTrail{}
		f.eng.Audit = trail.write
		// The provider says yes but the servers keep the old password.
		_, err := f.change(&fakeBackend{sb: f.sb}, oldPassword, newPassword)
		if err == nil || err.Code != VerificationFailed {
			t.Fatalf("Change() = %v", err)
		}
		if r := trail.only(t); r.Outcome != "verification_failed" || !r.Changed {
			t.Fatalf("record = %+v", r)
		}
	})
	t.Run("sync refused", func(t *testing.T) {
		f := newFixture(t)
		trail := &auditTrail{}
		f.eng.Audit = trail.write
		if _, err := f.eng.Sync(context.Background(), f.acct, newPassword, f.progress); err == nil {
			t.Fatal("Sync() with a wrong password succeeded")
		}
		r := trail.only(t)
		if r.Kind != "sync" || r.Outcome != "verification_failed" || r.Changed ||
			!strings.HasPrefix(stepNames(r), "policy:ok checking_") || strings.Contains(stepNames(r), "saving") {
			t.Fatalf("record = %+v", r)
		}
	})
	t.Run("change without Thunderbird", func(t *testing.T) {
		f := newFixture(t)
		trail := &auditTrail{}
		f.eng.Audit, f.eng.Store = trail.write, nil
		res, err := f.change(&fakeBackend{sb: f.sb, apply: true}, oldPassword, newPassword)
		if err != nil || res.Stored || !res.Changed {
			t.Fatalf("Change() = %+v, %v", res, err)
		}
		if r := trail.only(t); r.Outcome != "changed" || !r.Changed {
			t.Fatalf("record = %+v", r)
		}
	})
	t.Run("busy", func(t *testing.T) {
		f := newFixture(t)
		trail := &auditTrail{}
		f.eng.Audit = trail.write
		unlock, _ := f.eng.lock("account1")
		defer unlock()
		if _, err := f.eng.Sync(context.Background(), f.acct, newPassword, f.progress); err == nil {
			t.Fatal("Sync() while busy succeeded")
		}
		if r := trail.only(t); r.Outcome != "busy" || len(r.Steps) != 0 {
			t.Fatalf("record = %+v", r)
		}
	})
}

// A record that cannot be written changes nothing but AuditFailed.
func TestAuditFailureLeavesTheResult(t *testing.T) {
	run := func(failing bool, password string) (Result, *fakeStore, error) {
		f := newFixture(t)
		f.sb.SetPassword("alice", newPassword)
		trail := &auditTrail{}
		if failing {
			trail.err = syscall.ENOSPC
		}
		f.eng.Audit = trail.write
		res, err := f.eng.Sync(context.Background(), f.acct, password, f.progress)
		if len(trail.records) != 1 {
			t.Fatalf("%d records", len(trail.records))
		}
		return res, f.store, err
	}
	for _, password := range []string{newPassword, oldPassword} {
		good, goodStore, goodErr := run(false, password)
		bad, badStore, badErr := run(true, password)
		if good.AuditFailed || !bad.AuditFailed {
			t.Fatalf("AuditFailed = %v without, %v with a failing log", good.AuditFailed, bad.AuditFailed)
		}
		bad.AuditFailed = false
		if good.Stored != bad.Stored || good.Changed != bad.Changed ||
			!reflect.DeepEqual(goodStore.accounts, badStore.accounts) ||
			(goodErr == nil) != (badErr == nil) || (goodErr != nil && goodErr.Error() != badErr.Error()) {
			t.Fatalf("results differ: %+v %v / %+v %v", good, goodErr, bad, badErr)
		}
		var fe *Error
		if badErr != nil && !errors.As(badErr, &fe) {
			t.Fatalf("the error lost its type: %T", badErr)
		}
	}
}

// No record ever holds a password, whatever the flow's outcome.
func TestAuditRecordsHoldNoPassword(t *testing.T) {
	const canaryOld, canaryNew = "canary-OLD-7f3a9c", "canary-NEW-b41e22"
	f := newFixture(t)
	trail := &auditTrail{}
	f.eng.Audit = trail.write
	f.sb.SetPassword("alice", canaryOld)
	f.change(&fakeBackend{sb: f.sb, apply: true}, canaryOld, canaryNew)                                         // stored
	f.change(&fakeBackend{sb: f.sb, err: &provider.Error{Kind: provider.Rejected}}, canaryNew, canaryOld)       // rejected
	f.change(&fakeBackend{sb: f.sb}, canaryNew, canaryOld)                                                      // not verified
	f.change(&fakeBackend{sb: f.sb, err: &provider.Error{Kind: provider.OutcomeUnknown}}, canaryNew, canaryOld) // not changed
	f.eng.Sync(context.Background(), f.acct, canaryNew, f.progress)
	f.eng.Sync(context.Background(), f.acct, canaryOld, f.progress)
	f.store.err = errors.New("gone " + canaryNew) // even an error text from the Storer
	f.eng.Sync(context.Background(), f.acct, canaryNew, f.progress)
	if len(trail.records) != 7 {
		t.Fatalf("%d records, want 7", len(trail.records))
	}
	b, _ := json.Marshal(trail.records)
	if strings.Contains(string(b), "canary") {
		t.Fatalf("a password reached the audit records: %s", b)
	}
}
