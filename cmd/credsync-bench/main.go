//go:build !windows

// Command credsync-bench measures credsync against its protocols' floors
// and prints the results as Markdown tables (`make bench`;
// docs/benchmarks.md explains every number).
//
// It exits 0 when the measurements ran, whether or not the goals were met,
// and 1 when the harness itself failed. Thunderbird also starts it as a
// native-messaging host (a tap in front of the real credsync) when it
// measures the extension's store time.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/credsync/credsync/internal/testkit/bench"
	"github.com/credsync/credsync/internal/testkit/mailstack"
	// The sandbox back-end, for the in-process flow cells.
	_ "github.com/credsync/credsync/internal/testkit/sandbox/backend"
)

func main() {
	if bench.TapRequested(os.Args[1:]) {
		os.Exit(bench.Tap(os.Args[1:]))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("credsync-bench", flag.ContinueOnError)
	flags.SetOutput(stderr)
	credsync := flags.String("credsync", "", "the built credsync `binary` (with -tags sandbox: the sandbox back-end) for cold start, peak RSS and the Thunderbird store time")
	rtts := flags.String("rtt", "0,20ms,50ms", "comma-separated round-trip `times` to model; goals are checked at the largest")
	n := flags.Int("n", 7, "samples per verify and flow cell")
	coldN := flags.Int("cold", 100, "cold starts")
	mailstack := flags.String("mailstack", mailstack.EnvPath(), "scripts/mailstack's env `file`")
	tb := flags.String("thunderbird", "", `Thunderbird executable or directory for the store time and the popup; "off" skips them (default: the system one, then the 140 cache, for the store time; both for the popup)`)
	ext := flags.String("extension", "bin/credsync.xpi", "the add-on: the .xpi (`make xpi`), or a directory (without the popup's strength estimator)")
	storeN := flags.Int("store", 10, "store requests timed in Thunderbird")
	reopen := flags.Int("popup-reopen", 10, "popup reopenings timed per Thunderbird")
	changes := flags.Int("popup-changes", 5, "password changes per Thunderbird, each followed by a timed popup opening")
	popupOnly := flags.Bool("popup-only", false, "measure only the popup's opening and the messages per change")
	trace := flags.Bool("trace", false, "print every protocol's flights at the largest RTT on stderr")
	quiet := flags.Bool("q", false, "no progress lines")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	cfg := bench.Config{Credsync: *credsync, N: *n, ColdN: *coldN, Mailstack: *mailstack,
		Thunderbird: *tb, Extension: *ext, StoreN: *storeN, Log: stderr,
		PopupReopen: *reopen, PopupChanges: *changes, PopupOnly: *popupOnly}
	for _, s := range strings.Split(*rtts, ",") {
		s = strings.TrimSpace(s)
		if s == "0" {
			s = "0s"
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			fmt.Fprintf(stderr, "credsync-bench: bad -rtt value %q\n", s)
			return 2
		}
		cfg.RTTs = append(cfg.RTTs, d)
	}
	if *trace {
		cfg.Trace = stderr
	}
	if *quiet {
		cfg.Log = nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	r, err := bench.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "credsync-bench: %v\n", err)
		return 1
	}
	r.Write(stdout)
	fmt.Fprintf(stdout, "Measured in %s.\n", time.Since(start).Round(time.Second))
	return 0
}
