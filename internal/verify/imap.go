package verify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/credsync/credsync/internal/endpoint"
)

// runIMAP logs in with the LOGIN command (an IMAP literal carries any
// password), or with AUTHENTICATE PLAIN when the server disables LOGIN on a
// TLS connection.
func runIMAP(ctx context.Context, a *attempt, conn net.Conn) Result {
	// The greeting as the server sent it: imapclient may report a BYE
	// greeting as "connection closed before greeting", and with STARTTLS it
	// sends STARTTLS before reading the greeting.
	// capGuard: a capability list the library would loop on is refused.
	greet := &trackedConn{Conn: guardCapabilities(conn, a.ep.Security == endpoint.STARTTLS), capture: true}
	// No DebugWriter: it would log the password.
	opts := &imapclient.Options{TLSConfig: a.tls}
	var c *imapclient.Client
	if a.ep.Security == endpoint.STARTTLS {
		var err error
		c, err = imapclient.NewStartTLS(greet, opts)
		greet.setCapture(false)
		if err != nil {
			if isTLSError(err) {
				return local(TLSError, err)
			}
			if res, ok := imapGreetingFailure(greet.firstLine()); ok {
				return res
			}
			if greet.firstLine() == "" {
				return a.fail(err, stageConnect) // nothing arrived
			}
			return a.fail(err, stageTLS)
		}
	} else {
		c = imapclient.New(greet, opts)
	}
	defer func() {
		if a.goodbye == nil {
			c.Close()
		}
	}()

	err := c.WaitGreeting()
	greet.setCapture(false)
	if err != nil {
		if res, ok := imapGreetingFailure(greet.firstLine()); ok {
			return res
		}
		return a.fail(err, stageConnect)
	}
	if c.State() != imap.ConnStateNotAuthenticated {
		return local(ProtocolError, errPREAUTH)
	}
	caps := c.Caps()
	if caps == nil {
		// Caps swallows the error; ask again to get it.
		_, err := c.Capability().Wait()
		if err == nil {
			err = errors.New("imap: the server sent no capabilities")
		}
		return a.fail(err, stageConnect)
	}

	sent, waits := greet.writeCount(), 0
	if caps.Has(imap.CapLoginDisabled) {
		if a.plain() {
			return local(RefusedPlaintext, errors.New("the server advertises LOGINDISABLED: it refuses to log in without TLS"))
		}
		if !hasIMAPAuth(caps, "PLAIN") {
			return local(ProtocolError, errors.New("the server advertises LOGINDISABLED and offers no AUTH=PLAIN"))
		}
		if !caps.Has(imap.CapSASLIR) {
			waits = 1 // the credentials wait for the server's "+"
		}
		a.credsSent = true
		if err := c.Authenticate(sasl.NewPlainClient("", a.ep.Username, a.password)); err != nil {
			return a.fail(err, stageAuth)
		}
	} else {
		waits = syncLiterals(caps, a.ep.Username) + syncLiterals(caps, a.password)
		a.credsSent = true
		if err := c.Login(a.ep.Username, a.password).Wait(); err != nil {
			return a.fail(err, stageAuth)
		}
	}
	// Each wait for "+" splits the command into one more write. A server
	// that completes it with fewer has accepted a login whose password it
	// was never sent: that verifies nothing.
	if greet.writeCount() < sent+1+waits {
		return local(ProtocolError, errAcceptedEarly)
	}
	// LOGOUT goes out now; once reads its answer (see attempt.goodbye).
	logout := c.Logout()
	a.goodbye = func() {
		_ = logout.Wait()
		c.Close()
	}
	return Result{Outcome: OK}
}

var errAcceptedEarly = errors.New("the server accepted the login before it was sent the password, so nothing was verified")

// syncLiterals is how many synchronising literals (RFC 3501 4.3) imapclient
// sends s as: one when s cannot be quoted and the server offers no
// non-synchronising literals (RFC 7888), the same rules as imapclient's.
func syncLiterals(caps imap.CapSet, s string) int {
	const maxQuoted = 4096
	quotable := len(s) <= maxQuoted && !strings.ContainsAny(s, "\x00\r\n") &&
		(caps.Has(imap.CapIMAP4rev2) || isASCII(s))
	if quotable || caps.Has(imap.CapLiteralPlus) || caps.Has(imap.CapLiteralMinus) && len(s) <= maxQuoted {
		return 0
	}
	return 1
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

var errPREAUTH = errors.New("the server sent PREAUTH: it logs in without a password, so there is nothing to verify")

// imapGreetingFailure classifies a greeting other than "* OK": BYE is a
// refused connection, temporary with [UNAVAILABLE]; PREAUTH leaves nothing
// to verify.
func imapGreetingFailure(greeting string) (Result, bool) {
	fields := strings.Fields(greeting)
	if len(fields) < 2 || fields[0] != "*" {
		return Result{}, false
	}
	switch strings.ToUpper(fields[1]) {
	case "BYE":
		err := fmt.Errorf("the server refused the connection: %s", greeting)
		if strings.Contains(strings.ToUpper(greeting), "[UNAVAILABLE]") {
			return local(Temporary, err), true
		}
		return local(ProtocolError, err), true
	case "PREAUTH":
		return local(ProtocolError, errPREAUTH), true
	}
	return Result{}, false
}

func hasIMAPAuth(caps imap.CapSet, mech string) bool {
	for c := range caps {
		if strings.EqualFold(string(c), "AUTH="+mech) {
			return true
		}
	}
	return false
}
