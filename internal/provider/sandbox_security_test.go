package provider

import (
	"context"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// The sandbox back-end sends the passwords only over https: an http:// URL
// (even to this machine) is refused before anything is sent.
func TestSandboxBackendRefusesPlainHTTP(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	for _, u := range []string{srv.URL + "/change", "ftp://127.0.0.1/x", "https://user:pw@127.0.0.1/x", "//127.0.0.1/x"} {
		err := sandbox{}.Change(context.Background(), Request{Username: "alice", Current: "Old-pw-1", New: "New-pw-2", URL: u})
		btKind(t, err, Unreachable, "", "Old-pw-1", "New-pw-2")
	}
	if hits.Load() != 0 {
		t.Fatalf("%d requests reached a plain-http server", hits.Load())
	}
}

// A provider slower than the deadline: the change gives up at the
// context's deadline, reporting that the outcome is unknown (the request
// was sent), never waiting forever.
func TestSandboxBackendSlowProvider(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := sandbox{}.Change(ctx, Request{Username: "alice", Current: "Old-pw-1", New: "New-pw-2", URL: srv.URL + "/change", Roots: poolOf(srv)})
	btKind(t, err, OutcomeUnknown, "", "Old-pw-1", "New-pw-2")
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("returned after %s", d)
	}
}

func poolOf(srv *httptest.Server) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(srv.Certificate())
	return p
}
