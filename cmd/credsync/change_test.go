package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/credsync/credsync/internal/testkit/sandbox"
	"github.com/credsync/credsync/internal/testkit/wine"
)

const (
	cliOld = "s3cret-Pass" // startSandbox's password for alice@example.org
	cliNew = "n3w-Secret-Pass!"
)

// changeCLI runs "credsync change" against the sandbox with its back-end.
func changeCLI(t *testing.T, sb *sandbox.Sandbox, ca, stdin string, secret secretReader, extra ...string) (int, string, string) {
	t.Helper()
	args := append([]string{
		"--incoming=imaps://alice%40example.org@" + sb.IMAPS,
		"--outgoing=smtp://alice%40example.org@" + sb.Submission,
		"--backend", "sandbox", "--backend-url", sb.ChangeURL,
		"--ca-file", ca,
	}, extra...)
	if secret == nil {
		secret = noTerminal
		args = append(args, "--password-stdin")
	}
	var stdout, stderr bytes.Buffer
	code := runChange(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr, secret)
	for _, pw := range []string{cliOld, cliNew} {
		if strings.Contains(stdout.String()+stderr.String(), pw) {
			t.Fatalf("a password was printed: %q %q", stdout.String(), stderr.String())
		}
	}
	return code, stdout.String(), stderr.String()
}

// logins counts the sandbox's logins with password, by success.
func logins(sb *sandbox.Sandbox, password string) (ok, failed int) {
	for _, l := range sb.Logins() {
		if l.Password == password {
			if l.OK {
				ok++
			} else {
				failed++
			}
		}
	}
	return ok, failed
}

func TestChangeCommand(t *testing.T) {
	sb, ca := startSandbox(t)
	code, stdout, stderr := changeCLI(t, sb, ca, cliOld+"\n"+cliNew+"\n", nil)
	want := "policy: ok\nchanging: ok\n"
	if code != exitOK || !strings.HasPrefix(stdout, want) || !strings.Contains(stdout, "checking_incoming: ok\n") ||
		!strings.Contains(stdout, "checking_outgoing: ok\n") || !strings.Contains(stdout, "\nbreach check: off\n") || !strings.Contains(stdout, "\ndone: ") {
		t.Fatalf("change: %d\n%s%s", code, stdout, stderr)
	}
	if ok, failed := logins(sb, cliNew); ok != 2 || failed != 0 {
		t.Fatalf("%d/%d logins with the new password; want exactly one per server", ok, failed)
	}
	// The provider has it: the old one is refused now.
	code, stdout, _ = changeCLI(t, sb, ca, cliOld+"\nanother-Pass-1\n", nil)
	if code != exitFailed || !strings.Contains(stdout, "error: wrong_current_password") {
		t.Fatalf("second change with the old password: %d %q", code, stdout)
	}
}

func TestChangeCommandTerminal(t *testing.T) {
	answers := func(list ...string) (secretReader, *[]string) {
		var prompts []string
		return func(prompt string) (string, error) {
			prompts = append(prompts, prompt)
			a := list[0]
			list = list[1:]
			return a, nil
		}, &prompts
	}
	t.Run("confirmed", func(t *testing.T) {
		sb, ca := startSandbox(t)
		secret, prompts := answers(cliOld, cliNew, cliNew)
		code, stdout, _ := changeCLI(t, sb, ca, "", secret)
		if code != exitOK || strings.Join(*prompts, "|") != "Current password: |New password: |New password again: " {
			t.Fatalf("%d %q prompts %q", code, stdout, *prompts)
		}
	})
	t.Run("mismatch", func(t *testing.T) {
		sb, ca := startSandbox(t)
		secret, _ := answers(cliOld, cliNew, cliNew+"x")
		code, stdout, _ := changeCLI(t, sb, ca, "", secret)
		if code != exitUsage || stdout != "policy: failed: mismatch: the two new passwords differ\n" || len(sb.Logins()) != 0 {
			t.Fatalf("%d %q with %d logins", code, stdout, len(sb.Logins()))
		}
	})
}

func TestChangeCommandFailures(t *testing.T) {
	t.Run("policy", func(t *testing.T) {
		sb, ca := startSandbox(t)
		code, stdout, _ := changeCLI(t, sb, ca, cliOld+"\n"+cliOld+"\n", nil)
		if code != exitUsage || stdout != "policy: failed\nerror: policy_violation (same_as_current): the new password is the same as the current one\n" {
			t.Fatalf("%d %q", code, stdout)
		}
	})
	t.Run("wrong current", func(t *testing.T) {
		sb, ca := startSandbox(t)
		code, stdout, _ := changeCLI(t, sb, ca, "Wrong-Pass-9\n"+cliNew+"\n", nil)
		if code != exitFailed || !strings.Contains(stdout, "changing: failed\n") || !strings.Contains(stdout, "error: wrong_current_password") || len(sb.Logins()) != 0 {
			t.Fatalf("%d %q", code, stdout)
		}
	})
	t.Run("provider unreachable", func(t *testing.T) {
		sb, ca := startSandbox(t)
		code, stdout, _ := changeCLI(t, sb, ca, cliOld+"\n"+cliNew+"\n", nil, "--backend-url", "https://127.0.0.1:1/change")
		if code != exitFailed || !strings.Contains(stdout, "error: backend_unreachable") {
			t.Fatalf("%d %q", code, stdout)
		}
	})
	t.Run("changed, not verified", func(t *testing.T) {
		sb, ca := startSandbox(t)
		var stdout, stderr bytes.Buffer
		args := []string{
			"--incoming=imaps://alice%40example.org@" + sb.IMAPS,
			"--outgoing=smtp://bob%40example.org@" + sb.Submission, // not a sandbox user
			"--backend=sandbox", "--backend-url=" + sb.ChangeURL, "--ca-file=" + ca, "--password-stdin",
		}
		code := runChange(context.Background(), args, strings.NewReader(cliOld+"\n"+cliNew+"\n"), &stdout, &stderr, noTerminal)
		out := stdout.String()
		if code != exitChangedUnverified || !strings.Contains(out, "error: verification_failed") ||
			!strings.Contains(out, "\nincoming: ok\n") || !strings.Contains(out, "\noutgoing: auth_failed") || !strings.Contains(out, "do not run this again") {
			t.Fatalf("%d %q %q", code, out, stderr.String())
		}
	})
}

