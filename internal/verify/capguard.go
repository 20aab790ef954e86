package verify

import (
	"bytes"
	"errors"
	"net"
)

// errMalformedCapabilities: the server's capability list holds a
// parenthesis, which no capability can (they are atoms). go-imap v2
// (through v2.0.0-beta.8) loops forever on one — readCapabilities' "for
// dec.SP() {}" accepts "(" as a space without consuming it — burning a
// CPU and never returning, whatever the deadline. Anyone who can write
// to a cleartext IMAP connection (before STARTTLS, or without TLS) could
// trigger it; capGuard refuses such a line before the library sees it.
var errMalformedCapabilities = errors.New("imap: the server sent a malformed capability list")

// maxGuardedLine bounds a server line capGuard holds back.
const maxGuardedLine = 64 << 10

// capGuard passes the server's bytes on to the IMAP library one complete
// line at a time, refusing a line whose capability data (* CAPABILITY,
// * ENABLED, [CAPABILITY …]) holds a parenthesis. With untilTagged
// (STARTTLS) it stops looking after the first tagged line, the answer to
// STARTTLS: TLS records follow, and the library upgrades the connection
// below it.
type capGuard struct {
	net.Conn
	untilTagged bool
	off         bool
	buf         []byte // read from the server, not yet returned
	ready       int    // bytes at the start of buf that may be returned
	err         error  // returned once buf is drained
}

func guardCapabilities(c net.Conn, untilTagged bool) net.Conn {
	return &capGuard{Conn: c, untilTagged: untilTagged}
}

func (g *capGuard) Read(p []byte) (int, error) {
	for g.ready == 0 {
		if g.off {
			if len(g.buf) == 0 {
				return g.Conn.Read(p)
			}
			g.ready = len(g.buf)
			break
		}
		if i := bytes.IndexByte(g.buf, '\n'); i >= 0 {
			line := g.buf[:i+1]
			if badCapabilities(line) {
				g.buf, g.err = nil, errMalformedCapabilities
				return 0, g.err
			}
			g.ready = i + 1
			if g.untilTagged && line[0] != '*' && line[0] != '+' {
				g.off = true
				g.ready = len(g.buf)
			}
			break
		}
		if g.err != nil {
			if len(g.buf) > 0 && !badCapabilities(g.buf) {
				g.ready = len(g.buf) // the last, unterminated line
				break
			}
			g.buf = nil
			return 0, g.err
		}
		if len(g.buf) > maxGuardedLine {
			g.buf, g.err = nil, errors.New("imap: the server sent a line longer than 64 KiB")
			return 0, g.err
		}
		chunk := make([]byte, 4096)
		n, err := g.Conn.Read(chunk)
		g.buf = append(g.buf, chunk[:n]...)
		if err != nil {
			g.err = err
		}
	}
	n := copy(p, g.buf[:g.ready])
	g.buf, g.ready = g.buf[n:], g.ready-n
	return n, nil
}

// badCapabilities reports a parenthesis in a line's capability data.
func badCapabilities(line []byte) bool {
	up := bytes.ToUpper(line)
	for _, prefix := range [][]byte{[]byte("* CAPABILITY"), []byte("* ENABLED")} {
		if bytes.HasPrefix(up, prefix) && bytes.ContainsAny(up[len(prefix):], "()") {
			return true
		}
	}
	for rest := up; ; {
		i := bytes.Index(rest, []byte("[CAPABILITY"))
		if i < 0 {
			return false
		}
		rest = rest[i+len("[CAPABILITY"):]
		code := rest
		if j := bytes.IndexByte(rest, ']'); j >= 0 {
			code = rest[:j]
		}
		if bytes.ContainsAny(code, "()") {
			return true
		}
	}
}
