package localsock

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	winio "github.com/Microsoft/go-winio"
	"golang.org/x/sys/windows"
)

// pipePrefix is followed by the user's SID.
const pipePrefix = `\\.\pipe\credsync-`

// Path is the named pipe `\\.\pipe\credsync-<user SID>`.
func Path() string {
	sid, err := currentSID()
	if err != nil {
		// Listen and Dial report the error; the name is informative here.
		return pipePrefix + "unknown"
	}
	return pipePrefix + sid.String()
}

// Listen creates the named pipe \\.\pipe\credsync-<SID>, whose security
// descriptor admits only this user and no network logon; the pipe also
// rejects remote clients. It fails when the pipe already exists (another
// host, or another program holding the name). Accept returns only
// connections from processes of this user.
func Listen() (net.Listener, string, error) {
	sid, err := currentSID()
	if err != nil {
		return nil, "", err
	}
	path := pipePrefix + sid.String()
	// Owner and only allowed user: the current user; network logons denied.
	sd := "O:" + sid.String() + "D:P(D;;GA;;;NU)(A;;GA;;;" + sid.String() + ")"
	ln, err := winio.ListenPipe(path, &winio.PipeConfig{SecurityDescriptor: sd})
	if err != nil {
		if errors.Is(err, windows.ERROR_ALREADY_EXISTS) || errors.Is(err, windows.ERROR_ACCESS_DENIED) ||
			errors.Is(err, windows.ERROR_PIPE_BUSY) {
			return nil, "", fmt.Errorf("%s: %w (%v)", path, ErrInUse, err)
		}
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	return &pipeListener{Listener: ln, sid: sid}, path, nil
}

// Dial connects to the pipe and checks that the process serving it runs as
// this user: anyone may create a pipe of that name first.
func Dial(ctx context.Context) (net.Conn, error) {
	sid, err := currentSID()
	if err != nil {
		return nil, err
	}
	path := pipePrefix + sid.String()
	conn, err := winio.DialPipeContext(ctx, path)
	if err != nil {
		if errors.Is(err, windows.ERROR_FILE_NOT_FOUND) || errors.Is(err, windows.ERROR_PATH_NOT_FOUND) {
			return nil, fmt.Errorf("%s: %w", path, ErrNotListening)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := checkPeer(conn, sid, windows.GetNamedPipeServerProcessId); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%s: the serving program %w", path, err)
	}
	return conn, nil
}

type pipeListener struct {
	net.Listener
	sid *windows.SID
}

// Accept returns the next connection from this user's processes; any other
// is closed and reported as an error wrapping ErrRejected.
func (l *pipeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if err := checkPeer(c, l.sid, windows.GetNamedPipeClientProcessId); err != nil {
		c.Close()
		return nil, fmt.Errorf("%w: the peer %v", ErrRejected, err)
	}
	return c, nil
}

// checkPeer fails unless the process at the other end of the pipe
// (processID names the end) runs as sid.
func checkPeer(c net.Conn, sid *windows.SID, processID func(windows.Handle, *uint32) error) error {
	f, ok := c.(interface{ Fd() uintptr })
	if !ok {
		return errors.New("cannot be identified")
	}
	var pid uint32
	if err := processID(windows.Handle(f.Fd()), &pid); err != nil {
		return fmt.Errorf("cannot be identified: %w", err)
	}
	peer, err := processSID(pid)
	if err != nil {
		return fmt.Errorf("cannot be identified: %w", err)
	}
	if !peer.Equals(sid) {
		return fmt.Errorf("runs as %s, not %s", peer, sid)
	}
	return nil
}

func processSID(pid uint32) (*windows.SID, error) {
	p, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, pid)
	if err != nil {
		return nil, err
	}
	defer windows.CloseHandle(p)
	var token windows.Token
	if err := windows.OpenProcessToken(p, windows.TOKEN_QUERY, &token); err != nil {
		return nil, err
	}
	defer token.Close()
	user, err := token.GetTokenUser()
	if err != nil {
		return nil, err
	}
	return user.User.Sid.Copy()
}

var currentSID = sync.OnceValues(func() (*windows.SID, error) {
	user, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return nil, fmt.Errorf("reading the current user's SID: %w", err)
	}
	return user.User.Sid.Copy()
})
