package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/provider"
)

func expiryCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"expiry"}, args...), strings.NewReader(stdin), &stdout, &stderr, noTerminal)
	return code, stdout.String(), stderr.String()
}

func TestExpiryCommand(t *testing.T) {
	in := "--incoming=imaps://bob%40example.org@127.0.0.1:993"
	// A back-end that cannot know: unknown, with the reason on stderr.
	code, stdout, stderr := expiryCLI(t, "pw-Canary-1\n", in, "--backend", "cpanel", "--backend-url", "https://127.0.0.1:1", "--password-stdin")
	if code != exitOK || stdout != "unknown\nsource: none\n" || !strings.Contains(stderr, "cannot read") {
		t.Fatalf("cpanel: %d %q %q", code, stdout, stderr)
	}
	// kpasswd without the directory's URL: unknown, saying how to add it.
	code, stdout, stderr = expiryCLI(t, "pw-Canary-1\n", in, "--backend", "kpasswd", "--backend-url", "kpasswd://127.0.0.1:1?realm=EXAMPLE.ORG", "--password-stdin")
	if code != exitOK || stdout != "unknown\nsource: none\n" || !strings.Contains(stderr, "ldap=") {
		t.Fatalf("kpasswd: %d %q %q", code, stdout, stderr)
	}
	// Unreachable: exit 1, nothing on stdout.
	code, stdout, stderr = expiryCLI(t, "pw-Canary-1\n", in, "--backend", "ad", "--backend-url", "ldaps://127.0.0.1:1", "--password-stdin")
	if code != exitFailed || stdout != "" || !strings.HasPrefix(stderr, "credsync expiry: backend_unreachable: ") || strings.Count(stderr, "_unreachable") != 1 {
		t.Fatalf("unreachable: %d %q %q", code, stdout, stderr)
	}
	if strings.Contains(stdout+stderr, "pw-Canary-1") {
		t.Error("the password was printed")
	}
}

func TestExpiryCommandTerminal(t *testing.T) {
	var prompts []string
	secret := func(prompt string) (string, error) { prompts = append(prompts, prompt); return "pw", nil }
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"expiry", "--incoming", "imaps://bob@127.0.0.1", "--backend", "zimbra", "--backend-url", "https://127.0.0.1:1"}, strings.NewReader(""), &stdout, &stderr, secret)
	if code != exitOK || stdout.String() != "unknown\nsource: none\n" || len(prompts) != 1 {
		t.Fatalf("run() = %d %q %q, prompts %v", code, stdout.String(), stderr.String(), prompts)
	}
}

func TestExpiryCommandUsageErrors(t *testing.T) {
	for name, args := range map[string][]string{
		"no incoming":        {"--backend", "ad", "--backend-url", "ldaps://127.0.0.1", "--password-stdin"},
		"smtp as incoming":   {"--incoming", "smtps://bob@127.0.0.1", "--backend", "ldap", "--backend-url", "ldaps://127.0.0.1/uid=%n", "--password-stdin"},
		"no back-end":        {"--incoming", "imaps://bob@127.0.0.1", "--password-stdin"},
		"unknown back-end":   {"--incoming", "imaps://bob@127.0.0.1", "--backend", "nope", "--password-stdin"},
		"no back-end URL":    {"--incoming", "imaps://bob@127.0.0.1", "--backend", "ad", "--password-stdin"},
		"positional":         {"--incoming", "imaps://bob@127.0.0.1", "--backend", "ad", "--backend-url", "ldaps://127.0.0.1", "hunter2"},
		"missing CA file":    {"--incoming", "imaps://bob@127.0.0.1", "--backend", "ad", "--backend-url", "ldaps://127.0.0.1", "--ca-file", "/nonexistent", "--password-stdin"},
		"no terminal, stdin": {"--incoming", "imaps://bob@127.0.0.1", "--backend", "ad", "--backend-url", "ldaps://127.0.0.1"},
		"negative timeout":   {"--incoming", "imaps://bob@127.0.0.1", "--backend", "ad", "--backend-url", "ldaps://127.0.0.1", "--timeout", "-1s", "--password-stdin"},
		"password flag":      {"--password", "x"},
	} {
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := expiryCLI(t, "pw\n", args...)
			if code != exitUsage || stdout != "" || stderr == "" || strings.Contains(stderr, "hunter2") {
				t.Fatalf("run() = %d, stdout %q, stderr %q", code, stdout, stderr)
			}
		})
	}
	if code, _, _ := expiryCLI(t, "", "--incoming", "imaps://bob@127.0.0.1", "--backend", "ad", "--backend-url", "ldaps://127.0.0.1", "--password-stdin"); code != exitUsage {
		t.Errorf("empty stdin: exit %d", code)
	}
}

func TestExpiryLine(t *testing.T) {
	at := time.Date(2027, 1, 12, 10, 30, 0, 0, time.FixedZone("CET", 3600))
	for x, want := range map[provider.ExpiryState]string{
		provider.Expires: "expires: 2027-01-12T09:30:00Z", provider.Never: "never", provider.Expired: "expired",
		provider.MustChange: "must_change", provider.Unknown: "unknown",
	} {
		if got := expiryLine(provider.Expiry{State: x, At: at}); got != want {
			t.Errorf("expiryLine(%s) = %q, want %q", x, got, want)
		}
	}
}
