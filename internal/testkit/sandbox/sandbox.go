// Package sandbox runs throw-away mail servers on 127.0.0.1 for tests, the
// demo and the end-to-end suite: IMAP (implicit TLS and STARTTLS), POP3
// (implicit TLS and STLS), SMTP (implicit TLS and submission with STARTTLS)
// and an HTTPS password-change endpoint, all sharing one user table and one
// certificate signed by a throw-away CA.
//
// It is a test fixture: it keeps every password it sees in memory (Logins)
// and never prints or logs anything.
package sandbox

import (
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-smtp"
)

// Options configures a Sandbox. The zero value is a sandbox without users.
type Options struct {
	// Users maps user names to passwords.
	Users map[string]string
	// AllowInsecureAuth lets clients authenticate on the cleartext ports
	// (IMAP, POP3, Submission) without STARTTLS. By default those ports
	// refuse: IMAP advertises LOGINDISABLED, SMTP offers no AUTH, POP3
	// answers USER with -ERR [AUTH].
	AllowInsecureAuth bool
	// Expired lists users whose password has expired: IMAP answers their
	// right password with NO [EXPIRED] (RFC 5530), SMTP with 432 4.7.12
	// "A password transition is needed" (RFC 4954), POP3 with -ERR [AUTH]
	// "Password expired"; a wrong password is refused as usual. The
	// sandbox's change endpoint still changes it (SetExpired, ChangeURL),
	// and a change clears it.
	Expired []string
	// ExpiresAt gives users' password expiry dates, which the expiry
	// endpoint (ExpiryURL) reports; a user without one never expires.
	ExpiresAt map[string]time.Time
	// Certificate, if set, is served instead of the certificate signed by
	// the sandbox CA (for instance a self-signed or expired one, to test
	// certificate pinning). CAPEM and CAPool still describe the sandbox CA.
	Certificate *tls.Certificate
	// Lag makes the mail servers lag behind the provider: a password
	// changed at the change endpoint starts working on the IMAP, POP3 and
	// SMTP servers only Lag after the change (the old one works until
	// then), like a directory that has not replicated yet or a server's
	// authentication cache. SetLag changes it later; 0 applies at once.
	Lag time.Duration
}

// Login is one authentication attempt seen by a server.
type Login struct {
	Protocol string // "imap", "pop3" or "smtp"
	// Addr is the address of the server the client connected to (IMAPS,
	// IMAP, POP3S, …: the port tells which).
	Addr     string
	Username string
	Password string
	OK       bool
}

