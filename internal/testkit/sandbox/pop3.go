package sandbox

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"sync"
	"time"
)

// pop3Server is a minimal POP3 server (RFC 1939, 2449, 2595) with an empty
// mailbox: enough for a client to log in, list nothing and quit.
type pop3Server struct {
	sb *Sandbox

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

const (
	pop3IdleTimeout = 10 * time.Minute
	pop3MaxLine     = 8192
)

func newPOP3Server(s *Sandbox) *pop3Server {
	return &pop3Server{sb: s, conns: make(map[net.Conn]struct{})}
}

// serve accepts connections until ln is closed. A *tls.Conn (from a
// tls.NewListener) is implicit TLS.
func (p *pop3Server) serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return nil
		}
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go func() {
			defer p.wg.Done()
			p.handle(c)
		}()
	}
}

func (p *pop3Server) close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}

func (p *pop3Server) wait() { p.wg.Wait() }

func (p *pop3Server) track(old, c net.Conn) {
	p.mu.Lock()
	delete(p.conns, old)
	p.conns[c] = struct{}{}
	if p.closed {
		c.Close()
	}
	p.mu.Unlock()
}

type pop3Session struct {
	p      *pop3Server
	addr   string // the server's address (POP3S or POP3)
	conn   net.Conn
	r      *bufio.Reader
	w      *bufio.Writer
	isTLS  bool
	user   string // after USER
	authed bool
}

func (p *pop3Server) handle(c net.Conn) {
	s := &pop3Session{p: p, addr: c.LocalAddr().String(), conn: c}
	defer func() {
		s.conn.Close()
		p.mu.Lock()
		delete(p.conns, s.conn)
		p.mu.Unlock()
	}()
	if tc, ok := c.(*tls.Conn); ok {
		tc.SetDeadline(time.Now().Add(time.Minute))
		if tc.Handshake() != nil {
			return
		}
		s.isTLS = true
	}
	s.setConn(s.conn)
	s.reply("+OK credsync sandbox POP3 ready")
	for {
		s.conn.SetDeadline(time.Now().Add(pop3IdleTimeout))
		line, err := s.readLine()
		if err != nil {
			return
		}
		name, arg, _ := strings.Cut(line, " ")
		if !s.command(strings.ToUpper(name), arg) {
			return
		}
	}
}

func (s *pop3Session) setConn(c net.Conn) {
	s.conn = c
	s.r = bufio.NewReader(c)
	s.w = bufio.NewWriter(c)
}

func (s *pop3Session) readLine() (string, error) {
	var line []byte
	for {
		chunk, isPrefix, err := s.r.ReadLine()
		if err != nil {
			return "", err
		}
		line = append(line, chunk...)
		if len(line) > pop3MaxLine {
			return "", errors.New("line too long")
		}
		if !isPrefix {
			return string(line), nil
		}
	}
}

func (s *pop3Session) reply(lines ...string) {
	for _, l := range lines {
		s.w.WriteString(l + "\r\n")
	}
	s.w.Flush()
}

func (s *pop3Session) authAllowed() bool { return s.isTLS || s.p.sb.opts.AllowInsecureAuth }

// command handles one command and reports whether to keep the connection.
func (s *pop3Session) command(name, arg string) bool {
	switch name {
	case "CAPA":
		caps := []string{"+OK Capability list follows", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"}
		if !s.isTLS && !s.authed {
			caps = append(caps, "STLS")
		}
		if s.authAllowed() {
			caps = append(caps, "USER")
		}
		s.reply(append(caps, "IMPLEMENTATION credsync-sandbox", ".")...)
	case "STLS":
		if s.isTLS || s.authed {
			s.reply("-ERR STLS not available")
			break
		}
		s.reply("+OK Begin TLS negotiation")
		if s.r.Buffered() > 0 {
			return false // pipelined cleartext after STLS: refuse (RFC 2595)
		}
		tc := tls.Server(s.conn, s.p.sb.tlsConfig)
		s.p.track(s.conn, tc)
		s.conn.SetDeadline(time.Now().Add(time.Minute))
		if tc.Handshake() != nil {
			s.conn = tc
			return false
		}
		s.setConn(tc)
		s.isTLS = true
		s.user = ""
	case "USER":
		switch {
		case s.authed:
			s.reply("-ERR already authenticated")
		case !s.authAllowed():
			s.reply("-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.")
		case arg == "":
			s.reply("-ERR missing user name")
		default:
			s.user = arg
			s.reply("+OK")
		}
	case "PASS":
		switch {
		case s.authed:
			s.reply("-ERR already authenticated")
		case s.user == "":
			s.reply("-ERR USER first")
		default:
			switch s.p.sb.checkExpiry("pop3", s.addr, s.user, arg) {
			case accepted:
				s.authed = true
				s.reply("+OK Logged in.")
			case expired:
				s.user = ""
				s.reply("-ERR [AUTH] Password expired.")
			default:
				s.user = ""
				s.reply("-ERR [AUTH] Authentication failed.")
			}
		}
	case "QUIT":
		s.reply("+OK Logging out.")
		return false
	case "NOOP", "RSET":
		if !s.authed {
			s.reply("-ERR not authenticated")
			break
		}
		s.reply("+OK")
	case "STAT":
		if !s.authed {
			s.reply("-ERR not authenticated")
			break
		}
		s.reply("+OK 0 0")
	case "LIST", "UIDL":
		switch {
		case !s.authed:
			s.reply("-ERR not authenticated")
		case arg != "":
			s.reply("-ERR no such message")
		case name == "LIST":
			s.reply("+OK 0 messages (0 octets)", ".")
		default:
			s.reply("+OK", ".")
		}
	case "RETR", "DELE", "TOP":
		if !s.authed {
			s.reply("-ERR not authenticated")
			break
		}
		s.reply("-ERR no such message")
	default:
		s.reply("-ERR unknown command")
	}
	return true
}
