package flow

import (
	"context"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/credsync/credsync/internal/policy"
	"github.com/credsync/credsync/internal/provider"
)

// rulesBackend is a fakeBackend that publishes rules.
type rulesBackend struct {
	fakeBackend
	rules *policy.Rules
}

func (b *rulesBackend) Info() provider.Info {
	return provider.Info{Name: "fake", NeedsCurrent: true, Rules: b.rules}
}

func TestChangeAppliesBackendRules(t *testing.T) {
	rules := &policy.Rules{MinLength: 8, NeedsUpper: true, NeedsDigit: true, NeedsSpecial: true, Specials: "!#$"}
	for next, rule := range map[string]string{
		"Ab1!":           "too_short",
		"alllower-1!":    "bad_character", // '-' is not in the list
		"alllowercase1!": "needs_upper",
		"NoDigitsHere!":  "needs_digit",
	} {
		f := newFixture(t)
		b := &rulesBackend{fakeBackend: fakeBackend{sb: f.sb, apply: true}, rules: rules}
		_, err := f.change(b, oldPassword, next)
		if err == nil || err.Code != PolicyViolation || err.Rule != rule || b.calls != 0 {
			t.Fatalf("Change(%q) = %+v with %d calls; want rule %s before any call", next, err, b.calls, rule)
		}
		if strings.Contains(err.Message, next) {
			t.Fatalf("the message %q carries the password", err.Message)
		}
	}
	f := newFixture(t)
	b := &rulesBackend{fakeBackend: fakeBackend{sb: f.sb, apply: true}, rules: rules}
	if res, err := f.change(b, oldPassword, "Password1!#"); err != nil || !res.Stored {
		t.Fatalf("Change(valid) = %+v, %+v", res, err)
	}
}

// The provider's precise refusals keep their own codes, and a named rule.
func TestChangeProviderKinds(t *testing.T) {
	for _, c := range []struct {
		err  *provider.Error
		code Code
		rule string
	}{
		{&provider.Error{Kind: provider.PageNotRecognised, Detail: "no login form"}, PageNotRecognised, ""},
		{&provider.Error{Kind: provider.RecentlyUsed}, RecentlyUsed, ""},
		{&provider.Error{Kind: provider.TooRecent}, ChangedTooRecently, ""},
		{&provider.Error{Kind: provider.Locked}, AccountLocked, ""},
		{&provider.Error{Kind: provider.Rejected, Rule: "needs_special"}, BackendRejected, "needs_special"},
	} {
		t.Run(string(c.code), func(t *testing.T) {
			f := newFixture(t)
			res, err := f.change(&fakeBackend{sb: f.sb, err: c.err}, oldPassword, newPassword)
			if err == nil || err.Code != c.code || err.Rule != c.rule || err.Changed || res.Changed {
				t.Fatalf("Change() = %+v; want %s %q", err, c.code, c.rule)
			}
			if len(f.sb.Logins()) != 0 || len(f.store.accounts) != 0 {
				t.Fatal("a refusal was verified or stored")
			}
		})
	}
	if string(PageNotRecognised) != string(provider.PageNotRecognised) || string(RecentlyUsed) != string(provider.RecentlyUsed) ||
		string(ChangedTooRecently) != string(provider.TooRecent) || string(AccountLocked) != string(provider.Locked) {
		t.Fatal("flow codes and provider kinds differ")
	}
}

// Without a Store (the command line) the flow ends verified, not stored.
func TestChangeWithoutStore(t *testing.T) {
	f := newFixture(t)
	f.eng.Store = nil
	res, err := f.change(&fakeBackend{sb: f.sb, apply: true}, oldPassword, newPassword)
	if err != nil || !res.Changed || res.Stored {
		t.Fatalf("Change() = %+v, %+v; want changed, not stored", res, err)
	}
	for _, s := range f.steps {
		if strings.HasPrefix(s, "saving") {
			t.Fatalf("steps %v include saving", f.steps)
		}
	}
	if n := len(f.sb.Logins()); n != 2 {
		t.Fatalf("%d logins; want one per server", n)
	}
	// A refused verification is still an error.
	f = newFixture(t)
	f.eng.Store = nil
	f.acct.Outgoing.Username = "bob"
	if _, err := f.change(&fakeBackend{sb: f.sb, apply: true}, oldPassword, newPassword); err == nil || err.Code != VerificationFailed || !err.Changed {
		t.Fatalf("Change() = %+v; want verification_failed", err)
	}
	// Sync exists only to store.
	f = newFixture(t)
	f.eng.Store = nil
	f.sb.SetPassword("alice", newPassword)
	if _, err := f.eng.Sync(context.Background(), f.acct, newPassword, f.progress); err == nil || err.(*Error).Code != StoreFailed {
		t.Fatalf("Sync() = %v; want store_failed", err)
	}
}

// The host does not estimate strength (the popup does): a guessable new
// password that breaks no rule is changed, and the report holds no more
// than the breach check's outcome.
func TestChangeDoesNotEstimateStrength(t *testing.T) {
	f := newFixture(t)
	b := &fakeBackend{sb: f.sb, apply: true}
	res, err := f.change(b, oldPassword, oldPassword+"2")
	if err != nil || b.calls != 1 || res.Policy != (policy.Report{Breach: policy.BreachOff}) {
		t.Fatalf("Change(current+2) = %+v, %+v with %d back-end calls", res, err, b.calls)
	}
}

// The breach check asks a local range API over TLS, only with the prefix.
func TestChangeBreachCheck(t *testing.T) {
	const breached = "Breached-Passw0rd!"
	sum := sha1.Sum([]byte(breached))
	hash := strings.ToUpper(hex.EncodeToString(sum[:]))
	var paths []string
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path+" padding="+r.Header.Get("Add-Padding"))
		if r.URL.Path == "/range/"+hash[:5] {
			fmt.Fprintf(w, "%s:42\r\n", hash[5:])
		}
		fmt.Fprintf(w, "%035X:0\r\n", 7)
	}))
	defer api.Close()
	roots := x509.NewCertPool()
	roots.AddCert(api.Certificate())
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if host, _, _ := net.SplitHostPort(addr); !net.ParseIP(host).IsLoopback() {
				return nil, fmt.Errorf("test refuses to dial %s", addr)
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}

	f := newFixture(t)
	f.eng.Policy.Breach = &policy.Breach{BaseURL: api.URL, Client: client}
	b := &fakeBackend{sb: f.sb, apply: true}
	if _, err := f.change(b, oldPassword, breached); err == nil || err.Rule != "breached" || b.calls != 0 {
		t.Fatalf("Change(breached) = %+v", err)
	}
	res, err := f.change(b, oldPassword, newPassword)
	if err != nil || res.Policy.Breach != policy.BreachNotListed {
		t.Fatalf("Change(not listed) = %+v, %+v", res, err)
	}
	if len(paths) != 2 || paths[0] != "/range/"+hash[:5]+" padding=true" {
		t.Fatalf("requests %v", paths)
	}
}
