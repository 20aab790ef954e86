package main

import (
	"runtime"
	"runtime/debug"
)

// Thunderbird starts the host for each popup and each propagation. It lives
// for seconds and spends them waiting on the network: two logins overlap on
// the wire, and their CPU work (one TLS handshake each, about a millisecond)
// does not need two cores. One core and a small heap keep its footprint
// near the binary's own (docs/benchmarks.md: peak RSS 13.5 MiB → 11.2 MiB).
const (
	hostProcs = 1
	// hostMemoryLimit is the Go runtime's soft limit: the collector runs
	// more often to stay under it and never fails an allocation. Loading
	// the system's root certificates fills it with garbage; the strength
	// estimate's word lists (about 7 MiB, loaded on a change) go over it,
	// and the collector then runs at up to half the CPU while allocating.
	hostMemoryLimit = 6 << 20
)

// hostRuntime is what the host sets, unless the environment says
// otherwise: GOMAXPROCS and GOMEMLIMIT are the Go runtime's own knobs, and
// an administrator's values win.
func hostRuntime(getenv func(string) string) (procs int, memoryLimit int64) {
	procs, memoryLimit = -1, -1 // leave as they are
	if getenv("GOMAXPROCS") == "" {
		procs = hostProcs
	}
	if getenv("GOMEMLIMIT") == "" {
		memoryLimit = hostMemoryLimit
	}
	return procs, memoryLimit
}

func sizeHostRuntime(getenv func(string) string) {
	procs, memoryLimit := hostRuntime(getenv)
	if procs > 0 {
		runtime.GOMAXPROCS(procs)
	}
	if memoryLimit > 0 {
		debug.SetMemoryLimit(memoryLimit)
	}
}
