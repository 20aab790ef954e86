// Package localsock is the per-user local socket on which the credsync host
// that Thunderbird started accepts requests from `credsync sync`
// (PROTOCOL.md, "The local socket"): a Unix socket in a private directory
// on Linux and macOS, a named pipe on Windows. Only the user who runs the
// host can connect, and a client only talks to a host run by its own user.
package localsock

import "errors"

// ErrNotListening is returned by Dial when no credsync host listens: no
// socket, or a socket nobody answers (Thunderbird is not running, or the
// extension is not active).
var ErrNotListening = errors.New("no credsync host is listening")

// ErrInUse is returned by Listen when another credsync host already listens
// for this user (a second Thunderbird profile, or a host being started).
var ErrInUse = errors.New("another credsync host is already listening")

// ErrRejected is wrapped by the error Accept returns after closing a
// connection from another user (or whose user could not be told). The
// listener stays open: call Accept again.
var ErrRejected = errors.New("refused a connection")
