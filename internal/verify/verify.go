// Package verify checks a mail password by logging in once to an incoming
// (IMAP or POP3) or outgoing (SMTP) server.
//
// Login makes exactly one authentication attempt and never retries: a
// rejected password is reported, not tried again, so that verifying cannot
// lock an account. Credentials are sent only over a completed TLS handshake,
// unless the endpoint is explicitly configured without TLS. The package
// writes nothing to stdout or stderr, and no Result carries the password.
package verify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/redact"
)

// Outcome is the stable verdict of one login attempt (PROTOCOL.md, "Side
// result").
type Outcome string

const (
	OK                 Outcome = "ok"
	AuthFailed         Outcome = "auth_failed"
	TLSError           Outcome = "tls_error"
	NetworkError       Outcome = "network_error"
	Temporary          Outcome = "temporary"
	ProtocolError      Outcome = "protocol_error"
	RefusedPlaintext   Outcome = "refused_plaintext"
	NotPasswordAccount Outcome = "not_password_account"
	// PasswordExpired: the server says the password is right but has
	// expired, or must be changed first (IMAP [EXPIRED], SMTP 4.7.12, the
	// servers' "password expired" wording): it must be changed now. Never
	// a wrong password.
	PasswordExpired Outcome = "password_expired"
)

// Result is the outcome of one login attempt.
type Result struct {
	Outcome Outcome
	// Detail is the server's own text or the local error text, on one line,
	// for diagnosis. It never contains the password.
	Detail string
	// Err is the underlying error, if any. Its text never contains the
	// password either.
	Err error
}

// Trust says which certificates to accept.
type Trust struct {
	Roots *x509.CertPool // nil = system roots
}

// defaultTimeout bounds Login when ctx has no deadline.
const defaultTimeout = 60 * time.Second

// goodbyeWait bounds the wait for the answer to LOGOUT or QUIT.
const goodbyeWait = time.Second

// errNotPasswordAccount is the Err of a NotPasswordAccount result.
var errNotPasswordAccount = errors.New("the authentication method uses no password")

// Login makes exactly one authentication attempt against ep with password.
// Never retries.
//
// When ep pins a certificate (CertSHA256) that the normal verification
// rejects, Login connects a second time trusting only that certificate; no
// credentials are sent on the first connection, so this is still a single
// authentication attempt.
func Login(ctx context.Context, ep endpoint.Endpoint, password string, trust Trust) Result {
	if !ep.AuthMethod.UsesPassword() {
		return Result{
			Outcome: NotPasswordAccount,
			Detail:  fmt.Sprintf("authMethod %d does not authenticate with a password", ep.AuthMethod),
			Err:     errNotPasswordAccount,
		}
	}
	// Errors found before connecting are ours alone: no server text.
	if err := ep.Validate(); err != nil {
		return ours(ProtocolError, fmt.Errorf("invalid endpoint: %w", err))
	}
	if strings.ContainsRune(password, 0) {
		return ours(ProtocolError, errors.New("the password contains a NUL character, which no mail protocol can carry"))
	}
	var run runner
	switch ep.Protocol {
	case endpoint.IMAP:
		run = runIMAP
	case endpoint.POP3:
		if err := checkPOP3Args(ep.Username, password); err != nil {
			return ours(ProtocolError, err)
		}
		run = runPOP3
	case endpoint.SMTP:
		run = runSMTP
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultTimeout)
		defer cancel()
	}

	// The protocol runs aside, so that Login returns by its deadline even
	// if a library does not: the deadline closes the connection, which
	// ends any blocked read or write, and a goroutine stuck without I/O (a
	// parser looping on a malformed reply) is abandoned.
	secrets := secretsOf(ep, password)
	done := make(chan attemptResult, 1)
	go func() { done <- loginAttempt(ctx, ep, password, secrets, trust, run) }()
	select {
	case r := <-done:
		return scrubResult(r.res, secrets, r.credsSent)
	case <-ctx.Done():
	}
	select {
	case r := <-done:
		return scrubResult(r.res, secrets, r.credsSent)
	case <-time.After(goodbyeWait):
		// Whether the credentials went out is not known here: as if.
		err := fmt.Errorf("the server's answer was still being read at the deadline: %w", ctx.Err())
		return scrubResult(Result{Outcome: NetworkError, Detail: detailOf(err), Err: err}, secrets, true)
	}
}

