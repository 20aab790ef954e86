package sandbox

import (
	"io"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// errSMTPExpired is RFC 4954's answer to a right password that must be
// changed first.
var errSMTPExpired = &smtp.SMTPError{
	Code:         432,
	EnhancedCode: smtp.EnhancedCode{4, 7, 12},
	Message:      "A password transition is needed",
}

func newSMTPServer(s *Sandbox) *smtp.Server {
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{sb: s, addr: c.Conn().LocalAddr().String()}, nil
	}))
	srv.Domain = "localhost"
	srv.TLSConfig = s.tlsConfig // enables STARTTLS on the submission port
	srv.AllowInsecureAuth = s.opts.AllowInsecureAuth
	srv.ErrorLog = quiet
	srv.ReadTimeout = 10 * time.Minute
	srv.WriteTimeout = time.Minute
	srv.MaxMessageBytes = 10 << 20
	srv.MaxRecipients = 100
	return srv
}

// smtpSession offers AUTH PLAIN and LOGIN and accepts and discards mail
// from authenticated clients.
type smtpSession struct {
	sb     *Sandbox
	addr   string // the server's address (SMTPS or Submission)
	authed bool
}

func (sess *smtpSession) AuthMechanisms() []string {
	return []string{sasl.Plain, sasl.Login}
}

func (sess *smtpSession) Auth(mech string) (sasl.Server, error) {
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				sess.sb.check("smtp", sess.addr, username, "")
				return smtp.ErrAuthFailed
			}
			return sess.login(username, password)
		}), nil
	case sasl.Login:
		return &loginServer{auth: sess.login}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// login returns smtp.ErrAuthFailed (535 5.7.8) on a wrong password: a plain
// error would make go-smtp answer 454 (temporary).
func (sess *smtpSession) login(username, password string) error {
	switch sess.sb.checkExpiry("smtp", sess.addr, username, password) {
	case refused:
		return smtp.ErrAuthFailed
	case expired:
		return errSMTPExpired
	}
	sess.authed = true
	return nil
}

func (sess *smtpSession) Mail(string, *smtp.MailOptions) error {
	if !sess.authed {
		return smtp.ErrAuthRequired
	}
	return nil
}

func (sess *smtpSession) Rcpt(string, *smtp.RcptOptions) error { return nil }

func (sess *smtpSession) Data(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

func (sess *smtpSession) Reset()        {}
func (sess *smtpSession) Logout() error { return nil }

// loginServer is the server side of SASL LOGIN (go-sasl has none): it asks
// "Username:" then "Password:", and accepts the user name as an initial
// response.
type loginServer struct {
	step     int
	username string
	auth     func(username, password string) error
}

func (l *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch l.step {
	case 0:
		if response != nil {
			l.username = string(response)
			l.step = 2
			return []byte("Password:"), false, nil
		}
		l.step = 1
		return []byte("Username:"), false, nil
	case 1:
		l.username = string(response)
		l.step = 2
		return []byte("Password:"), false, nil
	case 2:
		l.step = 3
		return nil, true, l.auth(l.username, string(response))
	}
	return nil, true, sasl.ErrUnexpectedClientResponse
}
