package audit

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// openAppend on Windows: there is no O_NOFOLLOW, and reparse points
// (symbolic links, junctions, mount points) show in os.Lstat as anything
// but a regular file or directory. The directory and an existing file are
// checked with os.Lstat before opening, and the opened file must be the one
// checked (os.SameFile). Ownership is not checked: %LOCALAPPDATA% is the
// user's own by its default ACL.
func openAppend(path string) (io.WriteCloser, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(dir); err != nil {
		return nil, err
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("audit log %s is a link or reparse point, not a directory: refusing to write in it", dir)
	}
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("audit log %s is a link or reparse point (%v), not a regular file: refusing to follow it", path, fi.Mode().Type())
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	opened, err := f.Stat()
	if err == nil {
		var now os.FileInfo
		if now, err = os.Lstat(path); err == nil && (!now.Mode().IsRegular() || !os.SameFile(now, opened)) {
			err = fmt.Errorf("audit log %s was replaced while it was opened: refusing to write to it", path)
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
