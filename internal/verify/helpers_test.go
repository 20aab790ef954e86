package verify_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/testkit/sandbox"
	"github.com/credsync/credsync/internal/verify"
)

// ---- sandbox ----

func startSandbox(t *testing.T, opts sandbox.Options) *sandbox.Sandbox {
	t.Helper()
	sb, err := sandbox.Start(opts)
	if err != nil {
		t.Fatalf("sandbox.Start() = %v", err)
	}
	t.Cleanup(func() {
		if err := sb.Close(); err != nil {
			t.Errorf("sandbox.Close() = %v", err)
		}
	})
	return sb
}

func mkEndpoint(t *testing.T, proto endpoint.Protocol, addr string, sec endpoint.Security, user string) endpoint.Endpoint {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("SplitHostPort(%q) = %v", addr, err)
	}
	p, _ := strconv.Atoi(port)
	return endpoint.Endpoint{
		Protocol:   proto,
		Host:       host,
		Port:       p,
		Security:   sec,
		AuthMethod: endpoint.AuthPasswordCleartext,
		Username:   user,
	}
}

// sandboxEndpoint is one of the sandbox's six servers.
type sandboxEndpoint struct {
	name  string
	proto endpoint.Protocol
	sec   endpoint.Security
	addr  func(*sandbox.Sandbox) string
}

var sandboxEndpoints = []sandboxEndpoint{
	{"imaps", endpoint.IMAP, endpoint.TLS, func(s *sandbox.Sandbox) string { return s.IMAPS }},
	{"imap+starttls", endpoint.IMAP, endpoint.STARTTLS, func(s *sandbox.Sandbox) string { return s.IMAP }},
	{"pop3s", endpoint.POP3, endpoint.TLS, func(s *sandbox.Sandbox) string { return s.POP3S }},
	{"pop3+stls", endpoint.POP3, endpoint.STARTTLS, func(s *sandbox.Sandbox) string { return s.POP3 }},
	{"smtps", endpoint.SMTP, endpoint.TLS, func(s *sandbox.Sandbox) string { return s.SMTPS }},
	{"submission+starttls", endpoint.SMTP, endpoint.STARTTLS, func(s *sandbox.Sandbox) string { return s.Submission }},
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func wantOutcome(t *testing.T, res verify.Result, want verify.Outcome) {
	t.Helper()
	if res.Outcome != want {
		t.Fatalf("Outcome = %q, want %q (detail %q, err %v)", res.Outcome, want, res.Detail, res.Err)
	}
}

// ---- throw-away certificates ----

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "verify test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// leafSpec describes a server certificate.
type leafSpec struct {
	dns        []string
	ips        []net.IP
	notBefore  time.Time
	notAfter   time.Time
	selfSigned bool
}

// issue makes a server certificate signed by ca (or self-signed) and returns
// it with the hex SHA-256 of its DER.
func (ca *testCA) issue(t *testing.T, s leafSpec) (tls.Certificate, string) {
	t.Helper()
	if s.notBefore.IsZero() {
		s.notBefore = time.Now().Add(-time.Hour)
	}
	if s.notAfter.IsZero() {
		s.notAfter = time.Now().Add(24 * time.Hour)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "verify test server"},
		DNSNames:     s.dns,
		IPAddresses:  s.ips,
		NotBefore:    s.notBefore,
		NotAfter:     s.notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	parent, signer := ca.cert, ca.key
	if s.selfSigned {
		parent, signer = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, hex.EncodeToString(sum[:])
}

var loopbackIPs = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}

// fakePKI is a CA and a certificate for 127.0.0.1/localhost for fake
// servers; trust fakeTrust to accept them.
type fakePKI struct {
	trust  verify.Trust
	server *tls.Config
}

func newFakePKI(t *testing.T) fakePKI {
	ca := newTestCA(t)
	cert, _ := ca.issue(t, leafSpec{dns: []string{"localhost"}, ips: loopbackIPs})
	return fakePKI{
		trust:  verify.Trust{Roots: ca.pool},
		server: &tls.Config{Certificates: []tls.Certificate{cert}},
	}
}

// ---- scripted fake servers ----

// fakeServer accepts connections on 127.0.0.1 and runs handle on each. It
// records every line it reads and every credential it is given.
type fakeServer struct {
	t        *testing.T
	addr     string
	ln       net.Listener
	tls      *tls.Config
	implicit bool

	mu       sync.Mutex
	lines    []string
	creds    []string // "user:password"
	accepted int
	conns    []net.Conn
	wg       sync.WaitGroup
	// holdGoodbye, while open, delays the answer to LOGOUT and QUIT.
	holdGoodbye chan struct{}
}

// startFake serves handle; with implicitTLS, connections are TLS from the
// start; tlsCfg is also used for STARTTLS.
func startFake(t *testing.T, tlsCfg *tls.Config, implicitTLS bool, handle func(*fakeConn)) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{t: t, addr: ln.Addr().String(), ln: ln, tls: tlsCfg, implicit: implicitTLS}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.accepted++
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			fc := &fakeConn{s: s, tcp: c, c: c}
			if implicitTLS {
				fc.c = tls.Server(c, tlsCfg)
			}
			fc.r = bufio.NewReader(fc.c)
			s.wg.Go(func() {
				defer fc.c.Close()
				handle(fc)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *fakeServer) gotCreds() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.creds...)
}

