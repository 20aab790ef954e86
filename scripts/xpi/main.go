// Command xpi packs the extension directory into an .xpi (a zip archive)
// with sorted entries and fixed times, so the same sources give the same
// bytes.
//
// The add-on's runtime libraries are not in the repository: they are npm
// dependencies pinned in <npm>/package.json and package-lock.json, installed
// by `npm ci --prefix <npm>` (`make xpi` does it). The "xpi" object of that
// package.json maps a path inside the .xpi to a file of the installed
// packages (under <npm>/node_modules); xpi packs those files too, after
// checking that every dependency is installed at the version package.json
// pins. -npm "" packs the directory alone (an add-on without them).
//
//	go run ./scripts/xpi -o dist/credsync.xpi [-npm scripts/zxcvbn] extension
package main

import (
	"archive/zip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

func main() {
	out := flag.String("o", "credsync.xpi", "output `file`")
	npm := flag.String("npm", "scripts/zxcvbn", "the npm package `directory` of the add-on's runtime libraries (\"\": none)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: xpi -o FILE [-npm DIR] DIR")
		os.Exit(2)
	}
	var extra map[string]string
	if *npm != "" {
		var err error
		if extra, err = npmFiles(*npm); err != nil {
			fmt.Fprintln(os.Stderr, "xpi:", err)
			os.Exit(1)
		}
	}
	if err := pack(flag.Arg(0), extra, *out); err != nil {
		fmt.Fprintln(os.Stderr, "xpi:", err)
		os.Exit(1)
	}
}

// npmPackage is what xpi reads of <npm>/package.json.
type npmPackage struct {
	Dependencies map[string]string `json:"dependencies"`
	// XPI maps a path in the .xpi to a path under node_modules.
	XPI map[string]string `json:"xpi"`
}

// npmFiles returns the files the npm package in dir adds to the .xpi: its
// path in the .xpi → the file on disk. Every dependency must be installed
// at exactly the version package.json pins (npm ci installs the lockfile's,
// which npm keeps equal to those pins).
func npmFiles(dir string) (map[string]string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		return nil, err
	}
	var p npmPackage
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("%s/package.json: %v", dir, err)
	}
	if len(p.XPI) == 0 {
		return nil, fmt.Errorf("%s/package.json names no file for the .xpi (\"xpi\")", dir)
	}
	modules := filepath.Join(dir, "node_modules")
	install := fmt.Sprintf("run `npm ci --prefix %s` (make xpi does)", dir)
	for name, want := range p.Dependencies {
		var installed struct{ Version string }
		data, err := os.ReadFile(filepath.Join(modules, filepath.FromSlash(name), "package.json"))
		if err == nil {
			err = json.Unmarshal(data, &installed)
		}
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("%s is not installed in %s: %s", name, modules, install)
		case err != nil:
			return nil, fmt.Errorf("%s: %v", name, err)
		case installed.Version != want:
			return nil, fmt.Errorf("%s %s is installed in %s, package.json pins %s: %s", name, installed.Version, modules, want, install)
		}
	}
	files := make(map[string]string, len(p.XPI))
	for in, from := range p.XPI {
		clean := path.Clean(in)
		if clean != in || path.IsAbs(in) || strings.HasPrefix(in, "../") || path.Clean(from) != from || strings.HasPrefix(from, "../") {
			return nil, fmt.Errorf("%s/package.json: \"xpi\" entry %q: %q is not a clean relative path", dir, in, from)
		}
		src := filepath.Join(modules, filepath.FromSlash(from))
		if st, err := os.Stat(src); err != nil || !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%s: no such file for %s in the installed packages: %s", src, in, install)
		}
		files[in] = src
	}
	return files, nil
}

// pack writes the files of dir and the extra files (path in the .xpi →
// file) to the .xpi out.
func pack(dir string, extra map[string]string, out string) error {
	entries := map[string]string{} // path in the .xpi → file
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			entries[filepath.ToSlash(rel)] = p
		}
		return err
	})
	if err != nil {
		return err
	}
	for name, src := range extra {
		if _, clash := entries[name]; clash {
			return fmt.Errorf("%s is both in %s and among the npm files", name, dir)
		}
		entries[name] = src
	}
	names := make([]string, 0, len(entries))
	for name := range entries {
		names = append(names, name)
	}
	sort.Strings(names)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(f)
	for _, name := range names {
		w, err := zw.CreateHeader(&zip.FileHeader{
			Name:     name,
			Method:   zip.Deflate,
			Modified: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		})
		if err != nil {
			return err
		}
		data, err := os.ReadFile(entries[name])
		if err != nil {
			return err
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}