// Sandbox is a set of running servers. Addresses are "127.0.0.1:port".
type Sandbox struct {
	CAPEM  []byte         // the throw-away CA, PEM
	CAPool *x509.CertPool // a pool holding only that CA
	// CertSHA256 is the hex SHA-256 of the leaf certificate the servers
	// present (a pin for endpoint.Endpoint.CertSHA256).
	CertSHA256 string

	IMAPS      string // IMAP, implicit TLS
	IMAP       string // IMAP, STARTTLS
	POP3S      string // POP3, implicit TLS
	POP3       string // POP3, STLS
	SMTPS      string // SMTP submission, implicit TLS
	Submission string // SMTP submission, STARTTLS
	ChangeURL  string // https://127.0.0.1:port/change
	// ExpiryURL answers when a user's password expires (the sandbox
	// back-end's ExpiryReader): https://127.0.0.1:port/expiry.
	ExpiryURL string

	opts      Options
	tlsConfig *tls.Config

	mu        sync.Mutex
	users     map[string]string
	expired   map[string]bool
	expiresAt map[string]time.Time
	mailboxes map[string]*imapmemserver.User
	logins    []Login
	lag       time.Duration
	// lagging are changes the servers do not know yet, by user.
	lagging map[string]pendingChange
	// changeRequests counts the change endpoint's requests (ChangeRequests).
	changeRequests int

	imapServer *imapserver.Server
	smtpServer *smtp.Server
	pop3Server *pop3Server
	httpServer *http.Server

	listeners []net.Listener
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Start starts every server on 127.0.0.1 with an OS-chosen port.
func Start(opts Options) (*Sandbox, error) {
	p, err := newPKI(time.Now())
	if err != nil {
		return nil, fmt.Errorf("sandbox: certificates: %w", err)
	}
	cert := p.leaf
	if opts.Certificate != nil {
		cert = *opts.Certificate
	}
	if len(cert.Certificate) == 0 {
		return nil, errors.New("sandbox: Options.Certificate has no certificate")
	}
	s := &Sandbox{
		CAPEM:      p.caPEM,
		CAPool:     p.pool,
		CertSHA256: fingerprint(cert.Certificate[0]),
		opts:       opts,
		tlsConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			MinVersion:   tls.VersionTLS12,
		},
		users:     make(map[string]string),
		expired:   make(map[string]bool),
		expiresAt: make(map[string]time.Time),
		mailboxes: make(map[string]*imapmemserver.User),
		lag:       opts.Lag,
		lagging:   make(map[string]pendingChange),
	}
	for u, at := range opts.ExpiresAt {
		s.SetExpiresAt(u, at)
	}
	for u, pw := range opts.Users {
		s.SetPassword(u, pw)
	}
	for _, u := range opts.Expired {
		s.SetExpired(u, true)
	}
	if err := s.start(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Sandbox) start() error {
	listen := func(implicitTLS bool) (net.Listener, string, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, "", fmt.Errorf("sandbox: listen: %w", err)
		}
		addr := ln.Addr().String()
		s.listeners = append(s.listeners, ln)
		if implicitTLS {
			ln = tls.NewListener(ln, s.tlsConfig)
		}
		return ln, addr, nil
	}
	serve := func(f func() error) {
		s.wg.Go(func() { _ = f() })
	}

	s.imapServer = newIMAPServer(s)
	s.smtpServer = newSMTPServer(s)
	s.pop3Server = newPOP3Server(s)
	s.httpServer = newChangeServer(s)

	type spec struct {
		addr        *string
		implicitTLS bool
		serve       func(net.Listener) error
	}
	specs := []spec{
		{&s.IMAPS, true, s.imapServer.Serve},
		{&s.IMAP, false, s.imapServer.Serve},
		{&s.POP3S, true, func(ln net.Listener) error { return s.pop3Server.serve(ln) }},
		{&s.POP3, false, func(ln net.Listener) error { return s.pop3Server.serve(ln) }},
		{&s.SMTPS, true, s.smtpServer.Serve},
		{&s.Submission, false, s.smtpServer.Serve},
	}
	for _, sp := range specs {
		ln, addr, err := listen(sp.implicitTLS)
		if err != nil {
			return err
		}
		*sp.addr = addr
		serve(func() error { return sp.serve(ln) })
	}
	ln, addr, err := listen(true)
	if err != nil {
		return err
	}
	s.ChangeURL = "https://" + addr + "/change"
	s.ExpiryURL = "https://" + addr + "/expiry"
	serve(func() error { return s.httpServer.Serve(ln) })
	return nil
}

// Close stops every server, closes every connection and waits for the
// servers' goroutines.
func (s *Sandbox) Close() error {
	s.closeOnce.Do(func() {
		// Listeners first, and every Serve returned, before the servers'
		// own Close: go-imap's Close races with a Serve still starting.
		for _, ln := range s.listeners {
			ln.Close()
		}
		s.wg.Wait()
		var errs []error
		if s.imapServer != nil {
			errs = append(errs, s.imapServer.Close())
		}
		if s.smtpServer != nil {
			errs = append(errs, s.smtpServer.Close())
		}
		if s.pop3Server != nil {
			s.pop3Server.close()
			s.pop3Server.wait()
		}
		if s.httpServer != nil {
			errs = append(errs, s.httpServer.Close())
		}
		for _, err := range errs {
			if err != nil && !errors.Is(err, net.ErrClosed) {
				s.closeErr = fmt.Errorf("sandbox: close: %w", err)
				break
			}
		}
	})
	return s.closeErr
}

// SetPassword sets (or adds) a user's password on every server. It takes
// effect at the next login; the user's mailboxes are kept.
func (s *Sandbox) SetPassword(user, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[user] = password
	delete(s.lagging, user)
}

// SetLag sets how long the mail servers lag behind the change endpoint
// (Options.Lag) for the changes made from now on.
func (s *Sandbox) SetLag(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lag = d
}

// pendingChange is a password the change endpoint accepted and the mail
// servers take from at on.
type pendingChange struct {
	password string
	at       time.Time
}

// password is what the mail servers take for user now; the caller holds mu.
func (s *Sandbox) password(user string) (string, bool) {
	if p, ok := s.lagging[user]; ok && !time.Now().Before(p.at) {
		s.users[user] = p.password
		delete(s.lagging, user)
	}
	pw, ok := s.users[user]
	return pw, ok
}

