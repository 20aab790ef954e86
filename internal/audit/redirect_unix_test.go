//go:build unix

package audit

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The audit log cannot be redirected (issue 19, item 5): a symlink, a hard
// link or a FIFO planted where the log goes, a directory others may write
// to or that someone else owns.

// outsideFile is a file outside the log's directory standing for a file the
// user must not append to (root's, another user's): its content and mode
// must stay as they are.
func outsideFile(t *testing.T) (path string, check func()) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "precious")
	const content = "not the audit log\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, func() {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o644 {
			t.Errorf("the outside file's mode became %04o", fi.Mode().Perm())
		}
		if b, _ := os.ReadFile(path); string(b) != content {
			t.Errorf("the outside file was written to: %q", b)
		}
	}
}

func TestSymlinkedLogIsRefused(t *testing.T) {
	target, untouched := outsideFile(t)
	dir := filepath.Join(t.TempDir(), "credsync")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit.log")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	err := (&Log{Path: path}).Write(record("a"))
	if err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("Write() = %v, want a refusal naming the symbolic link", err)
	}
	untouched()
}

// A dangling symlink would make O_CREAT create the file it points to.
func TestDanglingSymlinkIsRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "credsync")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "created-elsewhere")
	path := filepath.Join(dir, "audit.log")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	if err := (&Log{Path: path}).Write(record("a")); err == nil {
		t.Fatal("Write() through a dangling symlink succeeded")
	}
	if _, err := os.Lstat(target); !os.IsNotExist(err) {
		t.Fatalf("the symlink's target was created: %v", err)
	}
}

func TestHardLinkedLogIsRefused(t *testing.T) {
	target, untouched := outsideFile(t)
	dir := filepath.Join(filepath.Dir(target), "credsync") // same file system
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit.log")
	if err := os.Link(target, path); err != nil {
		t.Skipf("cannot make a hard link here: %v", err)
	}
	if err := (&Log{Path: path}).Write(record("a")); err == nil {
		t.Fatal("Write() to a file with a second link succeeded")
	}
	untouched()
}

func TestFIFOIsRefusedWithoutHanging(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- (&Log{Path: path}).Write(record("a")) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Write() to a FIFO succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Write() to a FIFO hangs")
	}
}

// Today only the file was made private again: a 0777 directory stayed
// 0777, and anyone could plant a link in it.
func TestLooseDirectoryIsMadePrivate(t *testing.T) {
	for _, mode := range []os.FileMode{0o777, 0o775, 0o755, 0o1777} {
		dir := filepath.Join(t.TempDir(), "credsync")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "audit.log")
		if err := (&Log{Path: path}).Write(record("a")); err != nil {
			t.Fatalf("mode %04o: Write() = %v, want the directory made private and the record written", mode, err)
		}
		if m := stat(t, dir).Mode() & (os.ModePerm | os.ModeSticky); m != 0o700 {
			t.Fatalf("directory mode %04o became %04o, want 0700", mode, m)
		}
	}
}

// A directory owned by someone else is refused, even when its mode is
// private: its owner could plant anything in it. Needs root to give the
// directory away; checkDir's rule itself is covered by TestCheckDirRule on
// every system.
func TestDirectoryOwnedBySomeoneElseIsRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a directory owned by another user (TestCheckDirRule covers the rule)")
	}
	dir := filepath.Join(t.TempDir(), "credsync")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Skipf("chown: %v", err)
	}
	path := filepath.Join(dir, "audit.log")
	err := (&Log{Path: path}).Write(record("a"))
	if err == nil || !strings.Contains(err.Error(), "owned by") {
		t.Fatalf("Write() = %v, want a refusal naming the owner", err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("the log was created in the other user's directory: %v", err)
	}
}

// A log file owned by someone else (in the user's own directory) is refused.
func TestFileOwnedBySomeoneElseIsRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file away (TestCheckFileRule covers the rule)")
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(path, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Skipf("chown: %v", err)
	}
	if err := (&Log{Path: path}).Write(record("a")); err == nil || !strings.Contains(err.Error(), "owned by") {
		t.Fatalf("Write() = %v, want a refusal naming the owner", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "{}\n" {
		t.Fatalf("the file was written to: %q", b)
	}
}