// loginAttempt is Login's one authentication attempt: its connection, and for
// a pinned certificate the second connection (no credentials were sent on
// the first).
func loginAttempt(ctx context.Context, ep endpoint.Endpoint, password string, secrets *redact.Set, trust Trust, run runner) attemptResult {
	cfg := baseTLSConfig(ep, trust)
	res, a := once(ctx, ep, password, secrets, cfg, run)
	sent := a != nil && a.credsSent
	if ep.CertSHA256 != "" && ep.Security != endpoint.Plain && res.Outcome == TLSError && a != nil && !a.credsSent {
		var cve *tls.CertificateVerificationError
		if errors.As(res.Err, &cve) && len(cve.UnverifiedCertificates) > 0 {
			leaf := cve.UnverifiedCertificates[0]
			if !pinMatches(ep.CertSHA256, leaf) {
				res.Detail += " (and the certificate does not match the pinned SHA-256 fingerprint)"
			} else if pinned, err := pinnedTLSConfig(cfg, leaf, ep.Host, time.Now()); err != nil {
				res = local(TLSError, err)
			} else {
				res, a = once(ctx, ep, password, secrets, pinned, run)
				sent = a != nil && a.credsSent
			}
		}
	}
	return attemptResult{res: res, credsSent: sent}
}

// attemptResult is Login's result before scrubbing, and whether the
// credentials were sent: a server cannot echo a password it never got.
type attemptResult struct {
	res       Result
	credsSent bool
}

// Both runs Login on each non-nil endpoint in parallel and returns when both
// are done. The Result of a nil endpoint is the zero Result.
func Both(ctx context.Context, incoming, outgoing *endpoint.Endpoint, password string, trust Trust) (in, out Result) {
	var wg sync.WaitGroup
	if incoming != nil {
		ep := *incoming
		wg.Go(func() { in = Login(ctx, ep, password, trust) })
	}
	if outgoing != nil {
		ep := *outgoing
		wg.Go(func() { out = Login(ctx, ep, password, trust) })
	}
	wg.Wait()
	return in, out
}

// runner speaks one protocol on conn (already TLS for implicit TLS) and makes
// the single authentication attempt.
type runner func(ctx context.Context, a *attempt, conn net.Conn) Result

// attempt is the state of one connection.
type attempt struct {
	ep        endpoint.Endpoint
	password  string
	secrets   *redact.Set // the password's forms, to mask server text early (POP3)
	tls       *tls.Config
	raw       *trackedConn
	credsSent bool // set just before credentials are first written
	// goodbye, set by a runner that succeeded and has sent its goodbye
	// (LOGOUT, QUIT), reads the server's answer to it; the runner then
	// leaves the connection open for once to finish.
	goodbye func()
}

// plain reports whether the account is configured without TLS.
func (a *attempt) plain() bool { return a.ep.Security == endpoint.Plain }

// fail classifies err seen at stage st. An untyped error (the libraries
// often format the cause with %v) is joined with the connection's own I/O
// error so that a reset or timeout is recognised as a network error.
func (a *attempt) fail(err error, st stage) Result {
	if ioErr := a.raw.ioErr(); ioErr != nil && !isStatus(err) && !errors.Is(err, ioErr) {
		err = &ioFailure{err: err, io: ioErr}
	}
	return Result{Outcome: classify(err, st, a.plain()), Detail: detailOf(err), Err: err}
}

