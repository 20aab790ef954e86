package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/credsync/credsync/internal/testkit/sandbox"
	"github.com/credsync/credsync/internal/testkit/wine"
)

const extensionID = "credsync@credsync.org"

func noTerminal(string) (string, error) { return "", errors.New("no terminal in tests") }

func writeManifest(t *testing.T, allowed string) string {
	t.Helper()
	path := filepath.Join(wine.TempDir(t), "credsync.json")
	body := `{"name":"credsync","description":"t","path":"/usr/bin/credsync","type":"stdio","allowed_extensions":["` + allowed + `"]}`
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func frame(body string) []byte {
	return append(binary.NativeEndian.AppendUint32(nil, uint32(len(body))), body...)
}

func TestHostRefusesExtensionNotInManifest(t *testing.T) {
	manifest := writeManifest(t, extensionID)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{manifest, "evil@example.org"}, bytes.NewReader(frame(`{"id":"1","type":"hello"}`)), &stdout, &stderr, noTerminal)
	if code != exitNotAllow || stdout.Len() != 0 || !strings.Contains(stderr.String(), "evil@example.org") {
		t.Fatalf("run() = %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}

func TestHostRefusesUnreadableManifest(t *testing.T) {
	var stdout, stderr bytes.Buffer
	missing := filepath.Join(wine.TempDir(t), "missing.json")
	if code := run(context.Background(), []string{missing, extensionID}, strings.NewReader(""), &stdout, &stderr, noTerminal); code != exitNotAllow || stdout.Len() != 0 {
		t.Fatalf("run() = %d, stdout %q", code, stdout.String())
	}
}

func TestHostServesAllowedExtension(t *testing.T) {
	manifest := writeManifest(t, extensionID)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{manifest, extensionID}, bytes.NewReader(frame(`{"id":"1","type":"hello"}`)), &stdout, &stderr, noTerminal)
	if code != exitOK {
		t.Fatalf("run() = %d, stderr %q", code, stderr.String())
	}
	out := stdout.Bytes()
	if len(out) < 4 || int(binary.NativeEndian.Uint32(out)) != len(out)-4 || !bytes.Contains(out, []byte(`"status":"ok"`)) {
		t.Fatalf("stdout is not exactly one reply frame: %q", out)
	}
}

func startSandbox(t *testing.T) (*sandbox.Sandbox, string) {
	t.Helper()
	sb, err := sandbox.Start(sandbox.Options{Users: map[string]string{"alice@example.org": "s3cret-Pass"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	ca := filepath.Join(wine.TempDir(t), "ca.pem")
	if err := os.WriteFile(ca, sb.CAPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return sb, ca
}

func verifyCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"verify"}, args...), strings.NewReader(stdin), &stdout, &stderr, noTerminal)
	return code, stdout.String(), stderr.String()
}

func TestVerifyCommand(t *testing.T) {
	sb, ca := startSandbox(t)
	in := "--incoming=imaps://alice%40example.org@" + sb.IMAPS
	out := "--outgoing=smtp://alice%40example.org@" + sb.Submission

	code, stdout, stderr := verifyCLI(t, "s3cret-Pass\n", in, out, "--password-stdin", "--ca-file", ca)
	if code != exitOK || stdout != "incoming: ok\noutgoing: ok\n" {
		t.Fatalf("right password: %d %q %q", code, stdout, stderr)
	}

	code, stdout, _ = verifyCLI(t, "wrong-Pass\n", in, out, "--password-stdin", "--ca-file", ca)
	if code != exitFailed || !strings.HasPrefix(stdout, "incoming: auth_failed") || !strings.Contains(stdout, "\noutgoing: auth_failed: 535") {
		t.Fatalf("wrong password: %d %q", code, stdout)
	}

	// Without the sandbox's CA the certificate is untrusted.
	code, stdout, _ = verifyCLI(t, "s3cret-Pass\n", in, "--password-stdin")
	if code != exitFailed || !strings.HasPrefix(stdout, "incoming: tls_error") {
		t.Fatalf("untrusted CA: %d %q", code, stdout)
	}

	// A POP3 account, alone.
	code, stdout, _ = verifyCLI(t, "s3cret-Pass\r\n", "--incoming=pop3s://alice%40example.org@"+sb.POP3S, "--password-stdin", "--ca-file", ca)
	if code != exitOK || stdout != "incoming: ok\n" {
		t.Fatalf("pop3: %d %q", code, stdout)
	}
}

func TestVerifyCommandTerminal(t *testing.T) {
	sb, ca := startSandbox(t)
	var prompts []string
	secret := func(prompt string) (string, error) { prompts = append(prompts, prompt); return "s3cret-Pass", nil }
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"verify", "--outgoing", "smtps://alice%40example.org@" + sb.SMTPS, "--ca-file", ca}, strings.NewReader(""), &stdout, &stderr, secret)
	if code != exitOK || stdout.String() != "outgoing: ok\n" || len(prompts) != 1 {
		t.Fatalf("run() = %d %q %q, prompts %v", code, stdout.String(), stderr.String(), prompts)
	}
}

func TestVerifyCommandUsageErrors(t *testing.T) {
	for name, args := range map[string][]string{
		"no servers":         {"--password-stdin"},
		"password in URL":    {"--incoming", "imaps://alice:pw@127.0.0.1", "--password-stdin"},
		"positional":         {"--incoming", "imaps://alice@127.0.0.1", "hunter2"},
		"smtp as incoming":   {"--incoming", "smtps://alice@127.0.0.1", "--password-stdin"},
		"imap as outgoing":   {"--outgoing", "imaps://alice@127.0.0.1", "--password-stdin"},
		"bad scheme":         {"--incoming", "http://alice@127.0.0.1", "--password-stdin"},
		"missing CA file":    {"--incoming", "imaps://alice@127.0.0.1", "--password-stdin", "--ca-file", "/nonexistent"},
		"unknown flag":       {"--password", "x"},
		"negative timeout":   {"--incoming", "imaps://alice@127.0.0.1", "--timeout", "-1s", "--password-stdin"},
		"no terminal, stdin": {"--incoming", "imaps://alice@127.0.0.1"},
	} {
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := verifyCLI(t, "pw\n", args...)
			if code != exitUsage || stdout != "" || stderr == "" {
				t.Fatalf("run() = %d, stdout %q, stderr %q", code, stdout, stderr)
			}
			if strings.Contains(stderr, "hunter2") {
				t.Fatalf("stderr repeats a password-like argument: %q", stderr)
			}
		})
	}
	code, _, stderr := verifyCLI(t, "", "--incoming", "imaps://alice@127.0.0.1", "--password-stdin")
	if code != exitUsage || !strings.Contains(stderr, "ended before the password") {
		t.Fatalf("empty stdin: %d %q", code, stderr)
	}
}

func TestUnknownCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"frobnicate"}, nil, &stdout, &stderr, noTerminal); code != exitUsage {
		t.Fatalf("run() = %d", code)
	}
	if code := run(context.Background(), []string{"version"}, nil, &stdout, &stderr, noTerminal); code != exitOK || !strings.HasPrefix(stdout.String(), "credsync ") {
		t.Fatalf("version: %d %q", code, stdout.String())
	}
}
