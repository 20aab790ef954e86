// Package poppassd simulates a poppassd server (port 106) as
// kravietz/poppassd-ceti 1.8.x speaks it:
//
//	S: 200 poppassd
//	C: user name          S: 200 Your password please
//	C: pass old           S: 200 Your new password please   (500 Old password is incorrect)
//	C: newpass new        S: 200 Password changed           (PAM refusal: "500 PAM error: BAD PASSWORD: …"
//	                                                         then "500 Server error, password not changed")
//	C: quit               S: 200 Bye
//
// with ceti's limits: the "user" line at most 64 bytes ("500 Username too
// long (max 64)"), the "pass" line at most 128 ("500 Password length
// exceeded (max 128)"), and the new password read with sscanf "%128c", so
// what follows its first 128 bytes is silently dropped (the reason the
// poppassd back-end refuses long passwords). Keywords are case-insensitive,
// lines end in CRLF. Options.TLS puts TLS in front, as stunnel would.
//
// It listens on 127.0.0.1 only; a test fixture that keeps passwords in
// memory and logs nothing.
package poppassd

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"strings"
	"sync"
	"time"
)

// Fault breaks the answer to NEWPASS (or the greeting).
type Fault int

const (
	NoFault Fault = iota
	// DropAfterChange changes the password and closes without answering.
	DropAfterChange
	// DropBeforeChange closes after reading NEWPASS, changing nothing.
	DropBeforeChange
	// Garbage changes the password and answers a line without a code.
	Garbage
	// NotPoppassd greets like an IMAP server.
	NotPoppassd
)

// Options configures the server.
type Options struct {
	Users map[string]string
	// MinLength makes PAM refuse shorter new passwords.
	MinLength int
	// TLS serves the protocol inside TLS.
	TLS bool
}

// Server is a running simulated poppassd.
type Server struct {
	Addr   string         // 127.0.0.1:port
	CAPool *x509.CertPool // trusts the TLS certificate (Options.TLS)

	ln net.Listener
	wg sync.WaitGroup

	mu       sync.Mutex
	opts     Options
	users    map[string]string
	fault    Fault
	sessions int
	newpass  int // NEWPASS commands received
}

// Start runs the server.
func Start(opts Options) (*Server, error) {
	s := &Server{opts: opts, users: map[string]string{}}
	for u, p := range opts.Users {
		s.users[u] = p
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if opts.TLS {
		cert, pool, err := selfSigned()
		if err != nil {
			ln.Close()
			return nil, err
		}
		s.CAPool = pool
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	s.ln, s.Addr = ln, ln.Addr().String()
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Close stops the server and waits for its sessions.
func (s *Server) Close() {
	s.ln.Close()
	s.wg.Wait()
}

// SetFault breaks the next sessions.
func (s *Server) SetFault(f Fault) { s.mu.Lock(); s.fault = f; s.mu.Unlock() }

// Password returns a user's password.
func (s *Server) Password(user string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users[user]
}

// Sessions counts the connections accepted; NewPass the NEWPASS commands.
func (s *Server) Sessions() int { s.mu.Lock(); defer s.mu.Unlock(); return s.sessions }
func (s *Server) NewPass() int  { s.mu.Lock(); defer s.mu.Unlock(); return s.newpass }

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.sessions++
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			s.session(c)
		}()
	}
}

func (s *Server) session(c net.Conn) {
	r := bufio.NewReaderSize(c, 1000)
	say := func(line string) { fmt.Fprintf(c, "%s\r\n", line) }
	read := func() (string, bool) {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", false
		}
		line = strings.TrimRight(line, "\r\n")
		// ceti lower-cases the initial keyword
		i := 0
		for i < len(line) && (line[i] >= 'A' && line[i] <= 'Z' || line[i] >= 'a' && line[i] <= 'z') {
			i++
		}
		return strings.ToLower(line[:i]) + line[i:], true
	}
	s.mu.Lock()
	fault := s.fault
	s.mu.Unlock()
	if fault == NotPoppassd {
		say("* OK [CAPABILITY IMAP4rev1] ready")
		return
	}
	say("200 poppassd")
	line, ok := read()
	if !ok {
		return
	}
	if len(line) > 64 {
		say("500 Username too long (max 64)")
		return
	}
	user, _ := strings.CutPrefix(line, "user ")
	if f := strings.Fields(user); len(f) > 0 {
		user = f[0]
	} else {
		say("500 Username required")
		return
	}
	say("200 Your password please")
	if line, ok = read(); !ok {
		return
	}
	if len(line) > 128 {
		say("500 Password length exceeded (max 128)")
		return
	}
	old, _ := strings.CutPrefix(line, "pass ")
	s.mu.Lock()
	want, known := s.users[user]
	s.mu.Unlock()
	if !known || subtle.ConstantTimeCompare([]byte(old), []byte(want)) != 1 {
		say("500 Old password is incorrect")
		return
	}
	say("200 Your new password please")
	if line, ok = read(); !ok {
		return
	}
	next, _ := strings.CutPrefix(line, "newpass ")
	next = strings.TrimLeft(next, " \t") // sscanf's " " matches any white space
	if len(next) > 128 {
		next = next[:128] // sscanf "%128c"
	}
	s.mu.Lock()
	s.newpass++
	s.mu.Unlock()
	switch {
	case next == "":
		say("500 New password required")
		return
	case fault == DropBeforeChange:
		return
	case len(next) < s.opts.MinLength:
		say(fmt.Sprintf("500 PAM error: BAD PASSWORD: The password is shorter than %d characters", s.opts.MinLength))
		say("500 Server error, password not changed")
		return
	}
	s.mu.Lock()
	s.users[user] = next
	s.mu.Unlock()
	switch fault {
	case DropAfterChange:
		return
	case Garbage:
		say("Password changed, I think")
		return
	}
	say("200 Password changed")
	if line, ok = read(); ok && strings.HasPrefix(line, "quit") {
		say("200 Bye")
	}
}

// selfSigned makes a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "poppassd test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}
