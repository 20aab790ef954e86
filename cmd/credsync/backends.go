package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/credsync/credsync/internal/provider"
)

const backendsUsage = `Usage: credsync backends [--json]

Lists the back-ends "credsync change --backend NAME" can use, and what each
needs: whether it needs --backend-url, whether the provider checks the
current password, and the provider's password rules when they are known
(checked before anything is sent). With --json, the same objects as the
"backends" of the extension's hello reply.

Options:
`

func runBackends(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("backends", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() { fmt.Fprint(stderr, backendsUsage); flags.PrintDefaults() }
	asJSON := flags.Bool("json", false, "print JSON")
	if err := flags.Parse(args); err != nil {
		return exitUsage
	}
	if flags.NArg() > 0 {
		fmt.Fprintln(stderr, "credsync backends: no arguments expected")
		return exitUsage
	}
	infos := provider.All()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(infos); err != nil {
			fmt.Fprintf(stderr, "credsync backends: %v\n", err)
			return exitFailed
		}
		return exitOK
	}
	for i, info := range infos {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		fmt.Fprintf(stdout, "%s\n  %s\n", info.Name, info.Description)
		var needs []string
		if info.NeedsURL {
			needs = append(needs, "--backend-url")
		} else {
			needs = append(needs, "--backend-url optional")
		}
		if info.NeedsCurrent {
			needs = append(needs, "the current password")
		}
		fmt.Fprintf(stdout, "  needs: %s\n", strings.Join(needs, ", "))
		fmt.Fprintf(stdout, "  password rules: %s\n", info.Rules)
	}
	return exitOK
}
