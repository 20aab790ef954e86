//go:build !unix && !windows

package audit

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// openAppend where neither Unix nor Windows rules apply: no symbolic link
// or other non-regular file is followed (checked with os.Lstat).
func openAppend(path string) (io.WriteCloser, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("audit log %s is not a regular file: refusing to follow it", path)
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
}
