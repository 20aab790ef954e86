//go:build unix && !linux && !darwin && !freebsd

package localsock

import "errors"

// peerUID cannot tell the peer's user on this system, so every connection
// is refused.
func peerUID(int) (int, error) {
	return -1, errors.New("peer credentials are not supported on this system")
}