// once dials ep, runs the protocol and closes the connection. Cancelling ctx
// closes the connection, which aborts any blocked read or write.
func once(ctx context.Context, ep endpoint.Endpoint, password string, secrets *redact.Set, cfg *tls.Config, run runner) (Result, *attempt) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", ep.Address())
	if err != nil {
		if ctx.Err() != nil {
			err = errors.Join(ctx.Err(), err)
		}
		return local(NetworkError, err), nil
	}
	raw := &trackedConn{Conn: c}
	a := &attempt{ep: ep, password: password, secrets: secrets, tls: cfg, raw: raw}
	stop := context.AfterFunc(ctx, func() { raw.Close() })

	var res Result
	if ep.Security == endpoint.TLS {
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			res = local(TLSError, err)
		} else {
			res = run(ctx, a, tc)
		}
	} else {
		res = run(ctx, a, raw)
	}
	cancelled := !stop()
	if res.Outcome == OK && a.goodbye != nil && !cancelled {
		// The verdict is in. The answer to the goodbye is still read (RFC
		// 5321 asks an SMTP client to wait for the reply to QUIT), for at
		// most goodbyeWait, but without holding up the caller for that
		// round trip.
		go func() {
			boundedWait(context.Background(), goodbyeWait, a.goodbye)
			raw.Close()
		}()
	} else {
		raw.Close()
	}
	if cancelled && res.Outcome != OK {
		// The deadline or cancellation closed the connection: whatever the
		// protocol code saw next is a consequence of that.
		err := errors.Join(ctx.Err(), res.Err)
		res = Result{Outcome: NetworkError, Detail: detailOf(err), Err: err}
	}
	return res, a
}

// local is a Result for an error produced on this side. Its text may still
// quote the server (a greeting, a certificate's names): it is scrubbed
// with the rest.
func local(o Outcome, err error) Result {
	return Result{Outcome: o, Detail: detailOf(err), Err: err}
}

// ours is a Result for an error found before connecting: the text is
// credsync's own, complete, on one line, and never scrubbed (masking a
// short password inside our own words would give it away).
func ours(o Outcome, err error) Result {
	return Result{Outcome: o, Detail: oneLine(detailOf(err)), Err: err}
}

// trackedConn remembers the first I/O error on the TCP connection and, while
// capturing, the first bytes the server sent (its greeting, used to tell a
// refused greeting from a failed STARTTLS) and whether STARTTLS was written.
// It never records what the client writes.
type trackedConn struct {
	net.Conn

	mu            sync.Mutex
	err           error
	capture       bool
	read          []byte
	wroteSTARTTLS bool
	wrote         chan struct{} // closed by the next Write that writes (nextWrite)
	writes        int           // Writes that put bytes on the connection
}

const maxCapture = 512

func (c *trackedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	if c.capture && len(c.read) < maxCapture {
		c.read = append(c.read, b[:min(n, maxCapture-len(c.read))]...)
	}
	if err != nil && c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	return n, err
}

func (c *trackedConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	if c.capture && len(b) >= 8 && strings.EqualFold(string(b[:8]), "STARTTLS") {
		c.wroteSTARTTLS = true
	}
	c.mu.Unlock()
	n, err := c.Conn.Write(b)
	c.mu.Lock()
	if err != nil && c.err == nil {
		c.err = err
	}
	if n > 0 {
		c.writes++
	}
	if n > 0 && c.wrote != nil {
		close(c.wrote)
		c.wrote = nil
	}
	c.mu.Unlock()
	return n, err
}

// nextWrite returns a channel that is closed once the next Write has put
// bytes on the connection.
func (c *trackedConn) nextWrite() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wrote = make(chan struct{})
	return c.wrote
}

func (c *trackedConn) writeCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

func (c *trackedConn) setCapture(on bool) {
	c.mu.Lock()
	c.capture = on
	c.mu.Unlock()
}

func (c *trackedConn) ioErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// firstLine is the first line the server sent while capturing, without CRLF.
func (c *trackedConn) firstLine() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := string(c.read)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimRight(s, "\r")
}

func (c *trackedConn) sentSTARTTLS() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wroteSTARTTLS
}

// ioFailure is a library error whose text lost the cause (%v), joined with
// the cause seen on the connection.
type ioFailure struct {
	err, io error
}

