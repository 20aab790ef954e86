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
	"github.com/credsync/credsync/internal/code"
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
	const both = "account1 account2"
	t.Run("change stored", func(t *testing.T) {
		f := newFixture(t)
		trail := &auditTrail{}
		f.eng.Audit = trail.write
		res, err := f.change(&fakeBackend{sb: f.sb, apply: true}, oldPassword, newPassword)
		if err != nil || !res.Stored || res.AuditFailed {
			t.Fatalf("Change() = %+v, %v", res, err)
		}
		r := trail.only(t)
		if r.Kind != "change" || r.Account != "account1" || r.Login != "alice@localhost" || strings.Join(r.Accounts, " ") != both ||
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
		if err == nil || err.Code != code.BackendRejected {
			t.Fatalf("Change() = %v", err)
		}
		if r := trail.only(t); r.Outcome != "backend_rejected" || r.Changed || stepNames(r) != "policy:ok changing:failed" ||
			strings.Join(r.Accounts, " ") != both {
			t.Fatalf("record = %+v", r)
		}
	})
	t.Run("changed but not verified", func(t *testing.T) {
		f := newFixture(t)
		trail := &auditTrail{}
		f.eng.Audit = trail.write
		// The provider says yes but the servers keep the old password.
		_, err := f.change(&fakeBackend{sb: f.sb}, oldPassword, newPassword)
		if err == nil || err.Code != code.VerificationFailed {
			t.Fatalf("Change() = %v", err)
		}
		if r := trail.only(t); r.Outcome != "verification_failed" || !r.Changed || strings.Contains(stepNames(r), "saving") {
			t.Fatalf("record = %+v", r)
		}
	})
	t.Run("store failed", func(t *testing.T) {
		f := newFixture(t)
		trail := &auditTrail{}
		f.eng.Audit = trail.write
		f.tb.failAt = 2
		if _, err := f.change(&fakeBackend{sb: f.sb, apply: true}, oldPassword, newPassword); err == nil || err.Code != code.StoreFailed {
			t.Fatalf("Change() = %v", err)
		}
		if r := trail.only(t); r.Outcome != "store_failed" || !r.Changed || !strings.HasSuffix(stepNames(r), "saving:failed") ||
			strings.Join(r.Accounts, " ") != both {
			t.Fatalf("record = %+v", r)
		}
	})
	t.Run("sync refused", func(t *testing.T) {
		f := newFixture(t)
		trail := &auditTrail{}
		f.eng.Audit = trail.write
		if _, err := f.sync("account2", newPassword); err == nil {
			t.Fatal("Sync() with a wrong password succeeded")
		}
		r := trail.only(t)
		if r.Kind != "sync" || r.Account != "account2" || strings.Join(r.Accounts, " ") != both || r.Outcome != "verification_failed" || r.Changed ||
			!strings.HasPrefix(stepNames(r), "policy:ok checking_") || strings.Contains(stepNames(r), "saving") {
			t.Fatalf("record = %+v", r)
		}
	})
	t.Run("propagate", func(t *testing.T) {
		f := newFixture(t)
		trail := &auditTrail{}
		f.eng.Audit = trail.write
		// Nothing to follow: no record.
		if _, err := f.eng.Propagate(context.Background(), Login{smtpOrigin, "alice"}, f.progress); err != nil || len(trail.records) != 0 {
			t.Fatalf("Propagate() = %v with %d records", err, len(trail.records))
		}
		f.sb.SetPassword("alice", newPassword)
		f.tb.saved[loginKey(popOrigin, "alice")] = newPassword
		if res, err := f.eng.Propagate(context.Background(), Login{popOrigin, "alice"}, f.progress); err != nil || !res.Updated {
			t.Fatalf("Propagate() = %+v, %v", res, err)
		}
		r := trail.only(t)
		if r.Kind != "propagate" || r.Account != "account2" || r.Login != "alice at "+popOrigin || strings.Join(r.Accounts, " ") != both ||
			r.Outcome != "stored" || r.Changed {
			t.Fatalf("record = %+v", r)
		}
	})
	t.Run("change without Thunderbird", func(t *testing.T) {
		f := newFixture(t)
		trail := &auditTrail{}
		f.eng.Audit, f.eng.Thunderbird = trail.write, nil
		res, err := f.eng.Change(context.Background(), Change{Account: &f.tb.accounts[0], Backend: &fakeBackend{sb: f.sb, apply: true},
			Current: oldPassword, New: newPassword}, f.progress)
		if err != nil || res.Stored || !res.Changed {
			t.Fatalf("Change() = %+v, %v", res, err)
		}
		if r := trail.only(t); r.Outcome != "changed" || !r.Changed || r.Account != "account1" {
			t.Fatalf("record = %+v", r)
		}
	})
	t.Run("busy", func(t *testing.T) {
		f := newFixture(t)
		trail := &auditTrail{}
		f.eng.Audit = trail.write
		unlock, err := f.eng.lock([]Login{{smtpOrigin, "alice"}})
		if err != nil {
			t.Fatal(err)
		}
		defer unlock()
		if _, err := f.sync("account2", newPassword); err == nil || err.Code != code.Busy {
			t.Fatalf("Sync() while busy = %v", err)
		}
		if r := trail.only(t); r.Outcome != "busy" || len(r.Steps) != 0 || strings.Join(r.Accounts, " ") != both {
			t.Fatalf("record = %+v", r)
		}
	})
}

// A record that cannot be written changes nothing but AuditFailed.
func TestAuditFailureLeavesTheResult(t *testing.T) {
	run := func(failing bool, password string) (Result, int, error) {
		f := newFixture(t)
		f.sb.SetPassword("alice", newPassword)
		trail := &auditTrail{}
		if failing {
			trail.err = syscall.ENOSPC
		}
		f.eng.Audit = trail.write
		res, err := f.eng.Sync(context.Background(), Trigger{AccountID: "account1"}, password, f.progress)
		if len(trail.records) != 1 {
			t.Fatalf("%d records", len(trail.records))
		}
		return res, len(f.tb.storeCalls()), err
	}
	for _, password := range []string{newPassword, oldPassword} {
		good, goodStores, goodErr := run(false, password)
		bad, badStores, badErr := run(true, password)
		if good.AuditFailed || !bad.AuditFailed {
			t.Fatalf("AuditFailed = %v without, %v with a failing log", good.AuditFailed, bad.AuditFailed)
		}
		bad.AuditFailed = false
		if good.Stored != bad.Stored || good.Changed != bad.Changed || goodStores != badStores ||
			!reflect.DeepEqual(good.Accounts, bad.Accounts) ||
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
	f.sync("account1", canaryNew)
	f.sync("account1", canaryOld)
	f.tb.onStore = func([]Write) ([]Written, error) { return nil, errors.New("gone " + canaryNew) } // even an error text from the store
	f.sync("account1", canaryNew)
	f.tb.onStore = nil
	f.sb.SetPassword("alice", canaryOld)
	f.tb.saved[loginKey(imapOrigin, "alice")] = canaryOld
	f.eng.Propagate(context.Background(), Login{imapOrigin, "alice"}, f.progress) // propagated
	if len(trail.records) != 8 {
		t.Fatalf("%d records, want 8", len(trail.records))
	}
	if r := trail.records[7]; r.Kind != "propagate" || r.Outcome != "stored" {
		t.Fatalf("propagate record %+v", r)
	}
	b, _ := json.Marshal(trail.records)
	if strings.Contains(string(b), "canary") {
		t.Fatalf("a password reached the audit records: %s", b)
	}
}
