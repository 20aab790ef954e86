package security

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoInsecureSkipVerify: no Go file of the module turns TLS
// verification off. Product code verifies every certificate (system roots,
// a CA the user gives, or a Thunderbird certificate exception's pinned
// fingerprint); tests trust their own throw-away CAs instead of skipping
// verification.
func TestNoInsecureSkipVerify(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	needle := "Insecure" + "SkipVerify"
	self, _ := filepath.Abs("tls_test.go") // names the test after it
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		if strings.Contains(string(b), needle) && path != self {
			t.Errorf("%s sets %s", path, needle)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("only %d Go files under %s", files, root)
	}
}
