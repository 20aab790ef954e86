package provider

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/credsync/credsync/internal/redact"
	"github.com/credsync/credsync/internal/roots"
)

// ldapBackend changes a password with the LDAP Password Modify extended
// operation (RFC 3062), as the user: it binds with the user's DN and the
// current password, then sends the exop with the current and the new
// password. OpenLDAP and most directories implement it; Active Directory and
// Samba AD do not.
//
// Request.URL is ldap://HOST[:PORT]/BIND-DN-TEMPLATE (StartTLS, required;
// port 389 by default) or ldaps://HOST[:PORT]/BIND-DN-TEMPLATE (implicit
// TLS; port 636). There is no plaintext mode: credentials go only over a
// verified TLS connection. The template after the first slash is the bind DN
// as written (not percent-decoded), with
//
//	%u  the whole user name (bob@example.org)
//	%n  its local part, before the last @ (bob)
//	%d  its domain, after the last @ (example.org; empty without @)
//	%%  a literal %
//
// each value escaped for a DN (RFC 4514). Example:
//
//	ldap://ldap.example.org/uid=%n,ou=people,dc=example,dc=org
//
// No search: the DN must follow from the user name, as with Dovecot's
// auth_bind_userdn or Roundcube's password_ldap_userDN_mask.
type ldapBackend struct{}

func (ldapBackend) Info() Info {
	return Info{
		Name:         "ldap",
		Description:  "LDAP directory (RFC 3062 Password Modify, e.g. OpenLDAP); URL ldap[s]://host/uid=%n,ou=people,dc=example,dc=org",
		NeedsURL:     true,
		NeedsCurrent: true,
		Expiry:       true,
	}
}

// ldapTimeout bounds a change when the context has no deadline.
const ldapTimeout = 60 * time.Second

func (ldapBackend) Change(ctx context.Context, r Request) error {
	t, err := parseLDAPURL(r.URL)
	if err != nil {
		return &Error{Kind: Unreachable, Detail: "ldap: " + err.Error()}
	}
	dn, err := t.bindDN(r.Username)
	if err != nil {
		return &Error{Kind: Unreachable, Detail: "ldap: " + err.Error()}
	}
	if r.Current == "" {
		// go-ldap refuses it anyway: an empty password is an unauthenticated bind.
		return &Error{Kind: WrongCurrent, Detail: "ldap: the current password is empty"}
	}
	if r.New == "" {
		return &Error{Kind: Rejected, Detail: "ldap: the new password is empty"}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ldapTimeout)
		defer cancel()
	}
	secrets := []string{r.Current, r.New}

	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return &Error{Kind: Unreachable, Detail: "ldap: cannot connect to " + t.addr, Err: err}
	}
	tracked := &writeTracker{Conn: raw}
	// Cancelling ctx closes the socket, which ends any blocked read, write or
	// handshake inside go-ldap.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	defer raw.Close()

	cfg := &tls.Config{ServerName: t.host, RootCAs: roots.Or(r.Roots), MinVersion: tls.VersionTLS12}
	var conn *ldap.Conn
	if t.implicitTLS {
		tc := tls.Client(tracked, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return &Error{Kind: Unreachable, Detail: "ldap: TLS handshake with " + t.addr + " failed", Err: err}
		}
		conn = ldap.NewConn(tc, true)
	} else {
		conn = ldap.NewConn(tracked, false)
	}
	conn.Start()
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		// A little longer than ctx: its expiry closes the socket (above),
		// so the error says which deadline passed.
		conn.SetTimeout(time.Until(dl) + time.Second)
	}
	if !t.implicitTLS {
		if err := conn.StartTLS(cfg); err != nil {
			return &Error{Kind: Unreachable, Detail: "ldap: StartTLS with " + t.addr + " failed (credentials are never sent without TLS)", Err: ctxErr(ctx, err)}
		}
	}
	if st, ok := conn.TLSConnectionState(); !ok || !st.HandshakeComplete {
		return &Error{Kind: Unreachable, Detail: "ldap: the connection is not encrypted"}
	}

	// The password-policy request control (ppolicy) tells a right but
	// expired password from a wrong one.
	res, err := conn.SimpleBind(&ldap.SimpleBindRequest{Username: dn, Password: r.Current,
		Controls: []ldap.Control{ldap.NewControlBeheraPasswordPolicy()}})
	expired := false
	if err != nil {
		pp := passwordPolicy(res)
		code, _, server := ldapResult(err)
		switch {
		case server && code == ldap.LDAPResultInvalidCredentials && pp != nil && pp.Error == ppAccountLocked:
			return &Error{Kind: Locked, Detail: "ldap: the directory says the account " + dn + " is locked (ppolicy accountLocked)"}
		case !server || code != ldap.LDAPResultInvalidCredentials || pp == nil || pp.Error != ppPasswordExpired:
			return ldapBindError(ctxErr(ctx, err), dn, secrets)
		}
		// OpenLDAP's ppolicy refuses the bind (49, passwordExpired) but
		// leaves the connection bound as the user, for a password change
		// only (seen with slapd 2.5 without grace logins): try it, with the
		// current password, which the exop checks again.
		expired = true
	}
	tracked.arm()
	_, err = conn.PasswordModify(ldap.NewPasswordModifyRequest("", r.Current, r.New))
	if err != nil {
		if code, msg, server := ldapResult(err); expired && server && code != ldap.LDAPResultConstraintViolation {
			return &Error{Kind: PasswordExpired, Detail: "ldap: the password of " + dn + " has expired and the directory refuses to change it with the expired password (" +
				ldapResultText(code) + describe(msg, secrets) + "): ask the administrator to reset it"}
		}
		return ldapExopError(ctxErr(ctx, err), tracked.wroteArmed(), secrets)
	}
	return nil
}

