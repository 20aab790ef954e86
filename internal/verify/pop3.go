package verify

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/redact"
)

// maxPOP3Line bounds a server line. RFC 1939 allows 512 octets; be lenient.
const maxPOP3Line = 4096

// maxCAPALines bounds a CAPA listing.
const maxCAPALines = 256

// pop3Reply is a parsed status line: "+OK text" or "-ERR [CODE] text".
type pop3Reply struct {
	OK   bool
	Code string // RFC 2449 response code without brackets, "" if none
	Text string // text after the status indicator and code
}

// parsePOP3Reply parses one status line (without CRLF).
func parsePOP3Reply(line string) (pop3Reply, error) {
	var r pop3Reply
	status, rest, _ := strings.Cut(line, " ")
	switch strings.ToUpper(status) {
	case "+OK":
		r.OK = true
	case "-ERR":
	default:
		return r, &malformedReply{line: line}
	}
	if strings.HasPrefix(rest, "[") {
		if end := strings.IndexByte(rest, ']'); end > 0 {
			r.Code = rest[1:end]
			rest = strings.TrimPrefix(rest[end+1:], " ")
		}
	}
	r.Text = rest
	return r, nil
}

// malformedReply is a line that is neither +OK nor -ERR. Its text quotes
// the start of the line, so a line that echoes the password is masked
// before it is cut (pop3Conn.status): a cut password could not be masked.
type malformedReply struct{ line string }

func (e *malformedReply) Error() string {
	return fmt.Sprintf("pop3: malformed reply %q", truncate(e.line, 80))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// pop3Error is an -ERR reply to Cmd.
type pop3Error struct {
	Cmd  string // USER, PASS, STLS, CAPA or "" for the greeting
	Line string // the reply as sent
	Code string
	Text string
}

func (e *pop3Error) Error() string { return "pop3: " + e.Line }

// checkPOP3Args refuses what POP3 cannot carry: it has no literal syntax, so
// CR, LF or NUL would end or corrupt the command.
func checkPOP3Args(username, password string) error {
	if strings.ContainsAny(username, "\r\n\x00") {
		return errors.New("pop3: the user name contains CR, LF or NUL, which POP3 cannot carry; nothing was sent")
	}
	if strings.ContainsAny(password, "\r\n\x00") {
		return errors.New("pop3: the password contains CR, LF or NUL, which POP3 cannot carry; nothing was sent")
	}
	return nil
}

// pop3Conn is a minimal POP3 client.
type pop3Conn struct {
	conn    net.Conn
	r       *bufio.Reader
	secrets *redact.Set // masked in a malformed line before it is cut
}

func newPOP3Conn(conn net.Conn, secrets *redact.Set) *pop3Conn {
	return &pop3Conn{conn: conn, r: bufio.NewReaderSize(conn, 1024), secrets: secrets}
}

func (p *pop3Conn) readLine() (string, error) {
	var line []byte
	for {
		chunk, isPrefix, err := p.r.ReadLine()
		if err != nil {
			if err == io.EOF && len(line) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		line = append(line, chunk...)
		if len(line) > maxPOP3Line {
			return "", fmt.Errorf("pop3: server line longer than %d bytes", maxPOP3Line)
		}
		if !isPrefix {
			return string(line), nil
		}
	}
}

// cmd sends one command (args may be empty) and reads its status line. An
// -ERR reply is returned as *pop3Error.
func (p *pop3Conn) cmd(name, args string) (pop3Reply, error) {
	line := name
	if args != "" {
		line += " " + args
	}
	if _, err := io.WriteString(p.conn, line+"\r\n"); err != nil {
		return pop3Reply{}, err
	}
	return p.status(name)
}

// status reads a status line in reply to cmd.
func (p *pop3Conn) status(cmd string) (pop3Reply, error) {
	line, err := p.readLine()
	if err != nil {
		return pop3Reply{}, err
	}
	r, err := parsePOP3Reply(line)
	if m, ok := err.(*malformedReply); ok {
		if masked, ok := p.secrets.Mask(m.line); ok {
			m.line = masked
		} else {
			m.line = redact.Withheld
		}
		return r, m
	}
	if err != nil {
		return r, err
	}
	if !r.OK {
		return r, &pop3Error{Cmd: cmd, Line: line, Code: r.Code, Text: r.Text}
	}
	return r, nil
}

// capa reads the CAPA listing; ok is false when the server does not support
// CAPA.
func (p *pop3Conn) capa() (caps map[string]bool, ok bool, err error) {
	if _, err := p.cmd("CAPA", ""); err != nil {
		var pe *pop3Error
		if errors.As(err, &pe) {
			return nil, false, nil
		}
		return nil, false, err
	}
	caps = make(map[string]bool)
	for range maxCAPALines {
		line, err := p.readLine()
		if err != nil {
			return nil, false, err
		}
		if line == "." {
			return caps, true, nil
		}
		if name, _, _ := strings.Cut(line, " "); name != "" {
			caps[strings.ToUpper(name)] = true
		}
	}
	return nil, false, fmt.Errorf("pop3: CAPA listing longer than %d lines", maxCAPALines)
}

// runPOP3: greeting, CAPA, STLS when STARTTLS is required, USER, PASS, QUIT.
func runPOP3(ctx context.Context, a *attempt, conn net.Conn) Result {
	p := newPOP3Conn(conn, a.secrets)
	if _, err := p.status(""); err != nil {
		return a.fail(err, stageConnect)
	}
	caps, haveCaps, err := p.capa()
	if err != nil {
		return a.fail(err, stageConnect)
	}

	if a.ep.Security == endpoint.STARTTLS {
		if haveCaps && !caps["STLS"] {
			return local(TLSError, errNoSTARTTLS)
		}
		if _, err := p.cmd("STLS", ""); err != nil {
			return a.fail(err, stageTLS)
		}
		if p.r.Buffered() > 0 {
			// Anything sent before the handshake could be injected by a
			// man in the middle (CVE-2011-0411 style).
			return local(TLSError, errors.New("pop3: the server sent data after STLS before the TLS handshake"))
		}
		tc := tls.Client(conn, a.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return a.fail(err, stageTLS)
		}
		p = newPOP3Conn(tc, a.secrets)
	}

	if a.plain() && haveCaps && !caps["USER"] {
		// RFC 2449: without USER in CAPA the server refuses USER/PASS here
		// (Dovecot without TLS); sending USER anyway counts as a failed login.
		return local(RefusedPlaintext, errors.New("pop3: the server does not accept USER/PASS without TLS; nothing was sent"))
	}
	if _, err := p.cmd("USER", a.ep.Username); err != nil {
		return a.fail(err, stageAuth)
	}
	a.credsSent = true
	if _, err := p.cmd("PASS", a.password); err != nil {
		return a.fail(err, stageAuth)
	}
	// QUIT goes out now; once reads its answer (see attempt.goodbye).
	if _, err := io.WriteString(p.conn, "QUIT\r\n"); err == nil {
		a.goodbye = func() { _, _ = p.status("QUIT") }
	}
	return Result{Outcome: OK}
}
