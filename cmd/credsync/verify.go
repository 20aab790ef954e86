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
	incoming := flags.String("incoming", "", "incoming server `URL` (imaps://, imap://, pop3s://, pop3://, …)")
	outgoing := flags.String("outgoing", "", "outgoing server `URL` (smtps://, smtp://, smtp+insecure://)")
	fromStdin := flags.Bool("password-stdin", false, "read the password from the first line of standard input")
	caFile := flags.String("ca-file", "", "also trust the CA certificates in this PEM `FILE`")
	timeout := flags.Duration("timeout", 30*time.Second, "give up on a server after this `DURATION`")
	if err := flags.Parse(args); err != nil {
		return exitUsage
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "credsync verify: "+format+"\n", a...)
		return exitUsage
	}
	if flags.NArg() > 0 {
		// Not echoed: it may be a password typed in the wrong place.
		return fail("unexpected argument after the options (a password is never taken from the command line)")
	}
	if *incoming == "" && *outgoing == "" {
		return fail("give --incoming, --outgoing or both")
	}
	if *timeout <= 0 {
		return fail("--timeout must be positive")
	}
	in, err := parseEndpoint(*incoming, "--incoming", endpoint.IMAP, endpoint.POP3)
	if err != nil {
		return fail("%v", err)
	}
	out, err := parseEndpoint(*outgoing, "--outgoing", endpoint.SMTP)
	if err != nil {
		return fail("%v", err)
	}
	trust, err := loadTrust(*caFile)
	if err != nil {
		return fail("%v", err)
	}
	passwords, err := readPasswords(stdin, *fromStdin, secret, "Password: ")
	if err != nil {
		return fail("%v", err)
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
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
