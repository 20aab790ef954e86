package main

import (
	"archive/zip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFiles writes name → content under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const pkgJSON = `{"dependencies": {"@x/lib": "1.2.3"},
 "xpi": {"vendor/x/lib.js": "@x/lib/dist/lib.js", "vendor/x/LICENSE.txt": "@x/lib/LICENSE.txt"}}`

func TestPackAddsTheInstalledNpmFiles(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"ext/manifest.json":                           "{}",
		"ext/popup/popup.js":                          "// popup",
		"npm/package.json":                            pkgJSON,
		"npm/node_modules/@x/lib/package.json":        `{"version": "1.2.3"}`,
		"npm/node_modules/@x/lib/dist/lib.js":         "this.lib = 1;",
		"npm/node_modules/@x/lib/LICENSE.txt":         "MIT",
		"npm/node_modules/@x/lib/dist/not-packed.map": "{}",
	})
	files, err := npmFiles(filepath.Join(root, "npm"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(root, "out.xpi")
	if err := pack(filepath.Join(root, "ext"), files, out); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	want := "manifest.json popup/popup.js vendor/x/LICENSE.txt vendor/x/lib.js"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("entries %q, want %q", got, want)
	}
}

func TestNpmFilesRefusesAStaleOrMissingInstall(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"not installed": {"package.json": pkgJSON},
		"another version": {"package.json": pkgJSON,
			"node_modules/@x/lib/package.json": `{"version": "1.2.2"}`, "node_modules/@x/lib/dist/lib.js": "", "node_modules/@x/lib/LICENSE.txt": ""},
		"a file missing": {"package.json": pkgJSON,
			"node_modules/@x/lib/package.json": `{"version": "1.2.3"}`, "node_modules/@x/lib/dist/lib.js": ""},
		"a path out of node_modules": {"package.json": `{"xpi": {"vendor/a.js": "../../etc/passwd"}}`},
		"nothing for the .xpi":       {"package.json": `{"dependencies": {}}`},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, files)
			if got, err := npmFiles(dir); err == nil {
				t.Errorf("npmFiles = %v, want an error", got)
			}
		})
	}
}

func TestPackRefusesAClash(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"ext/vendor/x/lib.js": "mine", "lib.js": "theirs"})
	err := pack(filepath.Join(root, "ext"), map[string]string{"vendor/x/lib.js": filepath.Join(root, "lib.js")}, filepath.Join(root, "out.xpi"))
	if err == nil {
		t.Error("pack packed two files at one path")
	}
}
