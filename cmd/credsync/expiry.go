package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/credsync/credsync/internal/code"
	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/provider"
)

const expiryUsage = `Usage: credsync expiry --incoming URL --backend NAME [--backend-url URL]
                       [--password-stdin] [--ca-file FILE] [--timeout DURATION]

Reads when the password of the incoming server's user expires, where the
back-end's directory knows it, and prints two lines:

  expires: 2027-01-12T09:30:00Z         (RFC 3339, UTC)
  source: msDS-UserPasswordExpiryTimeComputed

The first line is one of "expires: DATE", "never", "expired",
"must_change" (the password must be changed at the next logon) or
"unknown" (the back-end cannot know, or the directory does not say: the
reason goes to standard error).

Back-ends that can tell: ad (msDS-UserPasswordExpiryTimeComputed and
pwdLastSet of the user's own account), kpasswd when its URL names the
directory (kpasswd://dc.example.org?realm=EXAMPLE.ORG&ldap=ldaps://dc.example.org),
ldap (OpenLDAP's password policy: the bind's password-policy control, else
pwdChangedTime and the policy's pwdMaxAge). The others answer "unknown".

One bind as the user, and a read of the user's own entry: nothing else is
logged in to, nothing is written, nothing is retried. A wrong password
costs one failed bind, which the directory's lockout policy counts.

URLs as for "credsync verify" (imaps://user%40example.org@host).
The password is read from the terminal without echo, or with
--password-stdin from the first line of standard input; never from
arguments or the environment.

Exit status: 0 the directory answered (any of the five); 1 it could not
tell (wrong password, locked account, unreachable); 2 bad arguments or
input.

Options:
`

func runExpiry(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, secret secretReader) int {
	flags := flag.NewFlagSet("expiry", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() { fmt.Fprint(stderr, expiryUsage); flags.PrintDefaults() }
	incoming := flags.String("incoming", "", "incoming server `URL` whose user's password is checked (imaps://, imap://, pop3s://, …)")
	backendName := flags.String("backend", "", "the back-end `NAME` whose directory is asked (ad, kpasswd, ldap)")
	backendURL := flags.String("backend-url", "", "the back-end's `URL`")
	fromStdin := flags.Bool("password-stdin", false, "read the password from the first line of standard input")
	caFile := flags.String("ca-file", "", "also trust the CA certificates in this PEM `FILE`")
	timeout := flags.Duration("timeout", 30*time.Second, "give up after this `DURATION`")
	if err := flags.Parse(args); err != nil {
		return exitUsage
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "credsync expiry: "+format+"\n", a...)
		return exitUsage
	}
	switch {
	case flags.NArg() > 0:
		// Not echoed: it may be a password typed in the wrong place.
		return fail("unexpected argument after the options (a password is never taken from the command line)")
	case *incoming == "":
		return fail("give --incoming URL (the user whose password is checked)")
	case *timeout <= 0:
		return fail("--timeout must be positive")
	}
	in, err := parseEndpoint(*incoming, "--incoming", endpoint.IMAP, endpoint.POP3)
	if err != nil {
		return fail("%v", err)
	}
	backend, known := provider.Lookup(*backendName)
	if !known {
		return fail("%s", backendHint(*backendName, in))
	}
	if backend.Info().NeedsURL && *backendURL == "" {
		return fail("the %s back-end needs --backend-url", *backendName)
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
	x, err := provider.ReadExpiry(ctx, backend, provider.Request{
		Username: in.Username, Current: passwords[0], URL: *backendURL, Incoming: *in, Roots: trust.Roots,
	})
	if err != nil {
		c := provider.KindOf(err)
		if c == code.OutcomeUnknown {
			c = code.BackendUnreachable
		}
		// The code once: a back-end's error without its own kind.
		msg := err.Error()
		if pe := (*provider.Error)(nil); errors.As(err, &pe) {
			msg = pe.Message()
		}
		fmt.Fprintf(stderr, "credsync expiry: %s: %s\n", c, printable(msg))
		return exitFailed
	}
	fmt.Fprintln(stdout, expiryLine(x))
	fmt.Fprintln(stdout, "source: "+x.Source)
	if x.State == provider.Unknown && x.Detail != "" {
		fmt.Fprintln(stderr, "credsync expiry: "+printable(x.Detail))
	}
	if x.Grace >= 0 && x.State == provider.Expired {
		fmt.Fprintf(stderr, "credsync expiry: the directory allows %d more login(s) with the expired password\n", x.Grace)
	}
	return exitOK
}

// expiryLine is the first line of the output.
func expiryLine(x provider.Expiry) string {
	if x.State == provider.Expires {
		return "expires: " + x.At.UTC().Format(time.RFC3339)
	}
	return string(x.State)
}
