package verify_test

import (
	"sync"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/verify"
)

// Each server waits until the other one has a connection before it greets:
// a sequential Both would stall the first side and fail it.
func TestBothRunsInParallel(t *testing.T) {
	pki := newFakePKI(t)
	imapArrived, smtpArrived := make(chan struct{}), make(chan struct{})
	var onceI, onceS sync.Once
	barrier := func(mine chan struct{}, once *sync.Once, other chan struct{}, refuse string) func(*fakeConn) bool {
		return func(fc *fakeConn) bool {
			once.Do(func() { close(mine) })
			select {
			case <-other:
				return true
			case <-time.After(3 * time.Second):
				fc.send(refuse)
				return false
			}
		}
	}
	in := startFake(t, pki.server, true, imapFake{before: barrier(imapArrived, &onceI, smtpArrived, "* BYE the other side never connected")}.handle)
	out := startFake(t, pki.server, true, smtpFake{before: barrier(smtpArrived, &onceS, imapArrived, "554 the other side never connected")}.handle)

	inEP := mkEndpoint(t, endpoint.IMAP, in.addr, endpoint.TLS, "alice")
	outEP := mkEndpoint(t, endpoint.SMTP, out.addr, endpoint.TLS, "alice")
	start := time.Now()
	rin, rout := verify.Both(testCtx(t, 10*time.Second), &inEP, &outEP, "pw", pki.trust)
	wantOutcome(t, rin, verify.OK)
	wantOutcome(t, rout, verify.OK)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Both took %v", d)
	}
	if len(in.gotCreds()) != 1 || len(out.gotCreds()) != 1 {
		t.Fatalf("attempts: imap %d, smtp %d; want one each", len(in.gotCreds()), len(out.gotCreds()))
	}
}

func TestBothOneSide(t *testing.T) {
	pki := newFakePKI(t)
	srv := startFake(t, pki.server, true, smtpFake{}.handle)
	ep := mkEndpoint(t, endpoint.SMTP, srv.addr, endpoint.TLS, "alice")
	rin, rout := verify.Both(testCtx(t, 5*time.Second), nil, &ep, "pw", pki.trust)
	if rin != (verify.Result{}) {
		t.Errorf("incoming = %+v, want the zero Result", rin)
	}
	wantOutcome(t, rout, verify.OK)
}
