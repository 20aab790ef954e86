package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/localsock"
	"github.com/credsync/credsync/internal/wire"
)

// exitNotRunning: credsync sync found no host listening (Thunderbird is not
// running, or the credsync extension is not active).
const exitNotRunning = 4

const syncUsage = `Usage: credsync sync --account USER@HOST [--password-stdin]

For a password already changed elsewhere (at Ctrl+Alt+Del, on the provider's
page, by a script): stores it in the running Thunderbird, in every account
whose incoming server has the user name USER on HOST. For each account,
credsync logs in once to the incoming and once to the outgoing server, as
Thunderbird has them configured, and Thunderbird stores the password only
when both accept it. One line per account:

  account1 (Mario Rossi): stored
  account2 (Work): verification_failed: ... (incoming: auth_failed: ...)

USER@HOST is split at the last "@": alice@example.org@mail.example.org is
the user alice@example.org on mail.example.org. USER is compared exactly,
HOST ignoring case.

Thunderbird must be running with the credsync extension active: the
credsync program it starts listens on a local socket, found through
XDG_RUNTIME_DIR (else TMPDIR) on Linux and macOS, so both must be the same
for Thunderbird and for this command; on Windows, a named pipe of the user.

The password is read from the terminal without echo, or with --password-stdin
from the first line of standard input; never from arguments or the environment.

Exit status: 0 stored in every matching account; 1 not stored in at least
one account, no account matches, or the request failed; 2 bad arguments or
input; 4 Thunderbird is not running (or the credsync extension is not active).

Options:
`

const notRunningMessage = "Thunderbird is not running (or the credsync extension is not active): start Thunderbird and try again"

func runSync(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, secret secretReader) int {
	flags := flag.NewFlagSet("sync", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() { fmt.Fprint(stderr, syncUsage); flags.PrintDefaults() }
	account := flags.String("account", "", "the incoming server's user name and host, as `USER@HOST`")
	fromStdin := flags.Bool("password-stdin", false, "read the password from the first line of standard input")
	if err := flags.Parse(args); err != nil {
		return exitUsage
	}
	say := func(format string, a ...any) { fmt.Fprintf(stderr, "credsync sync: "+format+"\n", a...) }
	if flags.NArg() > 0 {
		// Not echoed: it may be a password typed in the wrong place.
		say("unexpected argument after the options (a password is never taken from the command line)")
		return exitUsage
	}
	username, host, ok := splitAccount(*account)
	if !ok {
		say("give --account USER@HOST, the incoming server's user name and host (e.g. alice@example.org@mail.example.org)")
		return exitUsage
	}

	// Is anyone listening? Asked before the password, so nobody types it
	// for nothing; the connection is not held while they type.
	probe, err := localsock.Dial(ctx)
	if err != nil {
		return dialFailed(err, say)
	}
	probe.Close()

	passwords, err := readPasswords(stdin, *fromStdin, secret, "Password: ")
	if err != nil {
		say("%v", err)
		return exitUsage
	}
	conn, err := localsock.Dial(ctx)
	if err != nil {
		return dialFailed(err, say)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	req, _ := json.Marshal(map[string]any{
		"id": "1", "type": "sync",
		"match":    map[string]string{"username": username, "host": host},
		"password": passwords[0],
	})
	if err := wire.NewWriter(conn).Write(req); err != nil {
		// A host over its connection cap says so and closes at once.
		if reply, rerr := readReply(wire.NewReader(conn, wire.DefaultMaxIncoming), "1"); rerr == nil && reply.Get("code").String() == "busy" {
			say("not sent: the host is busy (%s); nothing was stored: run this again in a moment", printable(reply.Get("message").String()))
			return exitFailed
		}
		say("not sent (%v); nothing was stored", err)
		return exitFailed
	}
	reply, err := readReply(wire.NewReader(conn, wire.DefaultMaxIncoming), "1")
	if err != nil {
		if ctx.Err() != nil {
			say("interrupted: Thunderbird may still store the password for some accounts")
		} else {
			say("no answer from credsync in Thunderbird (%v): did Thunderbird quit? The password may be stored in some accounts; run this again", err)
		}
		return exitFailed
	}
	if reply.Get("status").String() != "ok" {
		if reply.Get("code").String() == "busy" && reply.Get("id").Type == gjson.Null {
			say("not sent: the host is busy (%s); nothing was stored: run this again in a moment", printable(reply.Get("message").String()))
			return exitFailed
		}
		say("%s: %s", printable(reply.Get("code").String()), printable(reply.Get("message").String()))
		return exitFailed
	}

	code := exitOK
	auditFailed := false
	for _, a := range reply.Get("result.accounts").Array() {
		line := printable(a.Get("id").String())
		if name := a.Get("name").String(); name != "" {
			line += " (" + printable(name) + ")"
		}
		auditFailed = auditFailed || a.Get("auditFailed").Bool()
		if a.Get("stored").Bool() {
			fmt.Fprintln(stdout, line+": stored")
			continue
		}
		code = exitFailed
		line += ": " + printable(a.Get("code").String())
		if msg := a.Get("message").String(); msg != "" {
			line += ": " + printable(msg)
		}
		if sides := failedSides(a); sides != "" {
			line += " (" + sides + ")"
		}
		fmt.Fprintln(stdout, line)
	}
	if len(reply.Get("result.accounts").Array()) == 0 {
		say("credsync in Thunderbird answered with no account")
		code = exitFailed
	}
	if auditFailed {
		say("warning: the audit log could not be written (Thunderbird's error console says why)")
	}
	return code
}

func dialFailed(err error, say func(string, ...any)) int {
	if errors.Is(err, localsock.ErrNotListening) {
		say("%s", notRunningMessage)
		return exitNotRunning
	}
	say("cannot reach credsync in Thunderbird: %v", err)
	return exitFailed
}

// splitAccount splits USER@HOST at the last "@": user names are often
// e-mail addresses.
func splitAccount(s string) (username, host string, ok bool) {
	i := strings.LastIndexByte(s, '@')
	if i <= 0 || i == len(s)-1 {
		return "", "", false
	}
	username, host = s[:i], s[i+1:]
	if strings.ContainsAny(host, " /:\t\r\n") || strings.ContainsAny(username, "\x00\r\n") {
		return "", "", false
	}
	return username, host, true
}

// readReply reads frames until the reply with this id (skipping events).
func readReply(r *wire.Reader, id string) (gjson.Result, error) {
	for {
		body, err := r.Read()
		if err != nil {
			if err == io.EOF {
				err = errors.New("the connection closed")
			}
			return gjson.Result{}, err
		}
		if !gjson.ValidBytes(body) {
			return gjson.Result{}, errors.New("the reply is not JSON")
		}
		m := gjson.ParseBytes(body)
		// A reply with a null id refused the frame before reading a request
		// from it (busy, malformed): it answers ours too.
		if m.Get("status").Exists() && (m.Get("id").String() == id || m.Get("id").Type == gjson.Null) {
			return m, nil
		}
	}
}

// failedSides describes the servers that did not accept the password.
func failedSides(a gjson.Result) string {
	var parts []string
	for _, s := range a.Get("servers").Array() {
		part := printable(s.Get("side").String()) + " " + printable(s.Get("username").String()) + "@" +
			printable(s.Get("host").String()) + ": " + printable(s.Get("outcome").String())
		if d := s.Get("detail").String(); d != "" {
			part += ": " + printable(d)
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, "; ")
}
