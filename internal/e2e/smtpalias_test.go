//go:build e2e && !windows

package e2e

import (
	"crypto/tls"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/credsync/credsync/internal/testkit/sandbox"
)

// smtpAlias is a submission server (STARTTLS, sandbox certificate) that
// accepts a user name alias: it maps the user name and checks the password
// with an AUTH PLAIN login to the sandbox's SMTPS server. It stands for a
// provider whose outgoing server knows the mailbox under another user name
// (the sandbox has one user table and changes only the named user).
type smtpAlias struct {
	Addr string // 127.0.0.1:port

	sb      *sandbox.Sandbox
	aliases map[string]string
	srv     *smtp.Server

	mu     sync.Mutex
	logins []sandbox.Login // as received (alias user names)
}

func startSMTPAlias(t *testing.T, sb *sandbox.Sandbox, aliases map[string]string) *smtpAlias {
	t.Helper()
	a := &smtpAlias{sb: sb, aliases: aliases}
	a.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &aliasSession{a: a}, nil
	}))
	a.srv.Domain = "localhost"
	a.srv.TLSConfig = sb.ServerTLSConfig() // STARTTLS; no AUTH before it
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a.Addr = ln.Addr().String()
	go func() { _ = a.srv.Serve(ln) }()
	t.Cleanup(func() { a.srv.Close() })
	return a
}

func (a *smtpAlias) Logins() []sandbox.Login {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]sandbox.Login(nil), a.logins...)
}

func (a *smtpAlias) check(user, password string) bool {
	real, ok := a.aliases[user]
	if !ok {
		real = user
	}
	c, err := smtp.DialTLS(a.sb.SMTPS, &tls.Config{RootCAs: a.sb.CAPool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	good := false
	if err == nil {
		good = c.Auth(sasl.NewPlainClient("", real, password)) == nil
		_ = c.Quit()
		c.Close()
	}
	a.mu.Lock()
	a.logins = append(a.logins, sandbox.Login{Protocol: "smtp", Addr: a.Addr, Username: user, Password: password, OK: good})
	a.mu.Unlock()
	return good
}

type aliasSession struct {
	a      *smtpAlias
	authed bool
}

func (s *aliasSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *aliasSession) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if (identity != "" && identity != username) || !s.a.check(username, password) {
			return smtp.ErrAuthFailed
		}
		s.authed = true
		return nil
	}), nil
}

func (s *aliasSession) Mail(string, *smtp.MailOptions) error {
	if !s.authed {
		return smtp.ErrAuthRequired
	}
	return nil
}
func (s *aliasSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *aliasSession) Data(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}
func (s *aliasSession) Reset()        {}
func (s *aliasSession) Logout() error { return nil }
