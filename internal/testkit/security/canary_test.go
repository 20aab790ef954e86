package security

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/credsync/credsync/internal/testkit/wine"
)

// plant writes one file per encoding of the canary that a careless program
// could produce, and a clean one.
func plant(t *testing.T, canary string) (dir string, want []string) {
	t.Helper()
	dir = wine.TempDir(t)
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var le []byte
	for _, u := range utf16.Encode([]rune("log: " + canary)) {
		le = append(le, byte(u), byte(u>>8))
	}
	files := map[string][]byte{
		"plain":       []byte("password=" + canary + "\n"),
		"utf16":       le,
		"sasl-plain":  []byte("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00alice@example.org\x00"+canary)) + "\r\n"),
		"b64-1":       []byte(base64.StdEncoding.EncodeToString([]byte("x" + canary + "yz"))),
		"b64-2":       []byte(base64.StdEncoding.EncodeToString([]byte("xy" + canary))),
		"b64url-2":    []byte(base64.RawURLEncoding.EncodeToString([]byte("\xff\xfe" + canary + "\xff"))),
		"hex":         []byte(fmt.Sprintf("debug %x\n", "pw "+canary)),
		"clean":       []byte("nothing to see: " + strings.ToLower(canary[:5]) + "\n"),
		"logins.json": []byte(canary), // skipped by SkipSecretStores
	}
	for name, b := range files {
		write(name, b)
		if name != "clean" && name != "logins.json" {
			want = append(want, filepath.Join(dir, name))
		}
	}
	slices.Sort(want)
	return dir, want
}

func foundFiles(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		if !slices.Contains(out, f.Where) {
			out = append(out, f.Where)
		}
	}
	slices.Sort(out)
	return out
}

func TestScanFindsEveryEncoding(t *testing.T) {
	dir, want := plant(t, Canary)
	got, err := Scan([]string{dir}, Canary, ScanOptions{Skip: SkipSecretStores})
	if err != nil {
		t.Fatal(err)
	}
	if files := foundFiles(got); !slices.Equal(files, want) {
		t.Fatalf("Scan found %v\nwant %v", got, want)
	}
	if all, _ := Scan([]string{dir}, Canary, ScanOptions{}); len(foundFiles(all)) != len(want)+1 {
		t.Fatalf("without Skip, Scan found %v", all)
	}
}

// scripts/canary-scan finds the same files as Scan, and exits 1; a clean
// tree exits 0.
func TestCanaryScanScript(t *testing.T) {
	for _, tool := range []string{"bash", "grep", "base64", "head"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s: %v", tool, err)
		}
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "..", "scripts", "canary-scan"))
	if err != nil {
		t.Fatal(err)
	}
	dir, want := plant(t, Canary)
	os.Remove(filepath.Join(dir, "logins.json")) // the script has no skip list
	out, err := exec.Command(script, dir, "--", Canary).Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("canary-scan: %v, output:\n%s", err, out)
	}
	var files []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f, _, _ := strings.Cut(line, ": ")
		if !slices.Contains(files, f) {
			files = append(files, f)
		}
	}
	slices.Sort(files)
	if !slices.Equal(files, want) {
		t.Fatalf("canary-scan found:\n%s\nwant %v", out, want)
	}
	clean := wine.TempDir(t)
	os.WriteFile(filepath.Join(clean, "f"), []byte("clean"), 0o600)
	if out, err := exec.Command(script, clean, "--", Canary).CombinedOutput(); err != nil {
		t.Fatalf("canary-scan on a clean tree: %v\n%s", err, out)
	}
	if err := exec.Command(script, "--", Canary).Run(); !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("canary-scan without a path: %v, want exit 2", err)
	}
}

func TestBase64Fragment(t *testing.T) {
	for k := 0; k < 3; k++ {
		frag := Base64Fragment(Canary, k)
		if len(frag) < 20 {
			t.Fatalf("fragment %d %q is too short to be distinctive", k, frag)
		}
		for _, prefix := range []string{"", "a", "ab", "abc", "\x00u\x00"} {
			if (len(prefix)-k)%3 != 0 {
				continue
			}
			for _, suffix := range []string{"", "!", "!!", "!!!"} {
				enc := base64.StdEncoding.EncodeToString([]byte(prefix + Canary + suffix))
				if !strings.Contains(enc, frag) {
					t.Fatalf("k=%d: %q not in the encoding of %q", k, frag, prefix+Canary+suffix)
				}
			}
		}
	}
}
