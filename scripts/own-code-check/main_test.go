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

// The repository itself holds only its own code.
func TestRepositoryIsClean(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{filepath.Join("..", "..")}, &stdout, &stderr); code != 0 {
		t.Fatalf("own-code-check on the repository: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
}

// tree makes a git work tree holding a small module plus files, and adds
// them all to the index (tracked: what own-code-check reads).
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := wine.TempDir(t)
	all := map[string]string{
		"go.mod":         "module example.invalid/own\n\nrequire github.com/tidwall/gjson v1.20.0\n",
		"main.go":        "// Command own is ours.\npackage main\n\nfunc main() {}\n",
		"README.md":      "# own\n\nOur code, see /usr/share/doc/own/copyright.\n",
		"lint/go.mod":    "// A module boundary, without code.\nmodule own.invalid/lint\n",
		"lint/eslint.js": "export default [];\n",
		".gitignore":     "/lint/node_modules/\n",
		// Ignored: never looked at.
		"lint/node_modules/x/go.mod":  "module example.invalid/x\n",
		"lint/node_modules/x/x.go":    "// Copyright (c) 2020 Someone Else\npackage x\n",
		"lint/node_modules/x/LICENSE": "MIT\n",
	}
	for name, body := range files {
		all[name] = body
	}
	for name, body := range all {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"init", "-q"}, {"add", "-A"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return dir
}

func TestPlanted(t *testing.T) {
	const lib = "// Package zxcvbn estimates strength.\npackage zxcvbn\n"
	for name, c := range map[string]struct {
		files map[string]string
		want  string // in the findings; "" for none
	}{
		"clean": {},
		"replace with a version": {
			files: map[string]string{"go.mod": "module example.invalid/own\n\nreplace github.com/a/b v1.0.0 => github.com/c/b v1.0.1\n"},
		},
		"replace into the tree": {
			files: map[string]string{
				"go.mod":                              "module example.invalid/own\n\nrequire github.com/a/zxcvbn v1.0.4\n\nreplace github.com/a/zxcvbn v1.0.4 => ./internal/copy/zxcvbn\n",
				"internal/copy/zxcvbn/zxcvbn.go":      lib,
				"internal/copy/zxcvbn/zxcvbn.go.orig": lib,
			},
			want: "go.mod: replace github.com/a/zxcvbn v1.0.4 => ./internal/copy/zxcvbn",
		},
		"replace block to a parent directory": {
			files: map[string]string{"go.mod": "module example.invalid/own\n\nreplace (\n\tgithub.com/a/b => ../b\n\tgithub.com/c/d v1.0.0 => github.com/e/d v1.0.0\n)\n"},
			want:  "go.mod: replace github.com/a/b => ../b",
		},
		"replace to an absolute path": {
			files: map[string]string{"go.mod": "module example.invalid/own\n\nreplace github.com/a/b v1.2.3 => /srv/src/b\n"},
			want:  "=> /srv/src/b",
		},
		"nested module": {
			files: map[string]string{
				"internal/zxcvbn/go.mod":    "module github.com/a/zxcvbn\n",
				"internal/zxcvbn/zxcvbn.go": lib,
			},
			want: "internal/zxcvbn/go.mod: a nested module with 1 Go files",
		},
		"vendor directory": {
			files: map[string]string{"vendor/github.com/a/b/b.go": "package b\n"},
			want:  "vendor/: a vendor directory",
		},
		"third_party directory": {
			files: map[string]string{"internal/third_party/README.md": "# Patched modules\n"},
			want:  "internal/third_party/: a third_party directory",
		},
		"licence file in a subdirectory": {
			files: map[string]string{"pkg/strength/LICENSE.txt": "The MIT License\n"},
			want:  "pkg/strength/LICENSE.txt: a licence file",
		},
		"copyright header": {
			files: map[string]string{"pkg/strength/scoring.go": "// Copyright (c) 2013 Dropbox, Inc.\n//\n// Permission is hereby granted, free of charge…\npackage strength\n"},
			want:  `pkg/strength/scoring.go:1: a copyright or licence header`,
		},
		"SPDX header": {
			files: map[string]string{"extension/lib/zxcvbn.js": "/*! SPDX-License-Identifier: MIT */\nexport {};\n"},
			want:  `extension/lib/zxcvbn.js:1:`,
		},
		"our own notice": {
			files: map[string]string{"debian/copyright.in": "Copyright 2026 credsync developers\n"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := tree(t, c.files)
			var stdout, stderr bytes.Buffer
			code := run([]string{dir}, &stdout, &stderr)
			switch {
			case c.want == "" && (code != 0 || stdout.Len() != 0):
				t.Fatalf("exit %d on a clean tree:\n%s%s", code, stdout.String(), stderr.String())
			case c.want != "" && (code != 1 || !strings.Contains(stdout.String(), c.want)):
				t.Fatalf("exit %d, findings:\n%s%s\nwant 1 and %q", code, stdout.String(), stderr.String(), c.want)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"a", "b"}, &stdout, &stderr); code != 2 {
		t.Fatalf("two arguments: exit %d", code)
	}
	if code := run([]string{wine.TempDir(t)}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "git ls-files") {
		t.Fatalf("not a git work tree: exit %d %q", code, stderr.String())
	}
}
