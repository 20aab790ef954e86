//go:build unix

package localsock

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runtimeDir points XDG_RUNTIME_DIR at a fresh directory with a short
// path (a socket path must fit in about 100 bytes).
func runtimeDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "ls")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	t.Setenv("XDG_RUNTIME_DIR", d)
	return d
}

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

func TestDirAndPath(t *testing.T) {
	d := runtimeDir(t)
	if Dir() != filepath.Join(d, "credsync") || Path() != filepath.Join(d, "credsync", "host.sock") {
		t.Fatalf("Dir() = %q, Path() = %q", Dir(), Path())
	}
	for _, v := range []string{"", "relative/dir"} {
		t.Setenv("XDG_RUNTIME_DIR", v)
		want := filepath.Join(os.TempDir(), "credsync-"+strconv.Itoa(os.Geteuid()))
		if Dir() != want {
			t.Fatalf("XDG_RUNTIME_DIR=%q: Dir() = %q, want %q", v, Dir(), want)
		}
	}
}

func TestListenModesAndRoundTrip(t *testing.T) {
	d := runtimeDir(t)
	ln, path, err := Listen()
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(d, "credsync", "host.sock") {
		t.Fatalf("path = %q", path)
	}
	if m := mode(t, filepath.Dir(path)); !m.IsDir() || m.Perm() != 0o700 {
		t.Fatalf("directory mode = %v, want drwx------", m)
	}
	if m := mode(t, path); m.Type() != fs.ModeSocket || m.Perm() != 0o600 {
		t.Fatalf("socket mode = %v, want Srw-------", m)
	}

	accepted := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- "accept: " + err.Error()
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(io.LimitReader(c, 5))
		c.Write([]byte("pong"))
		accepted <- string(b)
	}()
	c, err := Dial(context.Background())
	if err != nil {
		t.Fatalf("Dial() = %v", err)
	}
	c.Write([]byte("ping!"))
	reply, _ := io.ReadAll(c)
	c.Close()
	if got := <-accepted; got != "ping!" || string(reply) != "pong" {
		t.Fatalf("server read %q, client read %q", got, reply)
	}

	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the socket outlived Close: %v", err)
	}
	if _, err := Dial(context.Background()); !errors.Is(err, ErrNotListening) {
		t.Fatalf("Dial() after Close = %v, want ErrNotListening", err)
	}
	// The lock is released: a new host can listen.
	ln2, _, err := Listen()
	if err != nil {
		t.Fatalf("Listen() after Close = %v", err)
	}
	ln2.Close()
}

func TestDialWithoutHost(t *testing.T) {
	d := runtimeDir(t)
	if _, err := Dial(context.Background()); !errors.Is(err, ErrNotListening) {
		t.Fatalf("no directory: Dial() = %v", err)
	}
	if err := os.Mkdir(filepath.Join(d, "credsync"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Dial(context.Background()); !errors.Is(err, ErrNotListening) {
		t.Fatalf("no socket: Dial() = %v", err)
	}
	leaveStaleSocket(t, filepath.Join(d, "credsync", "host.sock"))
	if _, err := Dial(context.Background()); !errors.Is(err, ErrNotListening) {
		t.Fatalf("stale socket: Dial() = %v", err)
	}
}

// leaveStaleSocket leaves a socket file at path that nobody listens on, as
// a host killed with SIGKILL does.
func leaveStaleSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if mode(t, path).Type() != fs.ModeSocket {
		t.Fatal("no stale socket left")
	}
}

func TestRefusesUnsafeDirectory(t *testing.T) {
	cases := map[string]func(t *testing.T, dir string){
		"mode 0777": func(t *testing.T, dir string) {
			if err := os.Mkdir(dir, 0o777); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, 0o777); err != nil { // past the umask
				t.Fatal(err)
			}
		},
		"mode 0750": func(t *testing.T, dir string) {
			if err := os.Mkdir(dir, 0o750); err != nil {
				t.Fatal(err)
			}
		},
		"symlink to a private directory": func(t *testing.T, dir string) {
			target := filepath.Join(filepath.Dir(dir), "elsewhere")
			if err := os.Mkdir(target, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, dir); err != nil {
				t.Fatal(err)
			}
		},
		"regular file": func(t *testing.T, dir string) {
			if err := os.WriteFile(dir, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, prepare := range cases {
		t.Run(name, func(t *testing.T) {
			d := runtimeDir(t)
			dir := filepath.Join(d, "credsync")
			prepare(t, dir)
			before := mode(t, dir)
			ln, _, err := Listen()
			if err == nil {
				ln.Close()
				t.Fatal("Listen() accepted the directory")
			}
			if !strings.Contains(err.Error(), "refusing "+dir) {
				t.Fatalf("Listen() = %v", err)
			}
			if _, err := Dial(context.Background()); err == nil || errors.Is(err, ErrNotListening) || !strings.Contains(err.Error(), "refusing") {
				t.Fatalf("Dial() = %v, want a refusal", err)
			}
			if after := mode(t, dir); after != before {
				t.Fatalf("the directory changed from %v to %v", before, after)
			}
			if _, err := os.Lstat(filepath.Join(d, "elsewhere", "host.sock")); err == nil {
				t.Fatal("a socket was created through the symbolic link")
			}
		})
	}
}

func TestRefusesDirectoryOfAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a directory to another user")
	}
	d := runtimeDir(t)
	dir := filepath.Join(d, "credsync")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Listen(); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
		t.Fatalf("Listen() = %v", err)
	}
	if _, err := Dial(context.Background()); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
		t.Fatalf("Dial() = %v", err)
	}
}