func (s *fakeServer) gotLines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

func (s *fakeServer) acceptedConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

type fakeConn struct {
	s   *fakeServer
	tcp net.Conn
	c   net.Conn
	r   *bufio.Reader
}

func (fc *fakeConn) send(lines ...string) {
	for _, l := range lines {
		io.WriteString(fc.c, l+"\r\n")
	}
}

func (fc *fakeConn) recv() (string, bool) {
	line, err := fc.r.ReadString('\n')
	if err != nil {
		return "", false
	}
	line = strings.TrimRight(line, "\r\n")
	fc.s.mu.Lock()
	fc.s.lines = append(fc.s.lines, line)
	hold := fc.s.holdGoodbye
	fc.s.mu.Unlock()
	if hold != nil && isGoodbye(line) {
		<-hold
	}
	return line, true
}

// isGoodbye matches "QUIT" and "<tag> LOGOUT".
func isGoodbye(line string) bool {
	f := strings.Fields(strings.ToUpper(line))
	return len(f) == 1 && f[0] == "QUIT" || len(f) == 2 && f[1] == "LOGOUT"
}

// holdGoodbyes makes the server sit on LOGOUT and QUIT, without answering,
// until the test ends.
func (s *fakeServer) holdGoodbyes(t *testing.T) {
	hold := make(chan struct{})
	s.mu.Lock()
	s.holdGoodbye = hold
	s.mu.Unlock()
	t.Cleanup(func() { close(hold) }) // before startFake's cleanup waits for the handlers
}

func (fc *fakeConn) readN(n int) (string, bool) {
	b := make([]byte, n)
	if _, err := io.ReadFull(fc.r, b); err != nil {
		return "", false
	}
	return string(b), true
}

func (fc *fakeConn) cred(user, pass string) {
	fc.s.mu.Lock()
	fc.s.creds = append(fc.s.creds, user+":"+pass)
	fc.s.mu.Unlock()
}

func (fc *fakeConn) startTLS() bool {
	tc := tls.Server(fc.c, fc.s.tls)
	if tc.Handshake() != nil {
		return false
	}
	fc.c = tc
	fc.r = bufio.NewReader(tc)
	return true
}

// reset aborts the connection with a TCP RST.
func (fc *fakeConn) reset() {
	if tcp, ok := fc.tcp.(*net.TCPConn); ok {
		tcp.SetLinger(0)
	}
	fc.tcp.Close()
}

// -- IMAP --

type imapFake struct {
	greeting string // default "* OK fake IMAP ready"
	caps     string // default "IMAP4rev1 AUTH=PLAIN"
	starttls string // reply to STARTTLS; "" = OK and handshake
	// login answers LOGIN/AUTHENTICATE PLAIN: the text after the tag
	// ("OK done", "NO [...] ..."); "" resets the connection.
	login  func(user, pass string) string
	before func(*fakeConn) bool // runs first; false ends the connection
	// early: a LOGIN with a synchronising literal, or an AUTHENTICATE
	// without initial response, gets "OK" instead of "+": before the
	// password was sent.
	early bool
}

