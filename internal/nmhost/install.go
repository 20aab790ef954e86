package nmhost

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// Modes of what Install writes. The manifest holds no secret and every
// Thunderbird user must be able to read it.
const (
	ManifestMode fs.FileMode = 0o644
	DirMode      fs.FileMode = 0o755
)

// InstallResult says what Install did.
type InstallResult struct {
	// Written lists the manifest files written or re-moded; Unchanged the
	// ones that were already exactly right.
	Written, Unchanged []string
	// RegistrySet is true when the registry value was created or changed,
	// RegistryUnchanged when it already held the manifest path.
	RegistrySet, RegistryUnchanged bool
}

// Install writes m to loc.Path (and to each mirror whose IfExists
// directory exists), creating directories with DirMode, and on Windows
// points loc.Registry at it. Files are replaced atomically (temporary file
// in the same directory, then rename) with mode ManifestMode; a file that
// already has the right content and mode is left alone, so Install is
// idempotent. reg is used only when loc.Registry is set.
func Install(loc Location, m Manifest, reg Registry) (InstallResult, error) {
	var res InstallResult
	if err := m.Validate(loc.GOOS); err != nil {
		return res, fmt.Errorf("refusing to write an invalid manifest: %w", err)
	}
	data, err := m.JSON()
	if err != nil {
		return res, err
	}
	paths := []string{loc.Path}
	for _, mi := range loc.Mirrors {
		if fi, err := os.Stat(mi.IfExists); err == nil && fi.IsDir() {
			paths = append(paths, mi.Path)
		}
	}
	for _, p := range paths {
		changed, err := writeFileAtomic(p, data, ManifestMode)
		if err != nil {
			return res, err
		}
		if changed {
			res.Written = append(res.Written, p)
		} else {
			res.Unchanged = append(res.Unchanged, p)
		}
	}
	if !loc.Registry.IsZero() {
		if reg == nil {
			return res, errors.New("no registry to register the manifest in")
		}
		cur, err := reg.ReadDefault(loc.Registry)
		switch {
		case err == nil && cur == loc.Path:
			res.RegistryUnchanged = true
		case err == nil || errors.Is(err, fs.ErrNotExist):
			if err := reg.WriteDefault(loc.Registry, loc.Path); err != nil {
				return res, err
			}
			res.RegistrySet = true
		default:
			return res, err
		}
	}
	return res, nil
}

// UninstallResult says what Uninstall did.
type UninstallResult struct {
	// Removed lists the manifest files removed.
	Removed []string
	// RegistryRemoved is true when the registry key was deleted.
	RegistryRemoved bool
}

// Nothing reports whether there was nothing to remove.
func (r UninstallResult) Nothing() bool { return len(r.Removed) == 0 && !r.RegistryRemoved }

// Uninstall removes what Install wrote for loc: the registry key (Windows),
// the manifest file and its mirrors, and loc.OwnDir when it is left empty.
// Missing pieces are not an error; see UninstallResult.Nothing.
func Uninstall(loc Location, reg Registry) (UninstallResult, error) {
	var res UninstallResult
	if !loc.Registry.IsZero() {
		if reg == nil {
			return res, errors.New("no registry to remove the registration from")
		}
		switch err := reg.DeleteKey(loc.Registry); {
		case err == nil:
			res.RegistryRemoved = true
		case !errors.Is(err, fs.ErrNotExist):
			return res, err
		}
	}
	paths := []string{loc.Path}
	for _, mi := range loc.Mirrors {
		paths = append(paths, mi.Path)
	}
	for _, p := range paths {
		switch err := os.Remove(p); {
		case err == nil:
			res.Removed = append(res.Removed, p)
		case !errors.Is(err, fs.ErrNotExist):
			return res, err
		}
	}
	if loc.OwnDir != "" {
		// Fails, harmlessly, when something else was put there.
		_ = os.Remove(loc.OwnDir)
	}
	return res, nil
}

// writeFileAtomic makes path hold data with mode perm. It returns false,
// without writing, when the file is already so.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) (changed bool, err error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode().IsRegular() {
		if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, data) {
			if fi.Mode().Perm() == perm || runtime.GOOS == "windows" {
				return false, nil
			}
			return true, os.Chmod(path, perm)
		}
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return false, err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return false, err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return false, err
	}
	// CreateTemp makes the file 0600; set the mode explicitly so the
	// umask does not matter either.
	if err = tmp.Chmod(perm); err != nil && runtime.GOOS != "windows" {
		return false, err
	}
	if err = tmp.Sync(); err != nil {
		return false, err
	}
	if err = tmp.Close(); err != nil {
		return false, err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return false, err
	}
	syncDir(dir)
	return true, nil
}

// syncDir makes a rename in dir durable, where the OS allows it.
func syncDir(dir string) {
	if runtime.GOOS == "windows" {
		return
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
