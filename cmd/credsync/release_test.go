package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/credsync/credsync/internal/testkit/wine"
)

// TestReleaseBuildHasNoSandbox builds the binary as a release does (the
// Makefile's and scripts/dist/build's tag, no "sandbox") and as the demo and
// the end-to-end suites do (-tags sandbox), and runs `credsync backends`:
// only the latter lists the sandbox back-end, and the release binary links
// no test-support package at all.
func TestReleaseBuildHasNoSandbox(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/credsync twice")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	dir := wine.TempDir(t)
	for _, c := range []struct {
		tags    string
		sandbox bool
	}{
		{"nethttpomithttp2", false},
		{"nethttpomithttp2 sandbox", true},
	} {
		t.Run(strings.ReplaceAll(c.tags, " ", "+"), func(t *testing.T) {
			bin := filepath.Join(dir, strings.ReplaceAll(c.tags, " ", "-"))
			build := exec.Command(goTool, "build", "-tags", c.tags, "-o", bin, ".")
			build.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("go build -tags %q: %v\n%s", c.tags, err, out)
			}
			out, err := exec.Command(bin, "backends").CombinedOutput()
			if err != nil {
				t.Fatalf("credsync backends: %v\n%s", err, out)
			}
			listed := false
			for _, line := range strings.Split(string(out), "\n") {
				if line == "sandbox" {
					listed = true
				}
			}
			if !strings.Contains(string(out), "\nldap\n") {
				t.Fatalf("credsync backends lists no ldap:\n%s", out)
			}
			if listed != c.sandbox {
				t.Fatalf("-tags %q: credsync backends lists the sandbox: %v; want %v\n%s", c.tags, listed, c.sandbox, out)
			}
			b, err := os.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			if linked := bytes.Contains(b, []byte("credsync/internal/testkit/")); linked != c.sandbox {
				t.Fatalf("-tags %q: the binary links internal/testkit: %v; want %v", c.tags, linked, c.sandbox)
			}
		})
	}
}