// SetExpired marks (or unmarks) a user's password as expired (see
// Options.Expired). It takes effect at the next login.
func (s *Sandbox) SetExpired(user string, expired bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if expired {
		s.expired[user] = true
	} else {
		delete(s.expired, user)
	}
}

// SetExpiresAt sets when a user's password expires (the zero time: never).
func (s *Sandbox) SetExpiresAt(user string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if at.IsZero() {
		delete(s.expiresAt, user)
	} else {
		s.expiresAt[user] = at.UTC()
	}
}

// Logins returns every authentication attempt seen so far, in order.
func (s *Sandbox) Logins() []Login {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Login(nil), s.logins...)
}

// LoginsSince returns the authentication attempts after the first mark
// ones: take mark = len(Logins()) before an action, then LoginsSince(mark)
// is what the action caused.
func (s *Sandbox) LoginsSince(mark int) []Login {
	s.mu.Lock()
	defer s.mu.Unlock()
	if mark < 0 || mark > len(s.logins) {
		mark = len(s.logins)
	}
	return append([]Login(nil), s.logins[mark:]...)
}

// LoginKey is one user of one server: what "logged in once" counts.
type LoginKey struct {
	Protocol string
	Addr     string
	Username string
}

// String is "protocol user@addr".
func (k LoginKey) String() string { return k.Protocol + " " + k.Username + "@" + k.Addr }

// CountLogins counts attempts per server and user name, accepted or not.
func CountLogins(logins []Login) map[LoginKey]int {
	n := make(map[LoginKey]int)
	for _, l := range logins {
		n[LoginKey{l.Protocol, l.Addr, l.Username}]++
	}
	return n
}

// ServerTLSConfig returns a copy of the servers' TLS configuration, for test
// servers that should present the sandbox certificate.
func (s *Sandbox) ServerTLSConfig() *tls.Config {
	return s.tlsConfig.Clone()
}

// WriteCA writes the CA certificate (PEM) to path, readable by everyone: it
// is a public certificate.
func (s *Sandbox) WriteCA(path string) error {
	return os.WriteFile(path, s.CAPEM, 0o644)
}

// verdict is what a server answers one authentication attempt.
type verdict int

const (
	refused  verdict = iota // wrong user name or password
	accepted                // right, and in force
	expired                 // right, but expired (Options.Expired)
)

// check records an attempt on the server at addr and reports whether
// username/password are right.
func (s *Sandbox) check(protocol, addr, username, password string) bool {
	return s.checkExpiry(protocol, addr, username, password) == accepted
}

// checkExpiry is check that also tells a right but expired password. An
// expired password is recorded as a login that was not OK.
func (s *Sandbox) checkExpiry(protocol, addr, username, password string) verdict {
	s.mu.Lock()
	defer s.mu.Unlock()
	want, known := s.password(username)
	right := known && subtle.ConstantTimeCompare([]byte(password), []byte(want)) == 1
	v := refused
	switch {
	case right && s.expired[username]:
		v = expired
	case right:
		v = accepted
	}
	s.logins = append(s.logins, Login{Protocol: protocol, Addr: addr, Username: username, Password: password, OK: v == accepted})
	return v
}

// changePassword is the provider's password change: it succeeds only with
// the right current password (the provider's own: with a lag, the one
// changed last). With a lag, the mail servers take the new password only
// lag from now.
func (s *Sandbox) changePassword(username, current, next string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	want, known := s.password(username)
	if p, ok := s.lagging[username]; ok {
		want = p.password
	}
	if !known || subtle.ConstantTimeCompare([]byte(current), []byte(want)) != 1 {
		return false
	}
	if s.lag > 0 {
		s.lagging[username] = pendingChange{password: next, at: time.Now().Add(s.lag)}
		return true
	}
	s.users[username] = next
	delete(s.expired, username)
	delete(s.expiresAt, username)
	return true
}

// expiryOf is what the expiry endpoint answers for one check, recorded as
// a login of protocol "expiry": the state, and the date for "expires".
func (s *Sandbox) expiryOf(addr, username, password string) (state string, at time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	want, known := s.users[username]
	right := known && subtle.ConstantTimeCompare([]byte(password), []byte(want)) == 1
	s.logins = append(s.logins, Login{Protocol: "expiry", Addr: addr, Username: username, Password: password, OK: right})
	switch at, dated := s.expiresAt[username]; {
	case !right:
		return "", time.Time{}, false
	case s.expired[username] || dated && !at.After(time.Now()):
		return "expired", at, true
	case dated:
		return "expires", at, true
	}
	return "never", time.Time{}, true
}
