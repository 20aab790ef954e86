//go:build integration

package integration

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/provider"
	"github.com/credsync/credsync/internal/verify"
)

// TestLDAPBackend changes bob's password in slapd with RFC 3062 and checks
// the result where it matters: Dovecot's IMAP and Postfix's SMTP AUTH, which
// authenticate against the directory.
func TestLDAPBackend(t *testing.T) {
	s := needStack(t)
	const user = "bob"
	original := s.Password(user)
	t.Cleanup(func() { s.resetLDAPPassword(t, user, original) })
	backend := lookup(t, "ldap")
	template := "/uid=%n," + s.Get("MAILSTACK_LDAP_PEOPLE")
	startTLS := "ldap://" + s.Addr("LDAP") + template
	implicit := "ldaps://" + s.Addr("LDAPS") + template
	req := func(url, current, next string) provider.Request {
		return provider.Request{Username: user + "@example.test", Current: current, New: next, URL: url, Roots: s.Roots}
	}

	const next, third = "Bob-New-Pass-2", "Bob-Third-Pass-3"
	if err := change(backend, req(startTLS, original, next)); err != nil {
		t.Fatalf("change over StartTLS: %v", err)
	}
	expectLogins(t, s, user, original, verify.AuthFailed)
	expectLogins(t, s, user, next, verify.OK)

	expectKind(t, change(backend, req(startTLS, original, third)), provider.WrongCurrent, "")
	expectKind(t, change(backend, req(implicit, next, "short12")), provider.Rejected, "quality") // 7 characters: ppolicy wants 8; 6 or more, so the server's words are kept
	expectKind(t, change(backend, provider.Request{Username: user, Current: next, New: third, URL: implicit, Roots: x509.NewCertPool()}), provider.Unreachable, "TLS")
	expectKind(t, change(backend, req("ldaps://"+closedAddr(t)+template, next, third)), provider.Unreachable, "")
	expectLogins(t, s, user, next, verify.OK) // none of these changed anything

	if err := change(backend, req(implicit, next, third)); err != nil {
		t.Fatalf("change over ldaps: %v", err)
	}
	expectLogins(t, s, user, next, verify.AuthFailed)
	expectLogins(t, s, user, third, verify.OK)
}

// TestRoundcubeBackend changes carol's password through Roundcube's password
// plugin (ldap_exop driver) and checks it on IMAP and SMTP.
func TestRoundcubeBackend(t *testing.T) {
	s := needStack(t)
	url := s.Get("MAILSTACK_ROUNDCUBE_URL")
	if url == "" {
		t.Skip("the mail stack runs without Roundcube: start it with `scripts/mailstack start --with-roundcube`")
	}
	const user = "carol"
	original := s.Password(user)
	t.Cleanup(func() { s.resetLDAPPassword(t, user, original) })
	backend := lookup(t, "roundcube")
	req := func(current, next string) provider.Request {
		return provider.Request{Username: user + "@example.test", Current: current, New: next, URL: url, Roots: s.Roots}
	}

	const next = "Carol-New-Pass-2"
	expectKind(t, change(backend, req("Wrong-Pass-1", next)), provider.WrongCurrent, "")
	expectKind(t, change(backend, req(original, "short12")), provider.Rejected, "at least 8") // 7 characters: the plugin wants 8
	expectLogins(t, s, user, original, verify.OK)

	if err := change(backend, req(original, next)); err != nil {
		t.Fatalf("change through Roundcube: %v", err)
	}
	expectLogins(t, s, user, original, verify.AuthFailed)
	expectLogins(t, s, user, next, verify.OK)
}

func lookup(t *testing.T, name string) provider.Backend {
	t.Helper()
	b, ok := provider.Lookup(name)
	if !ok {
		t.Fatalf("no %q back-end in the registry", name)
	}
	return b
}

func change(b provider.Backend, r provider.Request) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return b.Change(ctx, r)
}

func expectKind(t *testing.T, err error, want provider.Kind, detail string) {
	t.Helper()
	var e *provider.Error
	switch {
	case !errors.As(err, &e):
		t.Errorf("Change() = %v, want a %s error", err, want)
	case e.Kind != want:
		t.Errorf("Change() = %v, want kind %s", err, want)
	case detail != "" && !strings.Contains(err.Error(), detail):
		t.Errorf("Change() = %v, want it to mention %q", err, detail)
	}
}

// expectLogins logs in once to IMAP (implicit TLS) and once to SMTP
// (submission, STARTTLS) with password and expects outcome from both.
func expectLogins(t *testing.T, s *mailStack, user, password string, want verify.Outcome) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	in := s.ep(endpoint.IMAP, endpoint.TLS, "IMAPS", user+"@example.test")
	out := s.ep(endpoint.SMTP, endpoint.STARTTLS, "SUBMISSION", user+"@example.test")
	rin, rout := verify.Both(ctx, &in, &out, password, verify.Trust{Roots: s.Roots})
	if rin.Outcome != want || rout.Outcome != want {
		t.Errorf("logins as %s: IMAP %s (%s), SMTP %s (%s); want %s for both", user, rin.Outcome, rin.Detail, rout.Outcome, rout.Detail, want)
	}
}
