//go:build darwin || freebsd

package localsock

import "golang.org/x/sys/unix"

// peerUID is the effective uid of the process at the other end of the
// socket fd (LOCAL_PEERCRED, what getpeereid(3) reads).
func peerUID(fd int) (int, error) {
	cred, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return -1, err
	}
	return int(cred.Uid), nil
}
