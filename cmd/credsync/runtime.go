package main

import (
	"math"
	"runtime"
	"runtime/debug"
)

// Thunderbird starts the host for each popup and each propagation. It lives
// for seconds and spends them waiting on the network: two logins overlap on
// the wire, and their CPU work (one TLS handshake each, about a millisecond)
// does not need two cores. One core and a small heap keep its footprint
// near the binary's own (docs/benchmarks.md, "Host start-up and memory").
const (
	hostProcs = 1
	// hostMemoryLimit is the Go runtime's soft limit: the collector runs
	// more often to stay under it, and returns freed memory sooner, but
	// never fails an allocation. Loading the system's root certificates
	// would otherwise leave megabytes of garbage resident.
	hostMemoryLimit = 6 << 20
)

// memoryLimitOwned is set when the host set hostMemoryLimit itself, before
// anything runs concurrently.
var memoryLimitOwned bool

// hostRuntime is what the host sets, unless the environment says
// otherwise: GOMAXPROCS and GOMEMLIMIT are the Go runtime's own knobs, and
// an administrator's values win. -1 leaves a setting as it is.
func hostRuntime(getenv func(string) string) (procs int, memoryLimit int64) {
	procs, memoryLimit = -1, -1
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
		memoryLimitOwned = true
	}
}

// liftMemoryLimit is the host's protocol.Host.BeforeChange. A change
// estimates the new password's strength, and the estimator's word lists
// (about 7 MiB, loaded on first use) outgrow hostMemoryLimit: under it the
// collector would run at up to half the CPU for the rest of the flow, and
// the first change would take about 85 ms longer. The limit is lifted for
// the rest of the process; an administrator's GOMEMLIMIT is left alone.
func liftMemoryLimit() {
	if memoryLimitOwned {
		debug.SetMemoryLimit(math.MaxInt64)
	}
}