func TestChangeCommandUsageErrors(t *testing.T) {
	// Every case stops before the network; the aruba ones point at a dead
	// loopback port all the same, so that a regression cannot reach Aruba.
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"no servers":       {[]string{"--backend", "sandbox", "--password-stdin"}, "give --incoming"},
		"no backend":       {[]string{"--incoming", "imaps://a@imaps.pec.aruba.it", "--password-stdin"}, `give --backend NAME, one of: `},
		"detected backend": {[]string{"--incoming", "imaps://a@imaps.pec.aruba.it", "--password-stdin"}, `(imaps.pec.aruba.it is served by "aruba")`},
		"unknown backend":  {[]string{"--incoming", "imaps://a@127.0.0.1", "--backend", "nope", "--password-stdin"}, `no back-end is called "nope"`},
		"URL needed":       {[]string{"--incoming", "imaps://a@127.0.0.1", "--backend", "sandbox", "--password-stdin"}, "needs --backend-url"},
		"positional":       {[]string{"--incoming", "imaps://a@127.0.0.1", "--backend", "aruba", "--backend-url", "https://127.0.0.1:1/", "hunter2"}, "never taken from the command line"},
		"no min strength":  {[]string{"--incoming", "imaps://a@127.0.0.1", "--backend", "aruba", "--backend-url", "https://127.0.0.1:1/", "--min-strength", "3"}, "flag provided but not defined: -min-strength"},
		"one line":         {[]string{"--incoming", "imaps://a@127.0.0.1", "--backend", "aruba", "--backend-url", "https://127.0.0.1:1/", "--password-stdin"}, "standard input ended before the new password"},
	} {
		var stdout, stderr bytes.Buffer
		code := runChange(context.Background(), c.args, strings.NewReader("only-one-line\n"), &stdout, &stderr, noTerminal)
		if code != exitUsage || !strings.Contains(stderr.String(), c.want) || strings.Contains(stderr.String(), "hunter2") || strings.Contains(stderr.String(), "only-one-line") {
			t.Errorf("%s: %d %q; want %q", name, code, stderr.String(), c.want)
		}
	}
}

// --breach-check asks the range API (here a local one over TLS, trusted
// through --ca-file) with 5 hex digits only.
func TestChangeCommandBreachCheck(t *testing.T) {
	sb, _ := startSandbox(t)
	sum := sha1.Sum([]byte(cliNew))
	hash := strings.ToUpper(hex.EncodeToString(sum[:]))
	var seen []string
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.URL.Path)
		fmt.Fprintf(w, "%s:3\r\n", hash[5:])
	}))
	defer api.Close()
	both := filepath.Join(wine.TempDir(t), "both.pem")
	pemBytes := append(append([]byte{}, sb.CAPEM...), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: api.Certificate().Raw})...)
	if err := os.WriteFile(both, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ := changeCLI(t, sb, both, cliOld+"\n"+cliNew+"\n", nil, "--breach-check", "--breach-url", api.URL)
	if code != exitUsage || !strings.Contains(stdout, "error: policy_violation (breached)") || len(sb.Logins()) != 0 {
		t.Fatalf("%d %q", code, stdout)
	}
	if len(seen) != 1 || seen[0] != "/range/"+hash[:5] {
		t.Fatalf("range requests %v", seen)
	}
}

func TestBackendsCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := runBackends(nil, &stdout, &stderr); code != exitOK {
		t.Fatalf("backends: %d %q", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"aruba\n  Aruba PEC",
		"  password rules: 8-256 characters, an upper-case letter, a lower-case letter, a digit, one of !#$%&()*+,./-:;=?[]_{|}\\@\n",
		"poppassd\n", "  password rules: at most 123 bytes, none of \" \\t\"\n",
		"zimbra\n", "cpanel\n", "directadmin\n",
		"sandbox\n  credsync's demo and test servers\n  needs: --backend-url, the current password\n  password rules: none known\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("backends lacks %q:\n%s", want, out)
		}
	}
	stdout.Reset()
	if code := runBackends([]string{"--json"}, &stdout, &stderr); code != exitOK {
		t.Fatal(code)
	}
	var list []map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	for _, b := range list {
		if b["name"] == "aruba" {
			rules, _ := b["rules"].(map[string]any)
			if rules["minLength"] != 8.0 || rules["specials"] != `!#$%&()*+,./-:;=?[]_{|}\@` {
				t.Fatalf("aruba rules %v", b["rules"])
			}
			return
		}
	}
	t.Fatal("no aruba in --json")
}
