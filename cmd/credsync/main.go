// Command credsync is both Thunderbird's native-messaging host for the
// credsync extension and a command-line tool. Thunderbird starts it as
// `credsync <manifest path> <extension id>`; any other arguments select a
// subcommand.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/credsync/credsync/internal/audit"
	"github.com/credsync/credsync/internal/flow"
	"github.com/credsync/credsync/internal/localsock"
	"github.com/credsync/credsync/internal/nmhost"
	"github.com/credsync/credsync/internal/protocol"
	"github.com/credsync/credsync/internal/verify"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

// testRecheck is the wait for lagging servers a demo or test build may
// compress (sandbox.go); nil in a release build: the defaults.
var testRecheck *flow.Recheck

// Exit codes shared by the subcommands.
const (
	exitOK       = 0
	exitFailed   = 1 // the operation ran and did not succeed
	exitUsage    = 2 // bad arguments or input
	exitNotAllow = 3 // host mode: the extension is not in the manifest
)

const usage = `credsync changes a mail password once and makes every Thunderbird credential follow.

Usage:
  credsync verify --incoming URL --outgoing URL [--password-stdin] [--ca-file FILE] [--timeout DURATION]
  credsync change --incoming URL --outgoing URL --backend NAME [--backend-url URL] [--password-stdin]
                  [--ca-file FILE] [--timeout DURATION] [--breach-check [--breach-url URL]]
  credsync expiry --incoming URL --backend NAME [--backend-url URL] [--password-stdin] [--ca-file FILE]
  credsync backends [--json]
  credsync sync --account USER@HOST [--password-stdin]
  credsync log [-n N]
  credsync install [--system] [--print] [--binary PATH] [--extension-id ID]
  credsync uninstall [--system]
  credsync doctor [--extension-id ID]
  credsync version

Run "credsync COMMAND -h" for a command's options. Thunderbird starts credsync
itself, as "credsync MANIFEST EXTENSION-ID", to serve the credsync extension.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, terminalSecret)
	stop()
	os.Exit(code)
}

// run is main without process globals, so tests can drive every path.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, secret secretReader) int {
	if launchedByThunderbird(args) {
		return serveHost(ctx, args[0], args[1], stdin, stdout, stderr)
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "verify":
		return runVerify(ctx, args[1:], stdin, stdout, stderr, secret)
	case "change":
		return runChange(ctx, args[1:], stdin, stdout, stderr, secret)
	case "expiry":
		return runExpiry(ctx, args[1:], stdin, stdout, stderr, secret)
	case "backends":
		return runBackends(args[1:], stdout, stderr)
	case "sync":
		return runSync(ctx, args[1:], stdin, stdout, stderr, secret)
	case "log":
		return runLog(args[1:], stdout, stderr)
	case "install":
		return runInstall(args[1:], stdout, stderr)
	case "uninstall":
		return runUninstall(args[1:], stdout, stderr)
	case "doctor":
		return runDoctor(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "credsync %s (protocol %d)\n", version, protocol.Version)
		return exitOK
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "credsync: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

// launchedByThunderbird recognises Thunderbird's arguments: the absolute
// path of the host manifest, then the extension's ID.
func launchedByThunderbird(args []string) bool {
	return len(args) == 2 && filepath.IsAbs(args[0]) && strings.EqualFold(filepath.Ext(args[0]), ".json")
}

// serveHost speaks the native-messaging protocol on stdin/stdout for an
// extension the manifest allows. stdout carries frames only.
func serveHost(ctx context.Context, manifestPath, extensionID string, stdin io.Reader, stdout, stderr io.Writer) int {
	logger := log.New(stderr, "credsync: ", 0)
	if _, err := nmhost.CheckCaller(manifestPath, extensionID); err != nil {
		logger.Printf("refusing to serve: %v", err)
		return exitNotAllow
	}
	// Thunderbird may go away mid-flow (quit, crash): a write to its
	// closed port must fail, not kill the host with SIGPIPE before the
	// flow ends and writes its audit record.
	signal.Ignore(syscall.SIGPIPE)
	host := &protocol.Host{Version: version, Trust: verify.Trust{}, Log: logger,
		Listen: localsock.Listen, Audit: (&audit.Log{}).Write, Recheck: testRecheck}
	// Thunderbird closes stdin to stop the host, then signals it; on a
	// signal, closing stdin ends the read loop the same way.
	if c, ok := stdin.(io.Closer); ok {
		defer context.AfterFunc(ctx, func() { c.Close() })()
	}
	if err := host.Serve(ctx, stdin, stdout); err != nil && ctx.Err() == nil {
		logger.Print(err)
		return exitFailed
	}
	return exitOK
}
