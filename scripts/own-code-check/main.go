// Command own-code-check fails when the tree holds code credsync's authors
// did not write. Libraries come in as dependencies pinned by go.sum or a
// lockfile, never as copies (issue 18; README.md, `make lint`), so it
// reports:
//
//   - a replace directive in a go.mod whose target is a local path (a
//     replacement without a version: ./dir, ../dir, /dir): the replaced
//     module is then a copy in the tree, not the release go.sum pins;
//   - a go.mod other than the root's whose module holds Go files: another
//     project's module. A boundary module without Go files is ours (e.g.
//     scripts/eslint/go.mod, which keeps npm's node_modules out of ./...);
//   - a vendor, third_party (third-party, thirdparty) or node_modules
//     directory;
//   - a licence file (LICENSE, LICENCE, COPYING, NOTICE, with any
//     extension) below the root, or a file whose first lines carry a
//     copyright notice or a licence grant: credsync's own files carry
//     neither, so such a header is another project's (one naming credsync
//     is allowed).
//
// Only the files git tracks (git ls-files) are looked at, so ignored
// directories such as scripts/eslint/node_modules do not count.
//
//	go run ./scripts/own-code-check [DIR]
//
// DIR is a git work tree, the current directory by default. Exit status: 0
// nothing found, 1 found (one line per finding on standard output), 2
// usage error or the check could not run.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	dir := "."
	switch {
	case len(args) == 1 && !strings.HasPrefix(args[0], "-"):
		dir = args[0]
	case len(args) > 0:
		fmt.Fprintln(stderr, "usage: own-code-check [DIR]")
		return 2
	}
	findings, err := check(dir)
	if err != nil {
		fmt.Fprintln(stderr, "own-code-check:", err)
		return 2
	}
	for _, f := range findings {
		fmt.Fprintln(stdout, f)
	}
	if len(findings) > 0 {
		fmt.Fprintln(stderr, "own-code-check: the tree holds another project's code; add it as a dependency (go.mod, package-lock.json) instead")
		return 1
	}
	return 0
}

// headerLines is how far into a file a copyright or licence header is
// looked for.
const headerLines = 20

var (
	// foreignHeader matches a copyright notice or a licence grant.
	foreignHeader = regexp.MustCompile(`(?i)copyright\s*(\(c\)|©|[0-9]{4})|\(c\)\s*[0-9]{4}|SPDX-License-Identifier|permission is hereby granted|licensed under the|redistribution and use in source and binary forms`)
	// licenceFile matches the name of a licence text.
	licenceFile = regexp.MustCompile(`(?i)^(licen[cs]e|copying|notice|unlicense)([-._].*)?$`)
	// foreignDirs are directory names that hold other projects' code.
	foreignDirs = map[string]bool{"vendor": true, "third_party": true, "third-party": true, "thirdparty": true, "node_modules": true}
)

// check returns one line per finding in the git work tree dir.
func check(dir string) ([]string, error) {
	files, err := tracked(dir)
	if err != nil {
		return nil, err
	}
	var findings []string
	add := func(format string, a ...any) { findings = append(findings, fmt.Sprintf(format, a...)) }

	var modules []string // directories of tracked go.mod files, "." for the root
	for _, f := range files {
		if path.Base(f) == "go.mod" {
			modules = append(modules, path.Dir(f))
		}
	}
	for _, m := range modules {
		gomod := path.Join(m, "go.mod")
		local, err := localReplacements(dir, gomod)
		if err != nil {
			return nil, err
		}
		for _, r := range local {
			add("%s: replace %s => %s: a local copy of a library; require its release instead", gomod, r.Old, r.New)
		}
		if m == "." {
			continue
		}
		goFiles := 0
		for _, f := range files {
			if strings.HasPrefix(f, m+"/") && strings.HasSuffix(f, ".go") {
				goFiles++
			}
		}
		if goFiles > 0 {
			add("%s: a nested module with %d Go files: another project's code?", gomod, goFiles)
		}
	}

	reported := map[string]bool{}
	for _, f := range files {
		parts := strings.Split(f, "/")
		for i, p := range parts[:len(parts)-1] {
			d := strings.Join(parts[:i+1], "/")
			if foreignDirs[strings.ToLower(p)] && !reported[d] {
				reported[d] = true
				add("%s/: a %s directory holds another project's code", d, p)
			}
		}
		if len(parts) > 1 && licenceFile.MatchString(parts[len(parts)-1]) {
			add("%s: a licence file below the root: another project's code?", f)
			continue
		}
		if line, n := header(filepath.Join(dir, filepath.FromSlash(f))); line != "" {
			add("%s:%d: a copyright or licence header (%q): another project's code?", f, n, line)
		}
	}
	return findings, nil
}

// tracked lists the files git tracks in dir that the work tree holds,
// slash-separated.
func tracked(dir string) ([]string, error) {
	cmd := exec.Command("git", "ls-files", "-z")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git ls-files in %s: %v: %s", dir, err, strings.TrimSpace(stderr.String()))
	}
	var files []string
	for f := range strings.SplitSeq(string(out), "\x00") {
		// A tracked file deleted in the work tree is on its way out.
		if _, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(f))); f != "" && err == nil {
			files = append(files, f)
		}
	}
	return files, nil
}

type replacement struct{ Old, New string }

// localReplacements reads gomod's replace directives with go mod edit
// -json, which parses go.mod as the go command does, and returns those
// whose target is a local path: Go gives those no version.
func localReplacements(dir, gomod string) ([]replacement, error) {
	cmd := exec.Command("go", "mod", "edit", "-json", filepath.FromSlash(gomod))
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go mod edit -json %s: %v: %s", gomod, err, strings.TrimSpace(stderr.String()))
	}
	type version struct{ Path, Version string }
	var mod struct {
		Replace []struct{ Old, New version }
	}
	if err := json.Unmarshal(out, &mod); err != nil {
		return nil, fmt.Errorf("%s: %v", gomod, err)
	}
	var local []replacement
	for _, r := range mod.Replace {
		if r.New.Version == "" {
			old := r.Old.Path
			if r.Old.Version != "" {
				old += " " + r.Old.Version
			}
			local = append(local, replacement{old, r.New.Path})
		}
	}
	return local, nil
}

// header returns the first line among the file's first headerLines that
// carries a copyright notice or a licence grant not naming credsync, and
// its number. Binary and unreadable files have none.
func header(file string) (string, int) {
	f, err := os.Open(file)
	if err != nil {
		return "", 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; n <= headerLines && s.Scan(); n++ {
		line := s.Bytes()
		if bytes.IndexByte(line, 0) >= 0 {
			return "", 0
		}
		if foreignHeader.Match(line) && !bytes.Contains(bytes.ToLower(line), []byte("credsync")) {
			l := strings.TrimSpace(string(line))
			if len(l) > 80 {
				l = l[:80] + "…"
			}
			return l, n
		}
	}
	return "", 0
}
