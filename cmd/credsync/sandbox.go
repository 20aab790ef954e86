//go:build sandbox

package main

// Demo and test builds (`-tags sandbox`: make demo, make bench, the
// end-to-end and security suites) add the sandbox back-end, which changes
// passwords at credsync's own test servers (internal/testkit/sandbox).
// Release builds (make build, make cross, scripts/dist/build) leave the tag
// out, so a release binary neither holds nor lists it (release_test.go).
import (
	"os"
	"strings"
	"time"

	"github.com/credsync/credsync/internal/flow"
	_ "github.com/credsync/credsync/internal/testkit/sandbox/backend"
)

// recheckEnv compresses the wait for lagging servers (PROTOCOL.md,
// "Waiting for the servers") in demo and test builds only: a comma-
// separated list of Go durations replacing flow.RecheckSchedule, e.g.
// "2s,4s,8s,12s,16s" for the end-to-end suite. Release builds never read
// it.
const recheckEnv = "CREDSYNC_TEST_RECHECK"

func init() {
	v := os.Getenv(recheckEnv)
	if v == "" {
		return
	}
	var schedule []time.Duration
	for _, f := range strings.Split(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil || d <= 0 {
			return
		}
		schedule = append(schedule, d)
	}
	testRecheck = &flow.Recheck{Schedule: schedule}
}
