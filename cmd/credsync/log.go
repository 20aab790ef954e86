package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/credsync/credsync/internal/audit"
)

const logUsage = `Usage: credsync log [-n N]

Prints the last N records of credsync's audit log, oldest first: one line
per password change or sync, with its time (local), kind (change, sync,
socket-sync), Thunderbird account, login (user@incoming host), outcome
("stored" or an error code) and steps. The log never holds a password.

The log is $XDG_STATE_HOME/credsync/audit.log (default
~/.local/state/credsync/audit.log); on macOS ~/Library/Application
Support/credsync/audit.log; on Windows %LOCALAPPDATA%\credsync\audit.log.

Exit status: 0 printed (or no log yet); 1 the log cannot be read; 2 bad
arguments.

Options:
`

func runLog(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("log", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() { fmt.Fprint(stderr, logUsage); flags.PrintDefaults() }
	n := flags.Int("n", 20, "print the last `N` records (0: all)")
	if err := flags.Parse(args); err != nil {
		return exitUsage
	}
	if flags.NArg() > 0 || *n < 0 {
		fmt.Fprintf(stderr, "credsync log: give at most -n N, with N ≥ 0\n")
		return exitUsage
	}
	path, err := audit.DefaultPath()
	if err != nil {
		fmt.Fprintf(stderr, "credsync log: %v\n", err)
		return exitFailed
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(stderr, "credsync log: no audit log yet (%s)\n", path)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "credsync log: %v\n", err)
		return exitFailed
	}
	defer f.Close()
	records, bad, err := audit.Tail(f, *n)
	for _, r := range records {
		fmt.Fprintln(stdout, formatRecord(r))
	}
	if bad > 0 {
		fmt.Fprintf(stderr, "credsync log: skipped %d unreadable line(s) in %s\n", bad, path)
	}
	if err != nil {
		fmt.Fprintf(stderr, "credsync log: reading %s: %v\n", path, err)
		return exitFailed
	}
	return exitOK
}

// formatRecord is one readable line:
//
//	2025-03-04 15:06:07 +0100  socket-sync  account1  alice@example.org@mail.example.org  stored  (policy ok, checking_incoming ok, …)
func formatRecord(r audit.Record) string {
	outcome := printable(r.Outcome)
	if r.Changed && r.Outcome != audit.OutcomeStored {
		outcome += ", changed at the provider"
	}
	steps := make([]string, len(r.Steps))
	for i, s := range r.Steps {
		steps[i] = printable(s.Step + " " + s.State)
	}
	line := fmt.Sprintf("%s  %-11s  %s  %s  %s", r.Time.Local().Format("2006-01-02 15:04:05 -0700"),
		printable(r.Kind), printable(r.Account), printable(r.Login), outcome)
	if len(steps) > 0 {
		line += "  (" + strings.Join(steps, ", ") + ")"
	}
	return line
}