// ldapBindError maps a failed bind: nothing has been changed yet.
func ldapBindError(err error, dn string, secrets []string) error {
	code, msg, server := ldapResult(err)
	switch {
	case !server:
		return &Error{Kind: Unreachable, Detail: "ldap: bind as " + dn + " failed", Err: redactErr(err, secrets)}
	case code == ldap.LDAPResultInvalidCredentials:
		return &Error{Kind: WrongCurrent, Detail: "ldap: the directory refused the current password for " + dn + describe(msg, secrets)}
	}
	return &Error{Kind: Rejected, Detail: "ldap: the directory refused the bind as " + dn + ": " + ldapResultText(code) + describe(msg, secrets)}
}

// ldapExopError maps a failed Password Modify. sent reports whether any byte
// of the request was written: a network failure after that may have come
// after the directory applied the change.
func ldapExopError(err error, sent bool, secrets []string) error {
	code, msg, server := ldapResult(err)
	switch {
	case !server && sent:
		return &Error{Kind: OutcomeUnknown, Detail: "ldap: the connection failed after the password change was sent", Err: redactErr(err, secrets)}
	case !server:
		return &Error{Kind: Unreachable, Detail: "ldap: the password change could not be sent", Err: redactErr(err, secrets)}
	case code == ldap.LDAPResultInvalidCredentials,
		// OpenLDAP: "unwilling to verify old password".
		code == ldap.LDAPResultUnwillingToPerform && strings.Contains(strings.ToLower(msg), "old password"):
		return &Error{Kind: WrongCurrent, Detail: "ldap: the directory refused the current password" + describe(msg, secrets)}
	case code == ldap.LDAPResultConstraintViolation:
		// Policy: length, quality, history, minimum age (ppolicy).
		return &Error{Kind: Rejected, Detail: "ldap: the directory refused the new password" + describe(msg, secrets)}
	case code == ldap.LDAPResultBusy || code == ldap.LDAPResultUnavailable:
		return &Error{Kind: Unreachable, Detail: "ldap: the directory is " + ldapResultText(code) + describe(msg, secrets)}
	}
	return &Error{Kind: Rejected, Detail: "ldap: the directory refused the password change: " + ldapResultText(code) + describe(msg, secrets)}
}

// ldapResult splits err into the server's result code and diagnostic
// message; server is false when err is not a result sent by the server
// (network, timeout, unparsable response: go-ldap's codes from 200 on).
func ldapResult(err error) (code uint16, msg string, server bool) {
	var le *ldap.Error
	if !errors.As(err, &le) || le.ResultCode >= ldap.ErrorNetwork {
		return 0, "", false
	}
	if le.Err != nil {
		msg = le.Err.Error()
	}
	return le.ResultCode, msg, true
}