func TestStaleSocketIsReplaced(t *testing.T) {
	d := runtimeDir(t)
	if err := os.Mkdir(filepath.Join(d, "credsync"), 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(d, "credsync", "host.sock")
	leaveStaleSocket(t, path)
	ln, _, err := Listen()
	if err != nil {
		t.Fatalf("Listen() over a stale socket = %v", err)
	}
	defer ln.Close()
	c, err := Dial(context.Background())
	if err != nil {
		t.Fatalf("Dial() = %v", err)
	}
	c.Close()
}

func TestLiveSocketIsKept(t *testing.T) {
	d := runtimeDir(t)
	ln, path, err := Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// A second host (the lock says so).
	if _, _, err := Listen(); !errors.Is(err, ErrInUse) {
		t.Fatalf("second Listen() = %v, want ErrInUse", err)
	}
	// Without the lock (an older host): the live socket answers and stays.
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	if err := removeStale(path); !errors.Is(err, ErrInUse) {
		t.Fatalf("removeStale(live) = %v, want ErrInUse", err)
	}
	if mode(t, path).Type() != fs.ModeSocket {
		t.Fatal("the live socket was removed")
	}
	_ = d
}

func TestNonSocketIsNotReplaced(t *testing.T) {
	d := runtimeDir(t)
	dir := filepath.Join(d, "credsync")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "host.sock")
	if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Listen(); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen() = %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "keep me" {
		t.Fatalf("the file was replaced: %q", b)
	}
}

// socketPair returns both ends of a connection over a fresh socket.
func socketPair(t *testing.T) (client, server *net.UnixConn) {
	t.Helper()
	d := runtimeDir(t)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(d, "p.sock"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.DialUnix("unix", nil, ln.Addr().(*net.UnixAddr))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

func TestCheckPeer(t *testing.T) {
	client, server := socketPair(t)
	me := os.Geteuid()
	if err := checkPeer(server, me); err != nil {
		t.Fatalf("checkPeer(own uid) = %v", err)
	}
	if err := checkPeer(client, me); err != nil {
		t.Fatalf("checkPeer(own uid) from the client side = %v", err)
	}
	if err := checkPeer(server, me+1); err == nil || !strings.Contains(err.Error(), "uid "+strconv.Itoa(me)) {
		t.Fatalf("checkPeer(other uid) = %v", err)
	}
}

// A listener whose user is not ours closes our connection and keeps
// listening.
func TestAcceptRejectsOtherUser(t *testing.T) {
	runtimeDir(t)
	ln, path, err := listen(Dir(), os.Geteuid())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ln.(*listener).uid = os.Geteuid() + 1 // as if we were someone else

	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if conn, err := ln.Accept(); !errors.Is(err, ErrRejected) {
		if conn != nil {
			conn.Close()
		}
		t.Fatalf("Accept() = %v, want ErrRejected", err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the rejected connection read %d, %v; want it closed", n, err)
	}

	ln.(*listener).uid = os.Geteuid()
	c2, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept() after a rejection = %v", err)
	}
	conn.Close()
}

const childEnv = "CREDSYNC_LOCALSOCK_CHILD_DIAL"

// TestChildDial is the helper process of TestRealOtherUserIsRejected: it
// connects to the socket named in childEnv and exits 0 when the server
// closes the connection without a word, 3 when it answers.
func TestChildDial(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("helper process only")
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		os.Stderr.WriteString("dial: " + err.Error() + "\n")
		os.Exit(4)
	}
	c.Write([]byte("x"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(make([]byte, 1))
	if n > 0 || errors.Is(err, os.ErrDeadlineExceeded) {
		os.Exit(3)
	}
	os.Exit(0)
}

// As root, a process running as nobody (uid 65534) connects to a socket
// made reachable on purpose; the peer check must close it.
func TestRealOtherUserIsRejected(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a process as another user")
	}
	d := runtimeDir(t)
	ln, path, err := Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// Open the way for the other user, so that only the peer check stands.
	for p, m := range map[string]os.FileMode{d: 0o755, filepath.Dir(path): 0o711, path: 0o666} {
		if err := os.Chmod(p, m); err != nil {
			t.Fatal(err)
		}
	}
	// A copy of the test binary the other user can run.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(d, "child.test")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}

	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if c != nil {
			c.Write([]byte("y"))
			c.Close()
		}
		accepted <- err
	}()
	cmd := exec.Command(bin, "-test.run=^TestChildDial$")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	cmd.Dir = d
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the other user's connection was not refused: %v\n%s", err, out)
	}
	if err := <-accepted; !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "uid 65534") {
		t.Fatalf("Accept() = %v, want a rejection of uid 65534", err)
	}
}
