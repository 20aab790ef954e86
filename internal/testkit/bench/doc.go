//go:build !windows

// Package bench measures credsync against its protocols' floors for `make
// bench` (cmd/credsync-bench; results and method in docs/benchmarks.md).
//
// A latency-modelling TCP proxy (Proxy) sits between credsync and the
// servers, the in-process sandbox and, when it is up, the real mail stack of
// scripts/mailstack, and counts the request/response turns on every
// connection. Run measures verify.Both against the slower protocol's floor
// and a sequential baseline, a whole change flow through protocol.Host with a
// fake extension, the host's cold start and peak RSS as Thunderbird starts it,
// and the time a real Thunderbird takes to answer a store request.
package bench