func ldapResultText(code uint16) string {
	if s, ok := ldap.LDAPResultCodeMap[code]; ok {
		return fmt.Sprintf("%s (%d)", s, code)
	}
	return fmt.Sprintf("result %d", code)
}

// describe is ": msg" on one line without secrets, or "" for no message.
func describe(msg string, secrets []string) string {
	msg = redact.New(secrets...).Clean(msg, collapseText)
	if msg == "" {
		return ""
	}
	return ": " + msg
}

// redactErr keeps err unless its text gives a secret away (in any form,
// redact.Set); then its text is masked, or withheld when a secret is too
// short to mask. The replacement still answers errors.Is for the cause (a
// deadline, a closed connection), but hides its text from errors.As.
func redactErr(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	set := redact.New(secrets...)
	s := err.Error()
	if set.Short() {
		return &redactedError{msg: redact.WithheldShort, cause: err}
	}
	if set.Leaks(s) {
		return &redactedError{msg: set.Clean(s, nil), cause: err}
	}
	return err
}

// redactedError replaces an error whose text gave a secret away.
type redactedError struct {
	msg   string
	cause error
}

func (e *redactedError) Error() string { return e.msg }

func (e *redactedError) Is(target error) bool { return errors.Is(e.cause, target) }

// ctxErr prefers the context's error: go-ldap reports a socket closed by
// cancellation as a bare network error.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errors.Join(ctx.Err(), err)
	}
	return err
}

// ldapTarget is a parsed back-end URL.
type ldapTarget struct {
	host        string // for TLS verification
	addr        string // host:port
	implicitTLS bool
	dnTemplate  string
}

func parseLDAPURL(raw string) (ldapTarget, error) {
	if raw == "" {
		return ldapTarget{}, errors.New("no URL (ldap://host/DN-TEMPLATE or ldaps://host/DN-TEMPLATE)")
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return ldapTarget{}, errors.New("the URL must start with ldap:// or ldaps://")
	}
	var t ldapTarget
	port := "389"
	switch strings.ToLower(scheme) {
	case "ldap":
	case "ldaps":
		t.implicitTLS, port = true, "636"
	default:
		return ldapTarget{}, fmt.Errorf("unsupported scheme %q (use ldap:// with StartTLS or ldaps://)", scheme)
	}
	hostport, tmpl, _ := strings.Cut(rest, "/")
	u, err := url.Parse("ldap://" + hostport)
	if err != nil || u.User != nil || u.Host == "" || u.Hostname() == "" || u.Path != "" || u.RawQuery != "" {
		return ldapTarget{}, fmt.Errorf("bad host %q", hostport)
	}
	if p := u.Port(); p != "" {
		port = p
	}
	t.host = u.Hostname()
	t.addr = net.JoinHostPort(t.host, port)
	if tmpl == "" {
		return ldapTarget{}, errors.New("the URL has no bind DN after the host (e.g. ldap://host/uid=%n,ou=people,dc=example,dc=org)")
	}
	if strings.ContainsAny(tmpl, "?#\x00\r\n") {
		return ldapTarget{}, errors.New("the bind DN must not contain ?, # or control characters (LDAP URL attributes, scope and filters are not supported)")
	}
	if err := checkTemplate(tmpl, "bind DN"); err != nil {
		return ldapTarget{}, err
	}
	t.dnTemplate = tmpl
	return t, nil
}

// bindDN fills the template with the user name, escaped for a DN.
func (t ldapTarget) bindDN(user string) (string, error) {
	if user == "" {
		return "", errors.New("no user name")
	}
	dn := expandUserTemplate(t.dnTemplate, user, ldap.EscapeDN)
	if _, err := ldap.ParseDN(dn); err != nil {
		return "", fmt.Errorf("the bind DN %q is not a valid DN: %w", dn, err)
	}
	return dn, nil
}

// writeTracker records whether anything was written to the socket after
// arm: once the Password Modify request may have left, a lost connection
// leaves the outcome unknown.
type writeTracker struct {
	net.Conn
	armed, wrote atomic.Bool
}

func (c *writeTracker) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 && c.armed.Load() {
		c.wrote.Store(true)
	}
	return n, err
}

func (c *writeTracker) arm()             { c.armed.Store(true) }
func (c *writeTracker) wroteArmed() bool { return c.wrote.Load() }
