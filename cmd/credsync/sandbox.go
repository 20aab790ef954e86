//go:build sandbox

package main

// Demo and test builds (`-tags sandbox`: make demo, make bench, the
// end-to-end and security suites) add the sandbox back-end, which changes
// passwords at credsync's own test servers (internal/testkit/sandbox).
// Release builds (make build, make cross, scripts/dist/build) leave the tag
// out, so a release binary neither holds nor lists it (release_test.go).
import _ "github.com/credsync/credsync/internal/testkit/sandbox/backend"
