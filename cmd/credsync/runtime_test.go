package main

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestHostRuntimeLeavesTheEnvironmentsSettings(t *testing.T) {
	for _, tc := range []struct {
		env         map[string]string
		procs       int
		memoryLimit int64
	}{
		{env: nil, procs: hostProcs, memoryLimit: hostMemoryLimit},
		{env: map[string]string{"GOMAXPROCS": "4"}, procs: -1, memoryLimit: hostMemoryLimit},
		{env: map[string]string{"GOMEMLIMIT": "off"}, procs: hostProcs, memoryLimit: -1},
		{env: map[string]string{"GOMAXPROCS": "2", "GOMEMLIMIT": "64MiB"}, procs: -1, memoryLimit: -1},
	} {
		procs, limit := hostRuntime(func(k string) string { return tc.env[k] })
		if procs != tc.procs || limit != tc.memoryLimit {
			t.Errorf("environment %v: GOMAXPROCS %d, memory limit %d; want %d, %d", tc.env, procs, limit, tc.procs, tc.memoryLimit)
		}
	}
}

func TestLiftMemoryLimitOnlyLiftsTheHostsOwn(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	defer func(owned bool) { memoryLimitOwned = owned }(memoryLimitOwned)

	debug.SetMemoryLimit(64 << 20) // an administrator's GOMEMLIMIT
	memoryLimitOwned = false
	liftMemoryLimit()
	if got := debug.SetMemoryLimit(-1); got != 64<<20 {
		t.Errorf("the administrator's limit became %d", got)
	}

	debug.SetMemoryLimit(hostMemoryLimit)
	memoryLimitOwned = true
	liftMemoryLimit()
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("the host's own limit is still %d after a change began", got)
	}
}
