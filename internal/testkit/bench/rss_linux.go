//go:build !windows

package bench

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// peakRSS is a running process's peak resident set size in bytes: VmHWM
// in /proc/<pid>/status, the high-water mark of its current address space.
//
// It is read while the process still runs because getrusage's ru_maxrss of
// a child started by a Go program is not the child's own: os/exec starts
// children with clone(CLONE_VM|CLONE_VFORK), and at execve Linux carries the
// high-water mark of the address space the child leaves (the parent's) into
// the child's ru_maxrss, so it reports max(parent, child). MeasureRSS
// reports that figure too, with /bin/true's, to show it.
func peakRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmHWM %q: %w", v, err)
			}
			return kb * 1024, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// maxRSS is getrusage's ru_maxrss (KiB on Linux) of a finished process, in
// bytes.
func maxRSS(st *os.ProcessState) (int64, bool) {
	ru, ok := st.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, false
	}
	return int64(ru.Maxrss) * 1024, true
}