func (f imapFake) handle(fc *fakeConn) {
	if f.before != nil && !f.before(fc) {
		return
	}
	greeting := f.greeting
	if greeting == "" {
		greeting = "* OK fake IMAP ready"
	}
	caps := f.caps
	if caps == "" {
		caps = "IMAP4rev1 AUTH=PLAIN"
	}
	fc.send(greeting)
	if !strings.HasPrefix(greeting, "* OK") {
		return
	}
	for {
		line, ok := fc.recv()
		if !ok {
			return
		}
		tag, rest, _ := strings.Cut(line, " ")
		cmd, args, _ := strings.Cut(rest, " ")
		switch strings.ToUpper(cmd) {
		case "CAPABILITY":
			fc.send("* CAPABILITY "+caps, tag+" OK done")
		case "STARTTLS":
			if f.starttls != "" {
				fc.send(tag + " " + f.starttls)
				continue
			}
			fc.send(tag + " OK begin TLS")
			if !fc.startTLS() {
				return
			}
		case "LOGIN":
			if f.early && strings.HasSuffix(args, "}") && !strings.HasSuffix(args, "+}") {
				fc.send(tag + " OK logged in")
				continue
			}
			user, args, ok := imapAString(fc, args)
			if !ok {
				return
			}
			pass, _, ok := imapAString(fc, strings.TrimPrefix(args, " "))
			if !ok {
				return
			}
			if !f.reply(fc, tag, user, pass) {
				return
			}
		case "AUTHENTICATE":
			var ir string
			if mech, arg, hasIR := strings.Cut(args, " "); hasIR && strings.EqualFold(mech, "PLAIN") {
				ir = arg
			} else if f.early {
				fc.send(tag + " OK logged in")
				continue
			} else {
				fc.send("+ ")
				if ir, ok = fc.recv(); !ok {
					return
				}
			}
			b, _ := base64.StdEncoding.DecodeString(ir)
			parts := strings.Split(string(b), "\x00")
			if len(parts) != 3 {
				fc.send(tag + " BAD bad PLAIN")
				continue
			}
			if !f.reply(fc, tag, parts[1], parts[2]) {
				return
			}
		case "LOGOUT":
			fc.send("* BYE bye", tag+" OK done")
			return
		default:
			fc.send(tag + " BAD unknown command")
		}
	}
}

func (f imapFake) reply(fc *fakeConn, tag, user, pass string) bool {
	fc.cred(user, pass)
	r := "OK logged in"
	if f.login != nil {
		r = f.login(user, pass)
	}
	if r == "" {
		fc.reset()
		return false
	}
	fc.send(tag + " " + r)
	return true
}

// imapAString reads an atom, a quoted string or a literal from the start of
// s (reading the literal from the connection), and returns the rest.
func imapAString(fc *fakeConn, s string) (val, rest string, ok bool) {
	switch {
	case strings.HasPrefix(s, "\""):
		var sb strings.Builder
		for i := 1; i < len(s); i++ {
			switch s[i] {
			case '\\':
				i++
				if i < len(s) {
					sb.WriteByte(s[i])
				}
			case '"':
				return sb.String(), s[i+1:], true
			default:
				sb.WriteByte(s[i])
			}
		}
		return "", "", false
	case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
		spec := strings.TrimSuffix(s[1:len(s)-1], "+")
		n, err := strconv.Atoi(spec)
		if err != nil {
			return "", "", false
		}
		if !strings.HasSuffix(s, "+}") {
			fc.send("+ go ahead")
		}
		val, ok := fc.readN(n)
		if !ok {
			return "", "", false
		}
		rest, ok := fc.recv()
		return val, rest, ok
	default:
		val, rest, _ := strings.Cut(s, " ")
		return val, " " + rest, val != ""
	}
}

// -- SMTP --

