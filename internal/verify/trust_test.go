package verify_test

import (
	"crypto/tls"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/testkit/sandbox"
	"github.com/credsync/credsync/internal/verify"
)

// colonHex writes a fingerprint the way certificate viewers show it.
func colonHex(h string) string {
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, strings.ToUpper(h[i:i+2]))
	}
	return strings.Join(parts, ":")
}

// A self-signed, expired certificate for another host name, accepted only
// through its pin (a Thunderbird certificate exception).
func TestLoginPinnedCertificate(t *testing.T) {
	ca := newTestCA(t)
	cert, sha := ca.issue(t, leafSpec{
		dns:        []string{"mail.example.test"},
		notBefore:  time.Now().Add(-72 * time.Hour),
		notAfter:   time.Now().Add(-24 * time.Hour),
		selfSigned: true,
	})
	sb := startSandbox(t, sandbox.Options{Users: map[string]string{"alice": "pw"}, Certificate: &cert})
	if sb.CertSHA256 != sha {
		t.Fatalf("sandbox.CertSHA256 = %s, want %s", sb.CertSHA256, sha)
	}
	trust := verify.Trust{Roots: sb.CAPool} // the sandbox CA did not sign this certificate
	for _, se := range sandboxEndpoints {
		t.Run(se.name, func(t *testing.T) {
			ep := mkEndpoint(t, se.proto, se.addr(sb), se.sec, "alice")

			before := len(sb.Logins())
			res := verify.Login(testCtx(t, 5*time.Second), ep, "pw", trust)
			wantOutcome(t, res, verify.TLSError) // without the pin

			ep.CertSHA256 = colonHex(sha)
			res = verify.Login(testCtx(t, 5*time.Second), ep, "pw", trust)
			wantOutcome(t, res, verify.OK)
			if l := sb.Logins()[before:]; len(l) != 1 || !l[0].OK {
				t.Fatalf("server saw %+v, want exactly one login", l)
			}

			before = len(sb.Logins())
			ep.CertSHA256 = strings.Repeat("ab", 32)
			res = verify.Login(testCtx(t, 5*time.Second), ep, "pw", trust)
			wantOutcome(t, res, verify.TLSError)
			if !strings.Contains(res.Detail, "does not match the pinned") {
				t.Errorf("Detail = %q", res.Detail)
			}
			if l := sb.Logins()[before:]; len(l) != 0 {
				t.Fatalf("credentials sent with a mismatching pin: %+v", l)
			}
		})
	}
}

// A pin does not get in the way of a certificate that verifies anyway, and
// accepts a CA-issued leaf whose CA is not trusted.
func TestLoginPinWithCASignedCertificate(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{Users: map[string]string{"alice": "pw"}})
	ep := mkEndpoint(t, endpoint.SMTP, sb.Submission, endpoint.STARTTLS, "alice")
	ep.CertSHA256 = sb.CertSHA256
	wantOutcome(t, verify.Login(testCtx(t, 5*time.Second), ep, "pw", verify.Trust{Roots: sb.CAPool}), verify.OK)
	wantOutcome(t, verify.Login(testCtx(t, 5*time.Second), ep, "pw", verify.Trust{Roots: newTestCA(t).pool}), verify.OK)
	if n := len(sb.Logins()); n != 2 {
		t.Fatalf("%d logins, want 2", n)
	}
}

// The second connection verifies against the pinned leaf only: a server
// that presents another certificate then is refused.
func TestLoginPinSecondConnectionStillVerified(t *testing.T) {
	ca := newTestCA(t)
	certA, shaA := ca.issue(t, leafSpec{ips: loopbackIPs, selfSigned: true})
	certB, _ := ca.issue(t, leafSpec{ips: loopbackIPs, selfSigned: true})
	var n atomic.Int32
	cfg := &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		if n.Add(1) == 1 {
			return &certA, nil
		}
		return &certB, nil
	}}
	srv := startFake(t, cfg, true, imapFake{}.handle)
	ep := mkEndpoint(t, endpoint.IMAP, srv.addr, endpoint.TLS, "alice")
	ep.CertSHA256 = shaA
	res := verify.Login(testCtx(t, 5*time.Second), ep, "pw", verify.Trust{Roots: ca.pool})
	wantOutcome(t, res, verify.TLSError)
	t.Logf("detail: %s", res.Detail)
	if c := srv.gotCreds(); len(c) != 0 {
		t.Fatalf("credentials sent: %q", c)
	}
	if got := n.Load(); got != 2 {
		t.Fatalf("%d handshakes, want 2", got)
	}
}

func TestLoginPinnedCertificateWithoutNames(t *testing.T) {
	ca := newTestCA(t)
	cert, sha := ca.issue(t, leafSpec{selfSigned: true})
	srv := startFake(t, &tls.Config{Certificates: []tls.Certificate{cert}}, true, imapFake{}.handle)
	ep := mkEndpoint(t, endpoint.IMAP, srv.addr, endpoint.TLS, "alice")
	ep.CertSHA256 = sha
	res := verify.Login(testCtx(t, 5*time.Second), ep, "pw", verify.Trust{})
	wantOutcome(t, res, verify.TLSError)
	if !strings.Contains(res.Detail, "no DNS name or IP address") {
		t.Errorf("Detail = %q", res.Detail)
	}
	if len(srv.gotCreds()) != 0 {
		t.Fatal("credentials sent")
	}
}
