package wine

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestDetected(t *testing.T) {
	if runtime.GOOS != "windows" && Detected() {
		t.Fatal("Wine detected outside Windows")
	}
	// make test-windows runs this package under Wine and says so.
	if os.Getenv("CREDSYNC_UNDER_WINE") == "1" && !Detected() {
		t.Fatal("Wine not detected under Wine")
	}
}

func TestRemoveAll(t *testing.T) {
	d := TempDir(t)
	tree := filepath.Join(d, "a", "b", "c")
	if err := os.MkdirAll(tree, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{filepath.Join(d, "a", "f"), filepath.Join(tree, "g")} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := RemoveAll(filepath.Join(d, "a")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(d, "a")); !os.IsNotExist(err) {
		t.Fatalf("after RemoveAll: %v", err)
	}
	if err := RemoveAll(filepath.Join(d, "missing")); err != nil {
		t.Fatalf("RemoveAll of a missing path = %v", err)
	}
}