type smtpFake struct {
	greeting string   // default "220 fake ESMTP"
	exts     []string // EHLO extensions; default AUTH PLAIN LOGIN (+ STARTTLS before TLS)
	noTLS    bool     // do not offer STARTTLS
	// auth answers AUTH PLAIN; "" resets the connection. Default 235.
	auth func(user, pass string) string
	// authCmd, if set, handles the whole AUTH command line.
	authCmd func(fc *fakeConn, line string) bool
	before  func(*fakeConn) bool
}

func (f smtpFake) handle(fc *fakeConn) {
	if f.before != nil && !f.before(fc) {
		return
	}
	greeting := f.greeting
	if greeting == "" {
		greeting = "220 fake ESMTP"
	}
	fc.send(greeting)
	if !strings.HasPrefix(greeting, "220") {
		return
	}
	_, isTLS := fc.c.(*tls.Conn)
	for {
		line, ok := fc.recv()
		if !ok {
			return
		}
		verb, args, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			exts := f.exts
			if exts == nil {
				exts = []string{"AUTH PLAIN LOGIN"}
			}
			if !isTLS && !f.noTLS {
				exts = append([]string{"STARTTLS"}, exts...)
			}
			out := []string{"250-fake"}
			for i, e := range exts {
				sep := "-"
				if i == len(exts)-1 {
					sep = " "
				}
				out = append(out, "250"+sep+e)
			}
			if len(exts) == 0 {
				out = []string{"250 fake"}
			}
			fc.send(out...)
		case "STARTTLS":
			fc.send("220 go ahead")
			if !fc.startTLS() {
				return
			}
			isTLS = true
		case "AUTH":
			if f.authCmd != nil {
				if !f.authCmd(fc, line) {
					return
				}
				continue
			}
			mech, ir, _ := strings.Cut(args, " ")
			if !strings.EqualFold(mech, "PLAIN") {
				fc.send("504 5.5.4 unsupported")
				continue
			}
			if ir == "" {
				fc.send("334 ")
				if ir, ok = fc.recv(); !ok {
					return
				}
			}
			b, _ := base64.StdEncoding.DecodeString(ir)
			parts := strings.Split(string(b), "\x00")
			if len(parts) != 3 {
				fc.send("501 5.5.2 bad PLAIN")
				continue
			}
			fc.cred(parts[1], parts[2])
			r := "235 2.7.0 Authentication successful"
			if f.auth != nil {
				r = f.auth(parts[1], parts[2])
			}
			if r == "" {
				fc.reset()
				return
			}
			fc.send(r)
		case "QUIT":
			fc.send("221 2.0.0 bye")
			return
		default:
			fc.send("502 5.5.1 unknown command")
		}
	}
}

// -- POP3 --

type pop3Fake struct {
	greeting string   // default "+OK fake POP3"
	capa     []string // nil: CAPA -ERR; default set by callers
	stls     string   // reply to STLS; "" = +OK and handshake
	user     string   // reply to USER; default "+OK"
	pass     func(user, pass string) string
	before   func(*fakeConn) bool
}

func (f pop3Fake) handle(fc *fakeConn) {
	if f.before != nil && !f.before(fc) {
		return
	}
	greeting := f.greeting
	if greeting == "" {
		greeting = "+OK fake POP3"
	}
	fc.send(greeting)
	var user string
	for {
		line, ok := fc.recv()
		if !ok {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "CAPA":
			if f.capa == nil {
				fc.send("-ERR no CAPA")
				continue
			}
			fc.send(append(append([]string{"+OK"}, f.capa...), ".")...)
		case "STLS":
			if f.stls != "" {
				fc.send(f.stls)
				continue
			}
			fc.send("+OK begin TLS")
			if !fc.startTLS() {
				return
			}
		case "USER":
			user = arg
			r := f.user
			if r == "" {
				r = "+OK"
			}
			fc.send(r)
		case "PASS":
			fc.cred(user, arg)
			r := "+OK logged in"
			if f.pass != nil {
				r = f.pass(user, arg)
			}
			if r == "" {
				fc.reset()
				return
			}
			fc.send(r)
		case "QUIT":
			fc.send("+OK bye")
			return
		default:
			fc.send("-ERR unknown")
		}
	}
}

func (s *fakeServer) String() string { return fmt.Sprintf("fake %s", s.addr) }