func (e *ioFailure) Error() string {
	msg, cause := e.err.Error(), e.io.Error()
	if strings.Contains(msg, cause) {
		return msg
	}
	return msg + " (" + cause + ")"
}

func (e *ioFailure) Unwrap() []error { return []error{e.err, e.io} }

// redactedError replaces an error whose text gave the password away. It
// keeps the cause for errors.Is (a deadline, a reset), not for errors.As:
// the cause's own text is not safe to show.
type redactedError struct {
	msg   string
	cause error
}

func (e *redactedError) Error() string { return e.msg }

func (e *redactedError) Is(target error) bool { return e.cause != nil && errors.Is(e.cause, target) }

// secretsOf is the forms of password to keep out of a Result: the
// password itself (whatever whitespace or control characters a server or
// a normalisation put in it, escaped, in base64) and the base64 of the
// SASL PLAIN exchange that carries it.
func secretsOf(ep endpoint.Endpoint, password string) *redact.Set {
	s := redact.New(password)
	if password != "" {
		s.Add(base64.StdEncoding.EncodeToString([]byte("\x00" + ep.Username + "\x00" + password)))
	}
	return s
}

// scrubResult makes Detail and Err safe, whatever the server or a library
// put there: the password is masked in the raw text, the text is made one
// line, and masked again (redact.Set.Clean); when a form of the password
// would survive, the text is withheld. For a password too short to mask
// (redact.MinRunes), no server text is shown once the credentials were
// sent: Detail says what happened in credsync's own words. Before they
// were sent, the server cannot have the password, and nothing is masked.
func scrubResult(r Result, secrets *redact.Set, credsSent bool) Result {
	if secrets.Short() && !credsSent {
		r.Detail = oneLine(r.Detail)
		return r
	}
	if secrets.Short() {
		if r.Detail == "" && r.Err == nil {
			return r
		}
		r.Detail = withheldDetail(r) + " " + redact.WithheldShort
		r.Err = &redactedError{msg: r.Detail, cause: r.Err}
		return r
	}
	r.Detail = secrets.Clean(r.Detail, oneLine)
	if r.Err != nil {
		if msg := r.Err.Error(); secrets.Leaks(msg) {
			r.Err = &redactedError{msg: secrets.Clean(msg, nil), cause: r.Err}
		}
	}
	return r
}

// withheldDetail says what happened without any text from the server.
func withheldDetail(r Result) string {
	switch r.Outcome {
	case OK:
		return "logged in"
	case AuthFailed:
		return "the server refused the login"
	case TLSError:
		return "the TLS connection failed"
	case Temporary:
		return "the server is temporarily unavailable"
	case RefusedPlaintext:
		return "the server refuses to log in without TLS"
	case NotPasswordAccount:
		return "the authentication method uses no password"
	case NetworkError:
		switch err := r.Err; {
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
			return "no answer before the deadline (timed out)"
		case errors.Is(err, context.Canceled):
			return "cancelled"
		case errors.Is(err, syscall.ECONNREFUSED):
			return "the connection was refused"
		case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE):
			return "the connection was reset"
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
			return "the server closed the connection"
		}
		return "network error"
	}
	return "unexpected answer from the server"
}

// detailOf is err's text as the server or library gave it, possibly over
// several lines: scrubResult masks the password in it, then makes it one
// line (oneLine), then masks again.
func detailOf(err error) string {
	if err == nil {
		return ""
	}
	if d, ok := statusDetail(err); ok {
		return d
	}
	return err.Error()
}

// oneLine joins the lines of s with "; " and blanks other control
// characters, so that server text cannot forge lines in a log or a UI.
func oneLine(s string) string {
	var parts []string
	for _, line := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
		line = strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return ' '
			}
			return r
		}, line)
		if line = strings.TrimSpace(line); line != "" {
			parts = append(parts, line)
		}
	}
	return strings.Join(parts, "; ")
}

// boundedWait runs f (a best-effort goodbye such as QUIT) and waits for it at
// most wait; the caller then closes the connection, which ends f.
func boundedWait(ctx context.Context, wait time.Duration, f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-ctx.Done():
	}
}
