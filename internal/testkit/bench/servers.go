//go:build !windows

package bench

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/testkit/sandbox"
)

// Kind is one way of logging in to a mail server, as Thunderbird configures
// it, with its floor: the fewest round trips from connect() to the answer
// to the single authentication command that the protocols' rules and
// credsync's own safety rules (greeting, capabilities and TLS checked
// before the password is sent) allow, with TLS 1.3. docs/benchmarks.md
// derives each one.
type Kind struct {
	Key      string // imaps, imap, pop3s, pop3, smtps, submission
	Name     string
	Protocol endpoint.Protocol
	Security endpoint.Security
	Floor    int
	// Steps lists the floor's round trips.
	Steps string
}

// Kinds are every kind credsync verifies, incoming first.
var Kinds = []Kind{
	{"imaps", "IMAP, implicit TLS", endpoint.IMAP, endpoint.TLS, 4,
		"TCP · TLS 1.3 · greeting (+CAPABILITY) · LOGIN"},
	{"imap", "IMAP, STARTTLS", endpoint.IMAP, endpoint.STARTTLS, 5,
		"TCP · STARTTLS sent with the ACK, greeting+OK · TLS 1.3 · CAPABILITY · LOGIN"},
	{"pop3s", "POP3, implicit TLS", endpoint.POP3, endpoint.TLS, 5,
		"TCP · TLS 1.3 · greeting · USER · PASS"},
	{"pop3", "POP3, STLS", endpoint.POP3, endpoint.STARTTLS, 6,
		"TCP · greeting · STLS · TLS 1.3 · USER · PASS"},
	{"smtps", "SMTP submission, implicit TLS", endpoint.SMTP, endpoint.TLS, 5,
		"TCP · TLS 1.3 · greeting · EHLO · AUTH PLAIN"},
	{"submission", "SMTP submission, STARTTLS", endpoint.SMTP, endpoint.STARTTLS, 7,
		"TCP · greeting · EHLO · STARTTLS · TLS 1.3 · EHLO · AUTH PLAIN"},
}

// KindByKey returns the Kind with the given key.
func KindByKey(key string) Kind {
	for _, k := range Kinds {
		if k.Key == key {
			return k
		}
	}
	panic("bench: no kind " + key)
}

// Servers is one set of mail servers, a user on them and the back-end that
// changes the user's password.
type Servers struct {
	Name  string
	Note  string // what they are, for the report
	Roots *x509.CertPool
	CAPEM []byte // the CA that Roots holds, PEM
	User  string
	// Password is the user's current password; the flow changes it.
	Password string
	// Addr maps a Kind's key to the server's address.
	Addr map[string]string

	Backend      string // provider back-end name
	BackendAddr  string
	BackendURL   func(addr string) string // the back-end's URL at addr
	BackendFloor int
	BackendSteps string

	close func()
}

// Close stops what the Servers started or removes what they created.
func (s *Servers) Close() {
	if s.close != nil {
		s.close()
	}
}

// endpoint describes the server of kind k at addr for the user.
func (s *Servers) endpoint(k Kind, addr string) *endpoint.Endpoint {
	host, port, _ := net.SplitHostPort(addr)
	var n int
	fmt.Sscan(port, &n)
	return &endpoint.Endpoint{Protocol: k.Protocol, Host: host, Port: n, Security: k.Security,
		AuthMethod: endpoint.AuthPasswordCleartext, Username: s.User}
}

// StartSandbox starts credsync's in-process servers with one user.
func StartSandbox() (*Servers, error) {
	pw := randomPassword()
	sb, err := sandbox.Start(sandbox.Options{Users: map[string]string{"bench": pw}})
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(sb.ChangeURL)
	if err != nil {
		sb.Close()
		return nil, err
	}
	return &Servers{
		Name: "sandbox", Note: "internal/testkit/sandbox: go-imap, go-smtp and POP3 servers in this process",
		Roots: sb.CAPool, CAPEM: sb.CAPEM, User: "bench", Password: pw,
		Addr: map[string]string{
			"imaps": sb.IMAPS, "imap": sb.IMAP, "pop3s": sb.POP3S, "pop3": sb.POP3,
			"smtps": sb.SMTPS, "submission": sb.Submission,
		},
		Backend: "sandbox", BackendAddr: u.Host,
		BackendURL:   func(addr string) string { return "https://" + addr + u.Path },
		BackendFloor: 3, BackendSteps: "TCP · TLS 1.3 · POST",
		close: func() { sb.Close() },
	}, nil
}

// randomPassword is a throw-away password that satisfies the mail stack's
// password policy (8 characters or more).
func randomPassword() string {
	b := make([]byte, 9)
	rand.Read(b)
	return "Bench-" + hex.EncodeToString(b)
}

// Reachable reports whether every server and the back-end still accept
// connections.
func (s *Servers) Reachable() bool {
	addrs := []string{s.BackendAddr}
	for _, a := range s.Addr {
		addrs = append(addrs, a)
	}
	for _, a := range addrs {
		c, err := net.DialTimeout("tcp", a, time.Second)
		if err != nil {
			return false
		}
		c.Close()
	}
	return true
}
