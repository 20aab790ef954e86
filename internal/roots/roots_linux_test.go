//go:build linux && !android

package roots

import (
	"crypto/x509"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// helperEnv makes the test binary compare load() with crypto/x509's system
// roots and exit: crypto/x509 loads them once per process, so every
// environment gets a fresh one.
const helperEnv = "CREDSYNC_ROOTS_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(compareWithX509())
	}
	os.Exit(m.Run())
}

// compareWithX509: 0 equal, 1 different, 2 both found nothing (load nil,
// crypto/x509 an empty pool or an error).
func compareWithX509() int {
	ours := load()
	theirs, err := x509.SystemCertPool()
	if ours == nil {
		if err != nil || theirs.Equal(x509.NewCertPool()) {
			return 2
		}
		return 1
	}
	if err != nil || !ours.Equal(theirs) {
		return 1
	}
	return 0
}

func runHelper(t *testing.T, env ...string) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		for _, k := range []string{certFileEnv + "=", certDirEnv + "=", "GODEBUG="} {
			if strings.HasPrefix(kv, k) {
				return true
			}
		}
		return false
	}), append(env, helperEnv+"=1")...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return 0
}

// TestSystemRootsAreCryptoX509s: this machine's roots, as the host loads
// them, are the pool crypto/x509 builds.
func TestSystemRootsAreCryptoX509s(t *testing.T) {
	switch runHelper(t) {
	case 1:
		t.Fatal("load() differs from x509.SystemCertPool()")
	case 2:
		t.Skip("no system roots on this machine")
	}
}

// TestEnvironmentsAsCryptoX509 builds certificate files and directories
// as distributions and administrators lay them out and compares with
// crypto/x509 through SSL_CERT_FILE and SSL_CERT_DIR.
func TestEnvironmentsAsCryptoX509(t *testing.T) {
	dir := t.TempDir()
	write := func(path string, data ...[]byte) string {
		t.Helper()
		path = filepath.Join(dir, path)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		var all []byte
		for _, d := range data {
			all = append(all, d...)
		}
		if err := os.WriteFile(path, all, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	link := func(target, path string) {
		t.Helper()
		if err := os.Symlink(target, filepath.Join(dir, path)); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := newCA(t, "A")
	b, _ := newCA(t, "B")
	c, _ := newCA(t, "C")
	local, _ := newCA(t, "local admin CA")
	pa, pb, pc, pl := pemCert(a), pemCert(b), pemCert(c), pemCert(local)

	// Debian and Ubuntu after update-ca-certificates: the shared files,
	// links to them, hash links, and the bundle in the same directory.
	write("share/A.crt", pa)
	write("share/B.crt", pb)
	write("share/C.crt", pc)
	bundle := write("debian/certs/ca-certificates.crt", pa, pb, pc)
	link("../../share/A.crt", "debian/certs/A.pem")
	link("../../share/B.crt", "debian/certs/B.pem")
	link("../../share/C.crt", "debian/certs/C.pem")
	link("A.pem", "debian/certs/1a2b3c4d.0")
	link("B.pem", "debian/certs/5e6f7a8b.0")
	link("missing.pem", "debian/certs/dangling.pem")
	// An administrator's CA dropped into the directory by hand, without
	// update-ca-certificates: only the directory has it.
	write("debian/certs/local.pem", pl)
	write("debian/certs/README", []byte("not a certificate\n"))
	if err := os.MkdirAll(filepath.Join(dir, "debian/certs/java"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A second directory (Fedora's layout) and one that does not exist.
	write("pki/tls/certs/ca-bundle.crt", pc, pl)
	write("empty/.keep")
	// A directory of links only, into another directory, and a hash
	// link to one of them.
	if err := os.MkdirAll(filepath.Join(dir, "links"), 0o755); err != nil {
		t.Fatal(err)
	}
	link("../share/B.crt", "links/B.pem")
	link(filepath.Join(dir, "share/C.crt"), "links/C.pem")
	link("B.pem", "links/9f8e7d6c.0")

	deb := filepath.Join(dir, "debian/certs")
	pki := filepath.Join(dir, "pki/tls/certs")
	cases := []struct {
		name string
		env  []string
		want int
	}{
		{"bundle and its directory", []string{certFileEnv + "=" + bundle, certDirEnv + "=" + deb}, 0},
		{"directory only (no bundle file)", []string{certFileEnv + "=" + filepath.Join(dir, "missing.crt"), certDirEnv + "=" + deb}, 0},
		{"bundle only (empty directory)", []string{certFileEnv + "=" + bundle, certDirEnv + "=" + filepath.Join(dir, "empty")}, 0},
		{"colon-separated directories", []string{certFileEnv + "=" + bundle, certDirEnv + "=" + deb + ":" + filepath.Join(dir, "nowhere") + ":" + pki}, 0},
		{"a file outside the bundle list", []string{certFileEnv + "=" + write("other.pem", pl), certDirEnv + "=" + pki}, 0},
		{"links into another directory", []string{certFileEnv + "=" + filepath.Join(dir, "missing.crt"), certDirEnv + "=" + filepath.Join(dir, "links")}, 0},
		{"nothing found", []string{certFileEnv + "=" + filepath.Join(dir, "missing.crt"), certDirEnv + "=" + filepath.Join(dir, "empty")}, 2},
		{"a directory as the bundle", []string{certFileEnv + "=" + deb, certDirEnv + "=" + filepath.Join(dir, "nowhere")}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := runHelper(t, c.env...); got != c.want {
				t.Errorf("helper exit %d, want %d (0 equal, 1 different, 2 nothing found by either)", got, c.want)
			}
		})
	}
}

// TestListsMatchGo reads crypto/x509's root_linux.go and root_unix.go of
// the Go release that `go env GOROOT` names: the bundle files, the directories
// and the environment variables must be the ones load reads, in the same
// order.
func TestListsMatchGo(t *testing.T) {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Skipf("go env GOROOT: %v", err)
	}
	goroot := strings.TrimSpace(string(out))
	values := map[string][]string{}
	for _, file := range []string{"root_linux.go", "root_unix.go"} {
		src := filepath.Join(goroot, "src", "crypto", "x509", file)
		f, err := parser.ParseFile(token.NewFileSet(), src, nil, 0)
		if err != nil {
			t.Skipf("the Go release's source is not here: %v", err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok || len(vs.Names) != 1 || len(vs.Values) != 1 {
				return true
			}
			var elts []ast.Expr
			switch v := vs.Values[0].(type) {
			case *ast.CompositeLit:
				elts = v.Elts
			case *ast.BasicLit:
				elts = []ast.Expr{v}
			}
			for _, e := range elts {
				if bl, ok := e.(*ast.BasicLit); ok && bl.Kind == token.STRING {
					s, _ := strconv.Unquote(bl.Value)
					values[vs.Names[0].Name] = append(values[vs.Names[0].Name], s)
				}
			}
			return true
		})
	}
	for name, ours := range map[string][]string{"certFiles": certFiles, "certDirectories": certDirectories,
		"certFileEnv": {certFileEnv}, "certDirEnv": {certDirEnv}} {
		if !slices.Equal(values[name], ours) {
			t.Errorf("crypto/x509's %s is %q, load uses %q", name, values[name], ours)
		}
	}
}
