package localsock

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/credsync/credsync/internal/testkit/wine"
)

// Windows tests share the one pipe name of the user: they run one at a
// time, and no other credsync host may run meanwhile.

func TestPipeRoundTrip(t *testing.T) {
	ln, path, err := Listen()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(path, `\\.\pipe\credsync-S-1-`) || path != Path() {
		t.Fatalf("path = %q, Path() = %q", path, Path())
	}
	if wine.Detected() {
		// go-winio's first pipe instance has no read or write access,
		// which on Windows keeps clients out until Accept; Wine 8.0 lets
		// a client connect to it, and that client is never served.
		// Connect once and hang up, as credsync sync's probe does.
		probe, err := Dial(context.Background())
		if err != nil {
			t.Fatalf("Dial() = %v", err)
		}
		probe.Close()
	}
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		b := make([]byte, 5)
		io.ReadFull(c, b)
		c.Write([]byte("pong"))
		c.Close()
		got <- string(b)
	}()
	c, err := Dial(context.Background())
	if err != nil {
		t.Fatalf("Dial() = %v", err)
	}
	c.Write([]byte("ping!"))
	reply := make([]byte, 4)
	io.ReadFull(c, reply)
	c.Close()
	if s := <-got; s != "ping!" || string(reply) != "pong" {
		t.Fatalf("server read %q, client read %q", s, reply)
	}
	ln.Close()
	if _, err := Dial(context.Background()); !errors.Is(err, ErrNotListening) {
		t.Fatalf("Dial() after Close = %v, want ErrNotListening", err)
	}
}

// A second host of the same user finds the pipe taken.
func TestPipeInUse(t *testing.T) {
	wine.Skip(t, "Wine 8.0 lets a second listener create a named pipe that exists (NtCreateNamedPipeFile ignores FILE_CREATE)")
	ln, _, err := Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if second, _, err := Listen(); !errors.Is(err, ErrInUse) {
		if err == nil {
			second.Close()
		}
		t.Fatalf("second Listen() = %v, want ErrInUse", err)
	}
}
