package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/credsync/credsync/internal/audit"
	"github.com/credsync/credsync/internal/code"
	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/flow"
	"github.com/credsync/credsync/internal/policy"
	"github.com/credsync/credsync/internal/provider"
	"github.com/credsync/credsync/internal/roots"
	"github.com/credsync/credsync/internal/verify"
)

// exitChangedUnverified: the provider has, or may have, the new password,
// but it was not verified on both servers.
const exitChangedUnverified = 5

const changeUsage = `Usage: credsync change --incoming URL --outgoing URL --backend NAME [--backend-url URL]
                       [--password-stdin] [--ca-file FILE] [--timeout DURATION]
                       [--breach-check [--breach-url URL]]

Changes the mail password at the provider with the back-end NAME ("credsync
backends" lists them), then logs in once to each server with the new
password, and prints each step:

  policy: ok
  changing: ok
  checking_incoming: ok
  checking_outgoing: ok
  breach check: off
  done: the new password is changed and verified

Nothing is sent before the new password passes the rules: the universal
ones, the back-end's (Aruba PEC: 8-256 characters, upper and lower case, a
digit, one of !#$%&()*+,./-:;=?[]_{|}\@), and the optional --breach-check
(asks the Pwned Passwords range API with the first 5 hex digits of the
password's SHA-1, nothing more). credsync does not estimate the password's
strength: the extension's popup does, as it is typed.
Nothing is ever retried. Thunderbird is not updated: afterwards, use the
credsync extension's "I already changed it", or "credsync sync" while
Thunderbird runs. Each change, done or not, is one line of the audit log
("credsync log"); the log never holds a password.

URLs as for "credsync verify" (imaps://user%40example.org@host, smtp://…);
the back-end changes the password of the incoming server's user (of the
outgoing one if there is no --incoming).

Passwords are read from the terminal without echo (current, new, new
again), or with --password-stdin from standard input: line 1 the current
password, line 2 the new one. Never from arguments or the environment.

Exit status: 0 changed and both servers accept the new password; 1 not
changed, the current password still applies; 2 bad arguments or input, or
the new password breaks a rule (nothing was sent); 5 the provider has, or
may have, the new password but it was not verified: do not run this again,
check with "credsync verify".

Options:
`

func runChange(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, secret secretReader) int {
	flags := flag.NewFlagSet("change", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() { fmt.Fprint(stderr, changeUsage); flags.PrintDefaults() }
	servers := addServerFlags(flags, "read the current password (line 1) and the new one (line 2) from standard input",
		60*time.Second, "give up on the provider, and on each server, after this `DURATION`")
	backendName := flags.String("backend", "", "the back-end `NAME` that changes the password (see \"credsync backends\")")
	backendURL := flags.String("backend-url", "", "the back-end's `URL`, when it needs one or is not the default")
	breachCheck := flags.Bool("breach-check", false, "refuse new passwords found in known breaches (asks the range API with 5 hex digits of the SHA-1)")
	breachURL := flags.String("breach-url", policy.DefaultBreachURL, "the range API's base `URL`")
	if err := flags.Parse(args); err != nil {
		return exitUsage
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "credsync change: "+format+"\n", a...)
		return exitUsage
	}
	in, out, trust, err := servers.parse(flags)
	if err != nil {
		return fail("%v", err)
	}
	backend, known := provider.Lookup(*backendName)
	if !known {
		return fail("%s", backendHint(*backendName, in, out))
	}
	if backend.Info().NeedsURL && *backendURL == "" {
		return fail("the %s back-end needs --backend-url", *backendName)
	}
	prompts := []string{"Current password: ", "New password: "}
	if !*servers.fromStdin {
		prompts = append(prompts, "New password again: ")
	}
	passwords, err := readPasswords(stdin, *servers.fromStdin, secret, prompts...)
	if err != nil {
		return fail("%v", err)
	}
	if len(passwords) == 3 {
		if v := policy.Confirm(passwords[1], passwords[2]); v != nil {
			fmt.Fprintf(stdout, "policy: failed: %s: %s\n", v.Rule, v.Message)
			return exitUsage
		}
	}

	engine := &flow.Engine{Trust: trust, VerifyTimeout: *servers.timeout, Audit: cliAudit(stderr, "change")}
	if *breachCheck {
		engine.Policy.Breach = &policy.Breach{BaseURL: *breachURL, Client: &http.Client{
			Timeout:   *servers.timeout,
			Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, TLSClientConfig: breachTLS(trust)},
		}}
	}
	var mu sync.Mutex
	progress := func(step flow.Step, state flow.State) {
		if state == flow.Running {
			return
		}
		mu.Lock()
		fmt.Fprintf(stdout, "%s: %s\n", step, state)
		mu.Unlock()
	}
	res, err := engine.Change(ctx, flow.Change{
		Account:    &flow.Account{ID: "command-line", Incoming: server(in), Outgoing: server(out)},
		Backend:    timedBackend{Backend: backend, timeout: *servers.timeout},
		BackendURL: *backendURL,
		Current:    passwords[0],
		New:        passwords[1],
	}, progress)
	return reportChange(stdout, res, err)
}

