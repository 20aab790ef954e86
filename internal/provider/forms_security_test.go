package provider

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	sim "github.com/credsync/credsync/internal/testkit/simulators/aruba"
	cpsim "github.com/credsync/credsync/internal/testkit/simulators/cpanel"
	dasim "github.com/credsync/credsync/internal/testkit/simulators/directadmin"
	rcsim "github.com/credsync/credsync/internal/testkit/simulators/roundcube"
)

// Security tests of the back-ends' encodings (SECURITY.md, "Injection"):
// prefixed sec, like their helpers.

// secRequest is one request a back-end sent, as the server received it.
type secRequest struct {
	method, path string
	header       http.Header
	body         []byte
}

// secRecorder is a TLS reverse proxy in front of a provider's server that
// records every request (Location headers are rewritten, so redirects
// within the provider stay behind the recorder).
type secRecorder struct {
	srv  *httptest.Server
	pool *x509.CertPool
	mu   sync.Mutex
	reqs []secRequest
}

func secRecord(t *testing.T, target string, targetPool *x509.CertPool) *secRecorder {
	t.Helper()
	tu, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	r := &secRecorder{}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host, pr.Out.Host = tu.Scheme, tu.Host, tu.Host
		},
		Transport: &http.Transport{TLSClientConfig: newHTTPClient(targetPool).Transport.(*http.Transport).TLSClientConfig},
		ModifyResponse: func(resp *http.Response) error {
			if loc := resp.Header.Get("Location"); loc != "" {
				resp.Header.Set("Location", strings.Replace(loc, "//"+tu.Host, "//"+r.srv.Listener.Addr().String(), 1))
			}
			return nil
		},
	}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(strings.NewReader(string(body)))
		r.mu.Lock()
		r.reqs = append(r.reqs, secRequest{method: req.Method, path: req.URL.RequestURI(), header: req.Header.Clone(), body: body})
		r.mu.Unlock()
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	r.pool = x509.NewCertPool()
	r.pool.AddCert(r.srv.Certificate())
	return r
}

func (r *secRecorder) posts() []secRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []secRequest
	for _, q := range r.reqs {
		if q.method == http.MethodPost {
			out = append(out, q)
		}
	}
	return out
}

