// Package wine lets tests run under Wine (make test-windows: the Windows
// build's tests under Debian 12's Wine 8.0) without hiding anything on a
// real Windows machine: Detected tells Wine apart, Skip skips a test only
// there, and TempDir is t.TempDir with a clean-up that also works there.
// Tests only; no product package imports it.
package wine

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Detected reports whether the program runs under Wine rather than on
// Windows (never true on other systems).
func Detected() bool { return detected() }

// Skip skips the test under Wine only, because of a gap of Wine's (not of
// credsync's) that why describes. Each such test is listed in SECURITY.md
// ("Checked on Windows by hand only") until a Windows runner checks it.
func Skip(t testing.TB, why string) {
	t.Helper()
	if Detected() {
		t.Skip("Wine gap, checked on Windows by hand only (SECURITY.md): " + why)
	}
}

// TempDir is t.TempDir. Under Wine it also registers a clean-up, run before
// t.TempDir's own, that empties the directory: Go 1.26's os.RemoveAll
// (which t.TempDir's clean-up uses) deletes through
// FileDispositionInformationEx, which Wine 8.0 does not implement
// (STATUS_NOT_IMPLEMENTED, "Invalid function"), and Go falls back to the
// older call only for the statuses real Windows versions return. os.Remove
// (DeleteFile, RemoveDirectory) works there.
func TempDir(t testing.TB) string {
	t.Helper()
	d := t.TempDir()
	if Detected() {
		t.Cleanup(func() {
			if err := RemoveAll(d); err != nil {
				t.Errorf("TempDir clean-up: %v", err)
			}
		})
	}
	return d
}

// RemoveAll is os.RemoveAll, except under Wine, where it removes the tree
// one entry at a time with os.Remove (see TempDir).
func RemoveAll(path string) error {
	if !Detected() {
		return os.RemoveAll(path)
	}
	var paths []string
	err := filepath.WalkDir(path, func(p string, _ fs.DirEntry, err error) error {
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		return err
	}
	// Children before their parents.
	slices.Reverse(paths)
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}
