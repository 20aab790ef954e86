// Package simhttp is what the HTTPS back-end simulators share: a TLS test
// server on 127.0.0.1 that logs nothing, the CA pool that trusts it, a
// password table with the fault to inject next, and the lost answer.
package simhttp

import (
	"crypto/x509"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"sync"
)

// Base is embedded in a simulator's Server; F is the simulator's Fault.
type Base[F any] struct {
	URL    string         // the simulated endpoint: https://127.0.0.1:port and a path
	CAPool *x509.CertPool // trusts the server's certificate

	// Mu guards Users, Fault and the simulator's own state; handlers hold
	// it for the whole request, so a change and its fault are one step.
	Mu    sync.Mutex
	Users map[string]string // account → password
	Fault F

	srv *httptest.Server
}

// Start copies users into b and serves h over TLS; b.URL is the server's
// address followed by path.
func Start[F any](b *Base[F], h http.Handler, path string, users map[string]string) {
	b.Users = map[string]string{}
	maps.Copy(b.Users, users)
	b.srv = httptest.NewUnstartedServer(h)
	b.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	b.srv.StartTLS()
	b.URL = b.srv.URL + path
	b.CAPool = x509.NewCertPool()
	b.CAPool.AddCert(b.srv.Certificate())
}

// Close stops the server.
func (b *Base[F]) Close() { b.srv.Close() }

// SetFault breaks the next answers.
func (b *Base[F]) SetFault(f F) { b.Mu.Lock(); b.Fault = f; b.Mu.Unlock() }

// Password returns an account's current password.
func (b *Base[F]) Password(user string) string {
	b.Mu.Lock()
	defer b.Mu.Unlock()
	return b.Users[user]
}

// Drop closes the connection without answering, as when the answer is lost
// on the way back.
func Drop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}
