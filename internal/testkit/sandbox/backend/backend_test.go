package backend

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/provider"
	"github.com/credsync/credsync/internal/testkit/sandbox"
)

// Importing the package registers the back-end, once.
func TestRegistered(t *testing.T) {
	b, ok := provider.Lookup("sandbox")
	if !ok {
		t.Fatal("the sandbox back-end is not registered")
	}
	if _, ok := b.(Sandbox); !ok {
		t.Fatalf("provider.Lookup(sandbox) = %T", b)
	}
	n := 0
	for _, info := range provider.All() {
		if info.Name == "sandbox" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("provider.All() lists the sandbox %d times", n)
	}
}

// The sandbox back-end sends the passwords only over https: an http:// URL
// (even to this machine) is refused before anything is sent.
func TestRefusesPlainHTTP(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	for _, u := range []string{srv.URL + "/change", "ftp://127.0.0.1/x", "https://user:pw@127.0.0.1/x", "//127.0.0.1/x"} {
		err := Sandbox{}.Change(context.Background(), provider.Request{Username: "alice", Current: "Old-pw-1", New: "New-pw-2", URL: u})
		wantKind(t, err, provider.Unreachable, "Old-pw-1", "New-pw-2")
	}
	if hits.Load() != 0 {
		t.Fatalf("%d requests reached a plain-http server", hits.Load())
	}
}

// A provider slower than the deadline: the change gives up at the
// context's deadline, reporting that the outcome is unknown (the request
// was sent), never waiting forever.
func TestSlowProvider(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := Sandbox{}.Change(ctx, provider.Request{Username: "alice", Current: "Old-pw-1", New: "New-pw-2", URL: srv.URL + "/change", Roots: poolOf(srv)})
	wantKind(t, err, provider.OutcomeUnknown, "Old-pw-1", "New-pw-2")
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("returned after %s", d)
	}
}

// Passwords and user names that break naive form encoding reach the
// sandbox byte for byte, in one POST of exactly three fields (SECURITY.md,
// "Injection"; the other web back-ends' test is in internal/provider).
func TestInjectionForm(t *testing.T) {
	const current = "Current-Pass1!"
	passwords := []string{
		"New-pw&new=hijack1",
		"Pct%26-plus+=sign1",
		"with space &amp; \"quote\" 'x'",
		"CR\r\nLF-line2",
		"Nön-ASCII-пароль-密码1",
		strings.Repeat("Long-pw-9", 34)[:300],
	}
	for _, user := range []string{"alice@example.org", "a&b=c%20d+e@example.org"} {
		for _, next := range passwords {
			var mu sync.Mutex
			var bodies []string
			rec := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				bodies = append(bodies, r.Method+" "+string(b))
				mu.Unlock()
				w.Write([]byte(`{"ok":true}`))
			}))
			err := Sandbox{}.Change(context.Background(), provider.Request{Username: user, Current: current, New: next, URL: rec.URL + "/change", Roots: poolOf(rec)})
			rec.Close()
			wantKind(t, err, "")
			if len(bodies) != 1 || !strings.HasPrefix(bodies[0], "POST ") {
				t.Fatalf("requests %q; want one POST", bodies)
			}
			f, err := url.ParseQuery(strings.TrimPrefix(bodies[0], "POST "))
			if err != nil || len(f) != 3 || len(f["username"]) != 1 || len(f["current"]) != 1 || len(f["new"]) != 1 ||
				f.Get("username") != user || f.Get("current") != current || f.Get("new") != next {
				t.Fatalf("form %q (%v)", bodies[0], err)
			}

			sb, err := sandbox.Start(sandbox.Options{Users: map[string]string{user: current}})
			if err != nil {
				t.Fatal(err)
			}
			err = Sandbox{}.Change(context.Background(), provider.Request{Username: user, Current: current, New: next, URL: sb.ChangeURL, Roots: sb.CAPool})
			wantKind(t, err, "")
			// The sandbox has no getter: its change endpoint accepts next
			// as the current password only if it is the password.
			err = Sandbox{}.Change(context.Background(), provider.Request{Username: user, Current: next, New: next, URL: sb.ChangeURL, Roots: sb.CAPool})
			sb.Close()
			if err != nil {
				t.Fatalf("the sandbox does not hold the new password for %q (%v)", user, err)
			}
		}
	}
}

// A redirect (307/308 repeat the POST and its body) to another site is not
// followed: the passwords reach only the site the back-end was given.
func TestStaysOnTheSite(t *testing.T) {
	const current, next = "Current-Pass1!", "Next-Pass2!"
	var stolen atomic.Int32
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stolen.Add(1)
		w.Write([]byte(`{"ok":true}`))
	}))
	defer other.Close()
	for _, code := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		redirect := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			http.Redirect(w, r, other.URL+r.URL.Path, code)
		}))
		pool := poolOf(redirect)
		pool.AddCert(other.Certificate())
		err := Sandbox{}.Change(context.Background(), provider.Request{Username: "alice", Current: current, New: next, URL: redirect.URL + "/change", Roots: pool})
		redirect.Close()
		if err == nil {
			t.Fatalf("HTTP %d: the change succeeded through a redirect to another site", code)
		}
		wantKind(t, err, provider.KindOf(err), current, next)
	}
	if n := stolen.Load(); n != 0 {
		t.Fatalf("%d requests reached the other site", n)
	}
}

// wantKind fails unless err is a *provider.Error of kind want (nil when
// want is empty) whose text carries none of secrets.
func wantKind(t *testing.T, err error, want provider.Kind, secrets ...string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("Change() = %v; want success", err)
		}
		return
	}
	var e *provider.Error
	if !errors.As(err, &e) || e.Kind != want {
		t.Fatalf("Change() = %v (%T); want a *provider.Error of kind %s", err, err, want)
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("the error %q carries a password", err)
		}
	}
}

func poolOf(srv *httptest.Server) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(srv.Certificate())
	return p
}

// The sandbox back-end reads the expiry the sandbox was given: one check,
// recorded as a login of protocol "expiry".
func TestExpiry(t *testing.T) {
	at := time.Date(2027, 1, 12, 9, 30, 0, 0, time.UTC)
	sb, err := sandbox.Start(sandbox.Options{
		Users:     map[string]string{"alice": "pw-alice-1", "bob": "pw-bob-1", "carol": "pw-carol-1"},
		ExpiresAt: map[string]time.Time{"alice": at},
		Expired:   []string{"carol"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	b, _ := provider.Lookup("sandbox")
	read := func(user, pw string) (provider.Expiry, error) {
		return provider.ReadExpiry(context.Background(), b, provider.Request{Username: user, Current: pw, URL: sb.ChangeURL, Roots: sb.CAPool})
	}
	if x, err := read("alice", "pw-alice-1"); err != nil || x.State != provider.Expires || !x.At.Equal(at) || x.Source != "sandbox" {
		t.Errorf("alice: %+v, %v", x, err)
	}
	if x, err := read("bob", "pw-bob-1"); err != nil || x.State != provider.Never {
		t.Errorf("bob: %+v, %v", x, err)
	}
	if x, err := read("carol", "pw-carol-1"); err != nil || x.State != provider.Expired {
		t.Errorf("carol: %+v, %v", x, err)
	}
	if _, err := read("alice", "wrong"); provider.KindOf(err) != provider.WrongCurrent {
		t.Errorf("wrong password: %v", err)
	}
	logins := sb.Logins()
	if len(logins) != 4 || logins[0].Protocol != "expiry" || !logins[0].OK || logins[3].OK {
		t.Errorf("logins %+v, want four expiry checks", logins)
	}
}
