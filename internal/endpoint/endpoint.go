// Package endpoint describes one mail server as Thunderbird configures it:
// protocol, host, port, security (Thunderbird's socketType), authentication
// method and user name. It is shared by the protocol, flow and verify
// packages and by the CLI, which writes endpoints as URLs
// (imaps://user@host:993).
package endpoint

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Protocol is the mail protocol spoken with the server.
type Protocol string

const (
	IMAP Protocol = "imap"
	POP3 Protocol = "pop3"
	SMTP Protocol = "smtp"
)

// Incoming reports whether p is an incoming-mail protocol.
func (p Protocol) Incoming() bool { return p == IMAP || p == POP3 }

// Security is Thunderbird's nsMsgSocketType.
type Security int

const (
	Plain    Security = 0 // no TLS at all
	STARTTLS Security = 2 // STARTTLS required
	TLS      Security = 3 // implicit TLS
)

// AuthMethod is Thunderbird's nsMsgAuthMethod.
type AuthMethod int

const (
	AuthUnset             AuthMethod = 0 // not given: treated as a cleartext password
	AuthNone              AuthMethod = 1
	AuthOld               AuthMethod = 2 // "password, original method": LOGIN / USER+PASS
	AuthPasswordCleartext AuthMethod = 3
	AuthPasswordEncrypted AuthMethod = 4 // CRAM-MD5
	AuthGSSAPI            AuthMethod = 5
	AuthNTLM              AuthMethod = 6
	AuthExternal          AuthMethod = 7
	AuthSecure            AuthMethod = 8
	AuthAnything          AuthMethod = 9
	AuthOAuth2            AuthMethod = 10
)

// passwordMethods are the methods credsync can verify with a password it
// sends itself. OAuth2, GSSAPI, NTLM and client certificates have no
// password for credsync to sync.
var passwordMethods = []AuthMethod{AuthUnset, AuthOld, AuthPasswordCleartext, AuthAnything}

// UsesPassword reports whether m is one of PasswordMethods.
func (m AuthMethod) UsesPassword() bool {
	return slices.Contains(passwordMethods, m)
}

// PasswordMethods lists the methods a password verifies (hello tells the
// extension).
func PasswordMethods() []AuthMethod {
	return slices.Clone(passwordMethods)
}

// Endpoint is one server of an account.
type Endpoint struct {
	Protocol   Protocol
	Host       string
	Port       int
	Security   Security
	AuthMethod AuthMethod
	Username   string
	// CertSHA256 optionally pins the server's leaf certificate (hex SHA-256
	// of its DER), the way a Thunderbird certificate exception accepts a
	// self-signed server.
	CertSHA256 string
}

// MaxUsername bounds user names; longer ones are refused rather than cut.
const MaxUsername = 1024

// Validate refuses anything that could not have come from a Thunderbird
// account or that could smuggle protocol commands: control characters in
// the host or user name, an invalid port, an unknown security value.
func (e Endpoint) Validate() error {
	switch e.Protocol {
	case IMAP, POP3, SMTP:
	default:
		return fmt.Errorf("unknown protocol %q", e.Protocol)
	}
	if e.Host == "" {
		return errors.New("host is empty")
	}
	if len(e.Host) > 253 || !validHost(e.Host) {
		return errors.New("host is not a valid host name or IP address")
	}
	if e.Port < 1 || e.Port > 65535 {
		return fmt.Errorf("port %d is out of range", e.Port)
	}
	switch e.Security {
	case Plain, STARTTLS, TLS:
	default:
		return fmt.Errorf("unknown socketType %d", e.Security)
	}
	if e.AuthMethod < AuthUnset || e.AuthMethod > AuthOAuth2 {
		return fmt.Errorf("unknown authMethod %d", e.AuthMethod)
	}
	if e.Username == "" {
		return errors.New("username is empty")
	}
	if len(e.Username) > MaxUsername {
		return fmt.Errorf("username is longer than %d bytes", MaxUsername)
	}
	if !utf8.ValidString(e.Username) || strings.ContainsAny(e.Username, "\x00\r\n") {
		return errors.New("username contains NUL, CR, LF or invalid UTF-8")
	}
	if e.CertSHA256 != "" && !validFingerprint(e.CertSHA256) {
		return errors.New("certSha256 is not 64 hexadecimal digits")
	}
	return nil
}

// Address is host:port for dialing, with IPv6 literals bracketed.
func (e Endpoint) Address() string {
	return net.JoinHostPort(e.Host, strconv.Itoa(e.Port))
}

// String is the endpoint as a URL without any secret, for messages and logs.
func (e Endpoint) String() string {
	u := url.URL{Scheme: e.scheme(), User: url.User(e.Username), Host: e.Address()}
	return u.String()
}

func (e Endpoint) scheme() string {
	switch e.Security {
	case TLS:
		return string(e.Protocol) + "s"
	case Plain:
		return string(e.Protocol) + "+insecure"
	}
	return string(e.Protocol)
}

var defaultPorts = map[string]int{
	"imaps": 993, "imap": 143, "imap+insecure": 143,
	"pop3s": 995, "pop3": 110, "pop3+insecure": 110,
	"smtps": 465, "smtp": 587, "smtp+insecure": 587,
}

// Parse reads the CLI form scheme://user@host:port, where the scheme says
// the protocol and security: imaps/pop3s/smtps (implicit TLS), imap/pop3/smtp
// (STARTTLS required), imap+insecure/pop3+insecure/smtp+insecure (no TLS).
// The user name is percent-encoded; a URL carrying a password is refused so
// that no password ever sits in argv.
func Parse(raw string) (Endpoint, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Endpoint{}, fmt.Errorf("not a URL: %w", err)
	}
	scheme := strings.ToLower(u.Scheme)
	port, known := defaultPorts[scheme]
	if !known {
		return Endpoint{}, fmt.Errorf("unknown scheme %q (use imaps, imap, imap+insecure, pop3s, pop3, pop3+insecure, smtps, smtp or smtp+insecure)", u.Scheme)
	}
	if u.User == nil || u.User.Username() == "" {
		return Endpoint{}, errors.New("the URL has no user name (scheme://user@host:port)")
	}
	if _, hasPassword := u.User.Password(); hasPassword {
		return Endpoint{}, errors.New("the URL contains a password; pass it on standard input or at the prompt instead")
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" {
		return Endpoint{}, errors.New("the URL must not have a path, query or fragment")
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil {
			return Endpoint{}, fmt.Errorf("bad port %q", p)
		}
	}
	e := Endpoint{
		Protocol: Protocol(strings.TrimSuffix(strings.TrimSuffix(scheme, "+insecure"), "s")),
		Host:     u.Hostname(),
		Port:     port,
		Security: STARTTLS,
		Username: u.User.Username(),
	}
	switch {
	case strings.HasSuffix(scheme, "+insecure"):
		e.Security = Plain
	case strings.HasSuffix(scheme, "s"):
		e.Security = TLS
	}
	return e, e.Validate()
}

func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			// Letters, digits, hyphen, underscore; non-ASCII for IDNs.
			if r < 0x80 && !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return false
			}
		}
	}
	return utf8.ValidString(h)
}

func validFingerprint(s string) bool {
	s = strings.ReplaceAll(s, ":", "")
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}