func (r *secRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

// secForm parses a form body strictly: every key once.
func secForm(t *testing.T, body []byte) url.Values {
	t.Helper()
	v, err := url.ParseQuery(string(body))
	if err != nil {
		t.Fatalf("the body %q is not a form: %v", body, err)
	}
	for k, vs := range v {
		if len(vs) != 1 {
			t.Fatalf("field %q sent %d times in %q", k, len(vs), body)
		}
	}
	return v
}

// Passwords and user names that break naive form encoding: separators,
// escapes, spaces, line breaks, quotes, non-ASCII, 300 characters.
var secPasswords = []string{
	"New-pw&new=hijack1",
	"Pct%26-plus+=sign1",
	"with space &amp; \"quote\" 'x'",
	"CR\r\nLF-line2",
	"Nön-ASCII-пароль-密码1",
	strings.Repeat("Long-pw-9", 34)[:300],
}

// TestInjectionWebForms changes passwords through the web back-ends whose
// simulators check what they receive (cPanel, DirectAdmin, Aruba PEC),
// behind a recorder. Each change either succeeds with the provider holding
// exactly the new password, every form parsing to the expected fields once
// each with the exact values, or is refused before any request with a named
// rule. (The sandbox back-end's test of the same is in
// internal/testkit/sandbox/backend.)
func TestInjectionWebForms(t *testing.T) {
	const current = "Current-Pass1!"
	for _, user := range []string{"alice@example.org", "a&b=c%20d+e@example.org"} {
		for i, next := range secPasswords {
			name := fmt.Sprintf("%s/password%d", user[:5], i)
			t.Run("cpanel/"+name, func(t *testing.T) {
				s := cpsim.Start(cpsim.Options{Users: map[string]string{user: current}})
				defer s.Close()
				rec := secRecord(t, s.URL, s.CAPool)
				err := cpanel{}.Change(context.Background(), Request{Username: user, Current: current, New: next, URL: rec.srv.URL + "/", Roots: rec.pool})
				if secRefused(t, err, rec, current, next) {
					return
				}
				posts := rec.posts()
				if len(posts) != 1 {
					t.Fatalf("%d POSTs", len(posts))
				}
				local, domain, _ := strings.Cut(user, "@")
				f := secForm(t, posts[0].body)
				if len(f) != 3 || f.Get("email") != local || f.Get("domain") != domain || f.Get("password") != next {
					t.Fatalf("form %q", posts[0].body)
				}
				auth := posts[0].header.Get("Authorization")
				if got, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(auth, "Basic ")); string(got) != user+":"+current {
					t.Fatalf("Authorization %q", auth)
				}
				if got := s.Password(user); got != next {
					t.Fatalf("the panel holds %q, want the new password", got)
				}
			})
			t.Run("directadmin/"+name, func(t *testing.T) {
				s := dasim.Start(dasim.Options{Users: map[string]string{user: current}})
				defer s.Close()
				rec := secRecord(t, s.URL, s.CAPool)
				err := directadmin{}.Change(context.Background(), Request{Username: user, Current: current, New: next, URL: rec.srv.URL + "/", Roots: rec.pool})
				if secRefused(t, err, rec, current, next) {
					return
				}
				posts := rec.posts()
				if len(posts) != 1 {
					t.Fatalf("%d POSTs", len(posts))
				}
				f := secForm(t, posts[0].body)
				if len(f) != 5 || f.Get("email") != user || f.Get("oldpassword") != current || f.Get("password1") != next ||
					f.Get("password2") != next || f.Get("api") != "1" {
					t.Fatalf("form %q", posts[0].body)
				}
				if got := s.Password(user); got != next {
					t.Fatalf("the panel holds %q, want the new password", got)
				}
			})
			for _, v := range sim.Variants {
				t.Run("aruba/"+v.String()+"/"+name, func(t *testing.T) {
					s := sim.Start(sim.Options{Users: map[string]string{user: current}, Variant: v})
					defer s.Close()
					rec := secRecord(t, s.URL, s.CAPool)
					err := aruba{}.Change(context.Background(), Request{Username: user, Current: current, New: next, URL: rec.srv.URL + "/", Roots: rec.pool})
					if secRefused(t, err, rec, current, next) {
						return
					}
					posts := rec.posts()
					if len(posts) != 2 {
						t.Fatalf("%d POSTs, want the login and the change", len(posts))
					}
					login, change := secForm(t, posts[0].body), secForm(t, posts[1].body)
					if !secHasValues(login, user, current) || !secHasValues(change, current, next, next) {
						t.Fatalf("login form %q, change form %q", posts[0].body, posts[1].body)
					}
					if got := s.Password(user); got != next {
						t.Fatalf("the panel holds %q, want the new password", got)
					}
				})
			}
			for _, v := range rcsim.Variants {
				t.Run("roundcube/"+v.String()+"/"+name, func(t *testing.T) {
					s := rcsim.Start(rcsim.Options{Users: map[string]string{user: current}, Variant: v})
					defer s.Close()
					rec := secRecord(t, s.URL, s.CAPool)
					err := roundcube{}.Change(context.Background(), Request{Username: user, Current: current, New: next, URL: rec.srv.URL + "/", Roots: rec.pool})
					btKind(t, err, "", "")
					posts := rec.posts()
					if len(posts) != 2 {
						t.Fatalf("%d POSTs, want the login and the save", len(posts))
					}
					login, save := secForm(t, posts[0].body), secForm(t, posts[1].body)
					if login.Get("_user") != user || login.Get("_pass") != current || login.Get("_token") == "" ||
						save.Get("_curpasswd") != current || save.Get("_newpasswd") != next || save.Get("_confpasswd") != next || save.Get("_token") == "" {
						t.Fatalf("login form %q, save form %q", posts[0].body, posts[1].body)
					}
					if got := s.Password(user); got != next {
						t.Fatalf("Roundcube holds %q, want the new password", got)
					}
				})
			}
		}
	}
}

// TestUnseenMarkupNothingFurther: on every markup variant of the web
// back-ends' simulators, a page after the login that is neither form and
// says nothing stops the back-end — PageNotRecognised, Sent "current" — and
// nothing is posted after the login (the recorder's and the simulator's
// records agree).
func TestUnseenMarkupNothingFurther(t *testing.T) {
	const user, current, next = "alice@example.org", "Current-Pass1!", "Next-Pass2!"
	for _, v := range sim.Variants {
		t.Run("aruba/"+v.String(), func(t *testing.T) {
			s := sim.Start(sim.Options{Users: map[string]string{user: current}, Variant: v, Layout: sim.NoChangeLink})
			defer s.Close()
			rec := secRecord(t, s.URL, s.CAPool)
			err := aruba{}.Change(context.Background(), Request{Username: user, Current: current, New: next, URL: rec.srv.URL + "/", Roots: rec.pool})
			e := btKind(t, err, PageNotRecognised, "", current, next)
			if e.Sent != SentCurrent || len(rec.posts()) != 1 || !slices.Equal(s.Posts(), []string{"/Login/Accedi"}) {
				t.Fatalf("Sent %q, POSTs %d, simulator %v", e.Sent, len(rec.posts()), s.Posts())
			}
		})
	}
	for _, v := range rcsim.Variants {
		t.Run("roundcube/"+v.String(), func(t *testing.T) {
			s := rcsim.Start(rcsim.Options{Users: map[string]string{user: current}, Variant: v})
			defer s.Close()
			s.SetFault(rcsim.LoginInterstitial)
			rec := secRecord(t, s.URL, s.CAPool)
			err := roundcube{}.Change(context.Background(), Request{Username: user, Current: current, New: next, URL: rec.srv.URL + "/", Roots: rec.pool})
			e := btKind(t, err, PageNotRecognised, "", current, next)
			if e.Sent != SentCurrent || len(rec.posts()) != 1 || !slices.Equal(s.Posts(), []string{"login"}) {
				t.Fatalf("Sent %q, POSTs %d, simulator %v", e.Sent, len(rec.posts()), s.Posts())
			}
		})
	}
}

