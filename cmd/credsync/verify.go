package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/verify"
)

const verifyUsage = `Usage: credsync verify --incoming URL --outgoing URL [--password-stdin] [--ca-file FILE] [--timeout DURATION]

Logs in once to each server with the password, in parallel, and prints one
line per server ("incoming: ok", "outgoing: auth_failed: 535 5.7.8 ...").
Either URL may be given alone. Nothing is ever retried.

URLs: scheme://user@host:port with the user percent-encoded (%40 for @).
  imaps://  pop3s://  smtps://                      implicit TLS
  imap://   pop3://   smtp://                       STARTTLS, required
  imap+insecure://  pop3+insecure://  smtp+insecure://   no TLS at all

The password is read from the terminal without echo, or with --password-stdin
from the first line of standard input; never from arguments or the environment.

Exit status: 0 every server accepted the password; 1 a server refused it or
could not be checked; 2 bad arguments or input.

Options:
`

func runVerify(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, secret secretReader) int {
	flags := flag.NewFlagSet("verify", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() { fmt.Fprint(stderr, verifyUsage); flags.PrintDefaults() }
	servers := addServerFlags(flags, "read the password from the first line of standard input", 30*time.Second, "give up on a server after this `DURATION`")
	if err := flags.Parse(args); err != nil {
		return exitUsage
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "credsync verify: "+format+"\n", a...)
		return exitUsage
	}
	in, out, trust, err := servers.parse(flags)
	if err != nil {
		return fail("%v", err)
	}
	passwords, err := readPasswords(stdin, *servers.fromStdin, secret, "Password: ")
	if err != nil {
		return fail("%v", err)
	}

	ctx, cancel := context.WithTimeout(ctx, *servers.timeout)
	defer cancel()
	inResult, outResult := verify.Both(ctx, in, out, passwords[0], trust)
	code := exitOK
	for _, side := range []struct {
		name string
		ep   *endpoint.Endpoint
		r    verify.Result
	}{{"incoming", in, inResult}, {"outgoing", out, outResult}} {
		if side.ep == nil {
			continue
		}
		line := side.name + ": " + string(side.r.Outcome)
		if side.r.Outcome != verify.OK {
			code = exitFailed
			if side.r.Detail != "" {
				line += ": " + printable(side.r.Detail)
			}
		}
		fmt.Fprintln(stdout, line)
	}
	return code
}

// serverFlags are the options `verify` and `change` share: the two
// servers, where the password comes from, trust and a deadline.
type serverFlags struct {
	incoming, outgoing, caFile *string
	fromStdin                  *bool
	timeout                    *time.Duration
}

func addServerFlags(flags *flag.FlagSet, stdinUsage string, timeout time.Duration, timeoutUsage string) serverFlags {
	return serverFlags{
		incoming:  flags.String("incoming", "", "incoming server `URL` (imaps://, imap://, pop3s://, pop3://, …)"),
		outgoing:  flags.String("outgoing", "", "outgoing server `URL` (smtps://, smtp://, smtp+insecure://)"),
		fromStdin: flags.Bool("password-stdin", false, stdinUsage),
		caFile:    flags.String("ca-file", "", "also trust the CA certificates in this PEM `FILE`"),
		timeout:   flags.Duration("timeout", timeout, timeoutUsage),
	}
}

// parse checks the parsed flags and reads the servers and the trust.
func (f serverFlags) parse(flags *flag.FlagSet) (in, out *endpoint.Endpoint, trust verify.Trust, err error) {
	switch {
	case flags.NArg() > 0:
		// Not echoed: it may be a password typed in the wrong place.
		return nil, nil, trust, errors.New("unexpected argument after the options (a password is never taken from the command line)")
	case *f.incoming == "" && *f.outgoing == "":
		return nil, nil, trust, errors.New("give --incoming, --outgoing or both")
	case *f.timeout <= 0:
		return nil, nil, trust, errors.New("--timeout must be positive")
	}
	if in, err = parseEndpoint(*f.incoming, "--incoming", endpoint.IMAP, endpoint.POP3); err != nil {
		return nil, nil, trust, err
	}
	if out, err = parseEndpoint(*f.outgoing, "--outgoing", endpoint.SMTP); err != nil {
		return nil, nil, trust, err
	}
	trust, err = loadTrust(*f.caFile)
	return in, out, trust, err
}

// parseEndpoint reads a server URL given to flag, or nil for "".
func parseEndpoint(raw, flag string, want ...endpoint.Protocol) (*endpoint.Endpoint, error) {
	if raw == "" {
		return nil, nil
	}
	ep, err := endpoint.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	for _, p := range want {
		if ep.Protocol == p {
			return &ep, nil
		}
	}
	return nil, fmt.Errorf("%s: a %s server cannot be used here", flag, ep.Protocol)
}

// loadTrust is the system roots plus the certificates of caFile.
func loadTrust(caFile string) (verify.Trust, error) {
	if caFile == "" {
		return verify.Trust{}, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return verify.Trust{}, fmt.Errorf("--ca-file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return verify.Trust{}, errors.New("--ca-file: no PEM certificate found in " + caFile)
	}
	return verify.Trust{Roots: pool}, nil
}

// printable keeps a server's text on one line.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
