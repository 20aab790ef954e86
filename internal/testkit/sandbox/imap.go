package sandbox

import (
	"io"
	"log"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// errIMAPExpired is RFC 5530's answer to a right but expired password.
var errIMAPExpired = &imap.Error{
	Type: imap.StatusResponseTypeNo,
	Code: imap.ResponseCodeExpired,
	Text: "Password expired: change it",
}

// quiet discards the servers' error logs: the sandbox prints nothing.
var quiet = log.New(io.Discard, "", 0)

func newIMAPServer(s *Sandbox) *imapserver.Server {
	return imapserver.New(&imapserver.Options{
		NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &imapSession{sb: s, addr: c.NetConn().LocalAddr().String()}, nil, nil
		},
		// IMAP4rev1 only, so that clients send non-ASCII passwords as
		// literals (with IMAP4rev2 they may quote UTF-8).
		Caps: imap.CapSet{
			imap.CapIMAP4rev1: {},
			imap.CapIdle:      {},
			imap.CapNamespace: {},
			imap.CapUIDPlus:   {},
			imap.CapMove:      {},
			imap.CapUnselect:  {},
		},
		Logger:       quiet,
		TLSConfig:    s.tlsConfig, // enables STARTTLS on the cleartext port
		InsecureAuth: s.opts.AllowInsecureAuth,
	})
}

// imapSession is imapmemserver's session with the sandbox's user table:
// passwords come from Sandbox.users (so SetPassword takes effect at the next
// login) and mailboxes persist per user name.
type imapSession struct {
	*imapmemserver.UserSession // nil until logged in

	sb   *Sandbox
	addr string // the server's address (IMAPS or IMAP)
}

// Login also serves AUTHENTICATE PLAIN (imapserver's default).
func (sess *imapSession) Login(username, password string) error {
	switch sess.sb.checkExpiry("imap", sess.addr, username, password) {
	case refused:
		return imapserver.ErrAuthFailed
	case expired:
		return errIMAPExpired
	}
	sess.UserSession = imapmemserver.NewUserSession(sess.sb.imapUser(username))
	return nil
}

func (sess *imapSession) Close() error {
	if sess.UserSession == nil {
		return nil
	}
	return sess.UserSession.Close()
}

// imapUser returns the user's mailboxes, creating them at first login.
func (s *Sandbox) imapUser(username string) *imapmemserver.User {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.mailboxes[username]; u != nil {
		return u
	}
	// The password stored in imapmemserver.User is never used: imapSession
	// checks passwords itself.
	u := imapmemserver.NewUser(username, "")
	_ = u.Create("INBOX", nil)
	for name, use := range map[string]imap.MailboxAttr{
		"Drafts": imap.MailboxAttrDrafts,
		"Sent":   imap.MailboxAttrSent,
		"Trash":  imap.MailboxAttrTrash,
	} {
		_ = u.Create(name, &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{use}})
		_ = u.Subscribe(name)
	}
	_ = u.Subscribe("INBOX")
	s.mailboxes[username] = u
	return u
}
