//go:build !linux && !windows

package tbharness

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func becomeSubreaper() {}

func reapGroup(int) {}

// groupMembers reports whether the group still has a member (without /proc
// it cannot tell zombies apart).
func groupMembers(pgid int) []int {
	if err := syscall.Kill(-pgid, 0); err == nil {
		return []int{pgid}
	}
	return nil
}
