//go:build unix

package audit

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// openAppend creates the directory (0700) and makes a loosened one private
// again, checks it (checkDir), then opens the file with O_NOFOLLOW (a
// symbolic link is not followed) and O_NONBLOCK (a FIFO planted there does
// not block the host), checks what it opened (checkFile) and makes it 0600.
func openAppend(path string) (io.WriteCloser, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := privateDir(dir); err != nil {
		return nil, fmt.Errorf("audit log %s: %w", dir, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return nil, fmt.Errorf("audit log %s is a symbolic link: refusing to follow it", path)
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			err = errors.New("cannot read the log's owner")
		} else {
			err = checkFile(fi.Mode(), st.Uid, os.Geteuid(), uint64(st.Nlink))
		}
	}
	if err == nil && fi.Mode().Perm() != 0o600 {
		// A file made looser by hand is made private again (on the
		// descriptor: it is the file just checked).
		err = f.Chmod(0o600)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	return f, nil
}

// privateDir makes dir (the user's own) 0700 if group or others have any
// access, then applies checkDir. A directory owned by someone else is left
// as it is.
func privateDir(dir string) error {
	owner := func() (uint32, fs.FileMode, error) {
		fi, err := os.Stat(dir)
		if err != nil {
			return 0, 0, err
		}
		if !fi.IsDir() {
			return 0, 0, errors.New("not a directory")
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return 0, 0, errors.New("cannot read the directory's owner")
		}
		return st.Uid, fi.Mode() & (fs.ModePerm | fs.ModeSticky | fs.ModeSetgid | fs.ModeSetuid), nil
	}
	uid, mode, err := owner()
	if err != nil {
		return err
	}
	euid := os.Geteuid()
	if int64(uid) == int64(euid) && mode != 0o700 && mode.Perm()&0o077 != 0 {
		_ = os.Chmod(dir, 0o700) // checked below
		if uid, mode, err = owner(); err != nil {
			return err
		}
	}
	return checkDir(uid, euid, mode.Perm())
}
