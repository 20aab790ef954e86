//go:build unix

package localsock

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	socketName = "host.sock"
	lockName   = "host.lock"
	// probeTimeout bounds the check whether an existing socket is alive.
	probeTimeout = time.Second
)

// Dir is the private directory that holds the socket:
// $XDG_RUNTIME_DIR/credsync when XDG_RUNTIME_DIR is an absolute path, else
// credsync-<uid> in os.TempDir() ($TMPDIR, or /tmp).
func Dir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "credsync")
	}
	return filepath.Join(os.TempDir(), "credsync-"+strconv.Itoa(os.Geteuid()))
}

// Path is the socket's path, Dir()/host.sock.
func Path() string { return filepath.Join(Dir(), socketName) }

// Listen creates the socket at Path() and returns its listener, whose
// Accept returns only connections from this process's user. Dir() is
// created with mode 0700 if missing; an existing one is used only if it is
// a real directory (not a symbolic link) owned by this user with mode
// 0700. An existing socket is replaced only if nobody answers on it. Close
// removes the socket.
func Listen() (net.Listener, string, error) {
	return listen(Dir(), os.Geteuid())
}

// Dial connects to the host listening on Path(). Errors wrap
// ErrNotListening when no host listens. It refuses a directory that is not
// private to this user and a server run by another user.
func Dial(ctx context.Context) (net.Conn, error) {
	return dial(ctx, Dir(), os.Geteuid())
}

func listen(dir string, uid int) (net.Listener, string, error) {
	if err := ensureDir(dir, uid); err != nil {
		return nil, "", err
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, "", err
	}
	path := filepath.Join(dir, socketName)
	if err := removeStale(path); err != nil {
		lock.Close()
		return nil, "", err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		lock.Close()
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, "", fmt.Errorf("%s: %w", path, ErrInUse)
		}
		return nil, "", err
	}
	// The directory is already private; 0600 says so again on the socket.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		lock.Close()
		return nil, "", err
	}
	return &listener{UnixListener: ln, lock: lock, uid: uid}, path, nil
}

// ensureDir creates dir with mode 0700, or checks that the existing one is
// private to uid. It never follows a symbolic link at dir.
func ensureDir(dir string, uid int) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		fi, err = os.Lstat(dir)
	}
	if err != nil {
		return err
	}
	return checkDir(dir, fi, uid)
}

// checkDir refuses anything but a directory owned by uid with mode 0700:
// another user could otherwise read the socket's traffic or stand in for
// the host.
func checkDir(dir string, fi fs.FileInfo, uid int) error {
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("refusing %s: it is a symbolic link (remove it)", dir)
	case !fi.IsDir():
		return fmt.Errorf("refusing %s: it is not a directory (remove it)", dir)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("refusing %s: cannot tell its owner", dir)
	}
	if int(st.Uid) != uid {
		return fmt.Errorf("refusing %s: it belongs to uid %d, not %d (remove it)", dir, st.Uid, uid)
	}
	if fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0o700 {
		return fmt.Errorf("refusing %s: its mode is %04o, not 0700 (chmod 700 it, or remove it)", dir, fi.Mode().Perm())
	}
	return nil
}

// lockDir holds dir/host.lock for the listener's lifetime, so two hosts
// starting at once cannot both replace the socket. The kernel releases it
// when the process ends.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is locked: %w", path, ErrInUse)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return f, nil
}

// removeStale removes a socket at path that nobody answers on. A live one
// means another host listens; anything but a socket is left alone.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("refusing to replace %s: it is not a socket (remove it)", path)
	}
	conn, err := net.DialTimeout("unix", path, probeTimeout)
	if err == nil {
		conn.Close()
		return fmt.Errorf("%s answers: %w", path, ErrInUse)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("checking %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func dial(ctx context.Context, dir string, uid int) (net.Conn, error) {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s does not exist: %w", dir, ErrNotListening)
	}
	if err != nil {
		return nil, err
	}
	if err := checkDir(dir, fi, uid); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, socketName)
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%s: %w", path, ErrNotListening)
		}
		return nil, err
	}
	if err := checkPeer(conn.(*net.UnixConn), uid); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%s: the listening program %w", path, err)
	}
	return conn, nil
}

// checkPeer fails unless the process at the other end of c runs as uid
// (Linux SO_PEERCRED, macOS and FreeBSD LOCAL_PEERCRED).
func checkPeer(c *net.UnixConn, uid int) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var peer int
	var credErr error
	if err := raw.Control(func(fd uintptr) { peer, credErr = peerUID(int(fd)) }); err != nil {
		return err
	}
	if credErr != nil {
		return fmt.Errorf("cannot tell the peer's user: %w", credErr)
	}
	if peer != uid {
		return fmt.Errorf("runs as uid %d, not %d", peer, uid)
	}
	return nil
}

// listener accepts only connections from its own user and holds the
// directory lock until closed.
type listener struct {
	*net.UnixListener
	lock *os.File
	uid  int
}

// Accept returns the next connection from the listener's user. A
// connection from anyone else is closed, and Accept returns an error
// wrapping ErrRejected; the listener stays open.
func (l *listener) Accept() (net.Conn, error) {
	c, err := l.AcceptUnix()
	if err != nil {
		return nil, err
	}
	if err := checkPeer(c, l.uid); err != nil {
		c.Close()
		return nil, fmt.Errorf("%w: the peer %v", ErrRejected, err)
	}
	return c, nil
}

// Close stops listening, removes the socket, then releases the lock.
func (l *listener) Close() error {
	err := l.UnixListener.Close()
	l.lock.Close()
	return err
}
