package policy

import (
	"context"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// rangeAPI is a local stand-in for the Pwned Passwords range API over TLS.
type rangeAPI struct {
	srv    *httptest.Server
	client *http.Client

	mu       sync.Mutex
	requests []*http.Request
	listed   map[string]int // full upper-case SHA-1 → count
	status   int
	body     string // when set, served as is
}

func newRangeAPI(t *testing.T) *rangeAPI {
	t.Helper()
	a := &rangeAPI{listed: map[string]int{}, status: http.StatusOK}
	a.srv = httptest.NewUnstartedServer(http.HandlerFunc(a.serve))
	a.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes refused on purpose
	a.srv.StartTLS()
	t.Cleanup(a.srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(a.srv.Certificate())
	a.client = &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots},
			// The breach check must never leave this machine in tests.
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				host, _, err := net.SplitHostPort(addr)
				if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
					return nil, fmt.Errorf("test refuses to dial %s", addr)
				}
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
		},
	}
	return a
}

func (a *rangeAPI) list(password string, count int) {
	sum := sha1.Sum([]byte(password))
	a.mu.Lock()
	a.listed[strings.ToUpper(hex.EncodeToString(sum[:]))] = count
	a.mu.Unlock()
}

func (a *rangeAPI) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.requests = append(a.requests, r.Clone(context.Background()))
	if a.status != http.StatusOK {
		w.WriteHeader(a.status)
		return
	}
	if a.body != "" {
		fmt.Fprint(w, a.body)
		return
	}
	prefix, ok := strings.CutPrefix(r.URL.Path, "/range/")
	if !ok || len(prefix) != 5 {
		http.NotFound(w, r)
		return
	}
	// Real answers: upper-case suffixes, CRLF, padding lines with count 0.
	for hash, n := range a.listed {
		if strings.HasPrefix(hash, prefix) {
			fmt.Fprintf(w, "%s:%d\r\n", hash[5:], n)
		}
	}
	if r.Header.Get("Add-Padding") == "true" {
		for i := 0; i < 3; i++ {
			fmt.Fprintf(w, "%035X:0\r\n", i)
		}
	}
}

func (a *rangeAPI) breach() *Breach { return &Breach{BaseURL: a.srv.URL, Client: a.client} }

func TestBreachCount(t *testing.T) {
	api := newRangeAPI(t)
	api.list("password", 9659365)
	n, err := api.breach().Count(context.Background(), "password")
	if err != nil || n != 9659365 {
		t.Fatalf("Count(listed) = %d, %v", n, err)
	}
	n, err = api.breach().Count(context.Background(), "Xq7!not-in-any-list-2026")
	if err != nil || n != 0 {
		t.Fatalf("Count(unlisted) = %d, %v", n, err)
	}
}

// Only the 5-character prefix leaves the machine, with padding asked for.
func TestBreachSendsOnlyThePrefix(t *testing.T) {
	api := newRangeAPI(t)
	const pw = "Only-the-Prefix-1!"
	sum := sha1.Sum([]byte(pw))
	hash := strings.ToUpper(hex.EncodeToString(sum[:]))
	if _, err := api.breach().Count(context.Background(), pw); err != nil {
		t.Fatal(err)
	}
	if len(api.requests) != 1 {
		t.Fatalf("%d requests", len(api.requests))
	}
	r := api.requests[0]
	if r.Method != http.MethodGet || r.URL.Path != "/range/"+hash[:5] || r.URL.RawQuery != "" || r.Header.Get("Add-Padding") != "true" {
		t.Fatalf("request %s %s padding %q", r.Method, r.URL, r.Header.Get("Add-Padding"))
	}
	var all strings.Builder
	fmt.Fprint(&all, r.URL.String())
	for k, v := range r.Header {
		fmt.Fprint(&all, k, v)
	}
	for _, secret := range []string{pw, hash[5:], strings.ToLower(hash[5:]), hash[:6]} {
		if strings.Contains(all.String(), secret) {
			t.Fatalf("the request carries %q", secret)
		}
	}
}

func TestBreachFailures(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
	}{
		{"server error", http.StatusServiceUnavailable, ""},
		{"empty answer", http.StatusOK, "\r\n"},
		{"garbage", http.StatusOK, "<html>rate limited</html>"},
		{"short suffix", http.StatusOK, "ABC:1\r\n"},
		{"bad count", http.StatusOK, strings.Repeat("A", 35) + ":many\r\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			api := newRangeAPI(t)
			api.status, api.body = c.status, c.body
			if n, err := api.breach().Count(context.Background(), "x"); err == nil {
				t.Fatalf("Count() = %d, nil; want an error", n)
			}
		})
	}
	t.Run("untrusted certificate", func(t *testing.T) {
		api := newRangeAPI(t)
		b := api.breach()
		b.Client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool()}}}
		var uerr x509.UnknownAuthorityError
		if _, err := b.Count(context.Background(), "x"); !errors.As(err, &uerr) {
			t.Fatalf("Count() = %v; want an unknown-authority error", err)
		}
	})
}

func TestParseRange(t *testing.T) {
	lines, err := parseRange([]byte("0018A45C4D1DEF81644B54AB7F969B88D65:10\r\n00d4f6e8fa6eecad2a3aa415eec418d38ec:0\n\r\n"))
	if err != nil || len(lines) != 1 || lines[0].suffix != "0018A45C4D1DEF81644B54AB7F969B88D65" || lines[0].count != 10 {
		t.Fatalf("parseRange() = %+v, %v", lines, err)
	}
}

func TestEvaluate(t *testing.T) {
	ctx := context.Background()
	t.Run("defaults check nothing over the network", func(t *testing.T) {
		r, v := Options{}.Evaluate(ctx, "password")
		if v != nil || r.Breach != BreachOff {
			t.Fatalf("Evaluate() = %+v, %v", r, v)
		}
	})
	t.Run("breached", func(t *testing.T) {
		api := newRangeAPI(t)
		api.list("Tr0ub4dor&3-long-enough", 3)
		_, v := Options{Breach: api.breach()}.Evaluate(ctx, "Tr0ub4dor&3-long-enough")
		if v == nil || v.Rule != RuleBreached || strings.Contains(v.Message, "Tr0ub4dor") || len(api.requests) != 1 {
			t.Fatalf("Evaluate() = %v with %d range requests", v, len(api.requests))
		}
	})
	t.Run("not listed", func(t *testing.T) {
		api := newRangeAPI(t)
		r, v := Options{Breach: api.breach()}.Evaluate(ctx, "vQ8#mT2!zL6@pR4")
		if v != nil || r.Breach != BreachNotListed || len(api.requests) != 1 {
			t.Fatalf("Evaluate() = %+v, %v with %d range requests", r, v, len(api.requests))
		}
	})
	t.Run("API down does not stop the change", func(t *testing.T) {
		api := newRangeAPI(t)
		api.status = http.StatusInternalServerError
		r, v := Options{Breach: api.breach()}.Evaluate(ctx, "vQ8#mT2!zL6@pR4")
		if v != nil || r.Breach != BreachUnavailable || r.BreachError == "" {
			t.Fatalf("Evaluate() = %+v, %v", r, v)
		}
	})
}