// cliAudit writes a command's flows to the user's audit log, as the host
// does for the popup's (one line per change, never a password), and says
// on stderr when a record could not be written: the outcome stands.
func cliAudit(stderr io.Writer, command string) flow.AuditFunc {
	log := &audit.Log{}
	return func(_ context.Context, r audit.Record) error {
		err := log.Write(r)
		if err != nil {
			fmt.Fprintf(stderr, "credsync %s: could not write the audit log (the outcome, %s, stands): %s\n",
				command, r.Outcome, printable(err.Error()))
		}
		return err
	}
}

// reportChange prints the flow's outcome and returns the exit status.
func reportChange(stdout io.Writer, res flow.Result, err error) int {
	if res.Policy.Breach != "" {
		line := "breach check: " + strings.ReplaceAll(res.Policy.Breach, "_", " ")
		if res.Policy.BreachError != "" {
			line += " (" + printable(res.Policy.BreachError) + ")"
		}
		fmt.Fprintln(stdout, line)
	}
	if err == nil {
		fmt.Fprintln(stdout, "done: the new password is changed and verified; Thunderbird still has the old one: use the credsync extension's \"I already changed it\", or \"credsync sync\" while Thunderbird runs")
		return exitOK
	}
	var fe *flow.Error
	if !errors.As(err, &fe) {
		fmt.Fprintf(stdout, "error: %s\n", printable(err.Error()))
		return exitFailed
	}
	line := "error: " + string(fe.Code)
	if fe.Rule != "" {
		line += " (" + fe.Rule + ")"
	}
	fmt.Fprintln(stdout, line+": "+printable(fe.Message))
	for _, s := range fe.Servers {
		if s.Result.Outcome != "" {
			fmt.Fprintf(stdout, "%s: %s%s\n", s.Side, s.Result.Outcome, detailSuffix(s.Result.Detail))
		}
	}
	switch {
	case fe.Code == code.PolicyViolation:
		return exitUsage
	case fe.Changed || fe.Code == code.OutcomeUnknown:
		fmt.Fprintln(stdout, "the provider has, or may have, the new password: do not run this again; check it with \"credsync verify\"")
		return exitChangedUnverified
	}
	return exitFailed
}

// server is a command-line server: no saved login to compare.
func server(ep *endpoint.Endpoint) *flow.Server {
	if ep == nil {
		return nil
	}
	return &flow.Server{Endpoint: *ep, Origin: "command-line://" + ep.Host}
}

func detailSuffix(detail string) string {
	if detail == "" {
		return ""
	}
	return ": " + printable(detail)
}

// breachTLS verifies the range API like the servers: system roots plus
// --ca-file.
func breachTLS(trust verify.Trust) *tls.Config {
	return &tls.Config{RootCAs: roots.Or(trust.Roots), MinVersion: tls.VersionTLS12}
}

// timedBackend bounds one back-end's change with the command's timeout.
type timedBackend struct {
	provider.Backend
	timeout time.Duration
}

func (b timedBackend) Change(ctx context.Context, r provider.Request) error {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	return b.Backend.Change(ctx, r)
}

// backendHint explains a missing or unknown --backend, suggesting the one
// the server's name implies.
func backendHint(name string, eps ...*endpoint.Endpoint) string {
	var names []string
	for _, info := range provider.All() {
		names = append(names, info.Name)
	}
	sort.Strings(names)
	msg := "give --backend NAME, one of: " + strings.Join(names, ", ")
	if name != "" {
		msg = fmt.Sprintf("no back-end is called %q; %s", printable(name), msg[len("give "):])
	}
	for _, ep := range eps {
		if ep == nil {
			continue
		}
		if guess, ok := provider.Detect(ep.Host); ok {
			return msg + fmt.Sprintf(" (%s is served by %q)", ep.Host, guess)
		}
	}
	return msg
}