// secRefused accepts a refusal before anything was sent (a rule the
// provider publishes, or a user name it cannot take), and reports whether
// err was one.
func secRefused(t *testing.T, err error, rec *secRecorder, secrets ...string) bool {
	t.Helper()
	if err == nil {
		return false
	}
	e := btKind(t, err, Rejected, KindRule(err), secrets...)
	if n := rec.count(); n != 0 {
		t.Fatalf("refused (%v) after %d requests", e, n)
	}
	t.Logf("refused before sending: %v", err)
	return true
}

// KindRule is the rule a *Error names, for btKind.
func KindRule(err error) string {
	if e, ok := err.(*Error); ok {
		return e.Rule
	}
	return ""
}

// secHasValues: the form's values include want (as a multiset), each a
// whole value.
func secHasValues(f url.Values, want ...string) bool {
	var vals []string
	for _, vs := range f {
		vals = append(vals, vs...)
	}
	for _, w := range want {
		i := slices.Index(vals, w)
		if i < 0 {
			return false
		}
		vals = slices.Delete(vals, i, i+1)
	}
	return true
}

// TestFormsStayOnTheProvidersSite: a provider's answer that redirects a
// form (307/308, which repeat the POST and its body) to another site is not
// followed: the passwords reach only the site the back-end was given.
func TestFormsStayOnTheProvidersSite(t *testing.T) {
	const user, current, next = "alice@example.org", "Current-Pass1!", "Next-Pass2!"
	var mu sync.Mutex
	var stolen []string
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		stolen = append(stolen, r.Method+" "+string(body)+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		w.Write([]byte(`{"ok":true,"status":1}`))
	}))
	defer other.Close()
	for _, code := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		redirect := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			http.Redirect(w, r, other.URL+r.URL.Path, code)
		}))
		pool := x509.NewCertPool()
		pool.AddCert(redirect.Certificate())
		pool.AddCert(other.Certificate())
		for name, b := range map[string]Backend{"cpanel": cpanel{}, "directadmin": directadmin{}, "zimbra": zimbra{}} {
			t.Run(name+"/"+http.StatusText(code), func(t *testing.T) {
				mu.Lock()
				stolen = nil
				mu.Unlock()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				err := b.Change(ctx, Request{Username: user, Current: current, New: next, URL: redirect.URL + "/x", Roots: pool})
				if err == nil {
					t.Fatal("the change succeeded through a redirect to another site")
				}
				btKind(t, err, KindOf(err), KindRule(err), current, next)
				mu.Lock()
				defer mu.Unlock()
				for _, s := range stolen {
					if strings.Contains(s, url.QueryEscape(next)) || strings.Contains(s, next) || strings.Contains(s, url.QueryEscape(current)) || strings.Contains(s, "Basic") {
						t.Fatalf("the passwords were sent to another site: %q", s)
					}
				}
			})
		}
		redirect.Close()
	}
}

// TestInjectionLDAPBindDN: user names that would add RDNs or break out of
// the DN stay one attribute value; the passwords reach the directory
// byte for byte (BER carries any octets).
func TestInjectionLDAPBindDN(t *testing.T) {
	for i, user := range []string{
		"evil,ou=admins", `a+cn=admin`, `x\,y`, `"quoted"`, "  spaced  ", "#hash", "semi;colon", "<angle>=", "élodie", strings.Repeat("u", 300),
	} {
		t.Run(fmt.Sprintf("user%d", i), func(t *testing.T) {
			pki := newFakePKI(t)
			var fake fakeLDAP
			addr := fake.serve(t, pki.server)
			const current, next = "Cur\"rent\\pw,=+;\r\n", "Ne w#pw<>\r\nend"
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := ldapBackend{}.Change(ctx, Request{Username: user, Current: current, New: next,
				URL: "ldaps://" + addr + "/uid=%u,ou=people,dc=example,dc=org", Roots: pki.roots})
			checkKind(t, err, "", "")
			got := fake.seen()
			dn, perr := ldap.ParseDN(got.bindDN)
			if perr != nil || len(dn.RDNs) != 4 || len(dn.RDNs[0].Attributes) != 1 || dn.RDNs[0].Attributes[0].Type != "uid" ||
				dn.RDNs[0].Attributes[0].Value != user {
				t.Fatalf("bind DN %q parses to %v, %v; want uid=<the user name>,ou=people,dc=example,dc=org", got.bindDN, dn, perr)
			}
			if got.bindPW != current || got.old != current || got.new != next {
				t.Fatalf("the directory saw bind %q, old %q, new %q", got.bindPW, got.old, got.new)
			}
		})
	}
}
