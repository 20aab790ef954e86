package provider

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

func TestParseLDAPURL(t *testing.T) {
	for _, tc := range []struct {
		url, user      string
		addr, host, dn string
		implicitTLS    bool
	}{
		{"ldap://127.0.0.1:1389/uid=%n,ou=people,dc=example,dc=test", "bob@example.test",
			"127.0.0.1:1389", "127.0.0.1", "uid=bob,ou=people,dc=example,dc=test", false},
		{"ldaps://ldap.example.org/uid=%u,dc=example,dc=org", "bob", "ldap.example.org:636", "ldap.example.org", "uid=bob,dc=example,dc=org", true},
		{"LDAP://ldap.example.org/mail=%u,dc=%d", "a+b@x.org", "ldap.example.org:389", "ldap.example.org", `mail=a\+b@x.org,dc=x.org`, false},
		{"ldap://[::1]:1389/cn=%n%%,o=x", `evil,cn=admin@x`, "[::1]:1389", "::1", `cn=evil\,cn=admin%,o=x`, false},
	} {
		target, err := parseLDAPURL(tc.url)
		if err != nil {
			t.Errorf("parseLDAPURL(%q) = %v", tc.url, err)
			continue
		}
		if target.addr != tc.addr || target.host != tc.host || target.implicitTLS != tc.implicitTLS {
			t.Errorf("parseLDAPURL(%q) = %+v, want addr %s host %s implicitTLS %v", tc.url, target, tc.addr, tc.host, tc.implicitTLS)
		}
		dn, err := target.bindDN(tc.user)
		if err != nil || dn != tc.dn {
			t.Errorf("bindDN(%q) with %q = %q, %v; want %q", tc.user, tc.url, dn, err, tc.dn)
			continue
		}
		// The user name stays inside one attribute value: no injected RDN.
		parsed, err := ldap.ParseDN(dn)
		if err != nil || len(parsed.RDNs) != strings.Count(target.dnTemplate, "=") {
			t.Errorf("bindDN(%q) = %q parses to %v, %v", tc.user, dn, parsed, err)
		}
	}
	for _, bad := range []string{
		"", "127.0.0.1:389/uid=%n", "http://h/uid=%n", "ldapi:///uid=%n", "ldap+insecure://h/uid=%n",
		"ldap://h", "ldap://h/", "ldap://user@h/uid=%n", "ldap://h/uid=%x,dc=a", "ldap://h/uid=%",
		"ldap://h/uid=%n?cn?sub", "ldap://h/uid=%n#x", "ldap://:389/uid=%n",
	} {
		if _, err := parseLDAPURL(bad); err == nil {
			t.Errorf("parseLDAPURL(%q) accepted", bad)
		}
	}
}

func TestLDAPChange(t *testing.T) {
	const dn = "uid=bob,ou=people,dc=example,dc=org"
	for _, tc := range []struct {
		name     string
		fake     fakeLDAP
		want     Kind // "" = success
		detail   string
		sawBind  bool
		sawExop  bool
		startTLS bool
		timeout  time.Duration
	}{
		{name: "ok", sawBind: true, sawExop: true},
		{name: "ok over StartTLS", startTLS: true, sawBind: true, sawExop: true},
		{name: "bind invalid credentials", fake: fakeLDAP{bindCode: 49}, want: WrongCurrent, sawBind: true},
		{name: "bind refused otherwise", fake: fakeLDAP{bindCode: 53, bindMsg: "account locked"}, want: Rejected, detail: "account locked", sawBind: true},
		{name: "exop wrong old password", fake: fakeLDAP{exopCode: 53, exopMsg: "unwilling to verify old password"}, want: WrongCurrent, sawBind: true, sawExop: true},
		{name: "exop invalid credentials", fake: fakeLDAP{exopCode: 49}, want: WrongCurrent, sawBind: true, sawExop: true},
		{name: "exop unwilling otherwise", fake: fakeLDAP{exopCode: 53, exopMsg: "shadow context; no update referral"}, want: Rejected, sawBind: true, sawExop: true},
		{name: "exop policy", fake: fakeLDAP{exopCode: 19, exopMsg: "Password fails quality checking policy"}, want: Rejected, detail: "Password fails quality checking policy", sawBind: true, sawExop: true},
		{name: "exop policy echoing the password", fake: fakeLDAP{exopCode: 19, exopMsg: "NewPass2! is in history"}, want: Rejected, detail: "*** is in history", sawBind: true, sawExop: true},
		{name: "exop not supported", fake: fakeLDAP{exopCode: 2, exopMsg: "not supported"}, want: Rejected, sawBind: true, sawExop: true},
		{name: "exop busy", fake: fakeLDAP{exopCode: 51}, want: Unreachable, sawBind: true, sawExop: true},
		{name: "connection lost after the exop", fake: fakeLDAP{dropExop: true}, want: OutcomeUnknown, sawBind: true, sawExop: true},
		{name: "no answer to the exop", fake: fakeLDAP{hangExop: true}, timeout: 300 * time.Millisecond, want: OutcomeUnknown, detail: "was sent", sawBind: true, sawExop: true},
		{name: "connection lost during the bind", fake: fakeLDAP{dropBind: true}, want: Unreachable, sawBind: true},
		// OpenLDAP ppolicy: a right but expired password is refused with 49
		// and passwordExpired, yet the connection may still change it.
		{name: "expired password: changed on the same connection", fake: fakeLDAP{bindCode: 49, bindPolicy: &pp{warning: -1, ppError: ppPasswordExpired}}, sawBind: true, sawExop: true},
		{name: "expired password: the directory refuses the change", fake: fakeLDAP{bindCode: 49, bindPolicy: &pp{warning: -1, ppError: ppPasswordExpired}, exopCode: 8, exopMsg: "only authenticated users may change passwords"}, want: PasswordExpired, detail: "expired", sawBind: true, sawExop: true},
		{name: "expired password: the new one breaks a rule", fake: fakeLDAP{bindCode: 49, bindPolicy: &pp{warning: -1, ppError: ppPasswordExpired}, exopCode: 19, exopMsg: "Password fails quality checking policy"}, want: Rejected, sawBind: true, sawExop: true},
		{name: "wrong password with a policy control", fake: fakeLDAP{bindCode: 49, bindPolicy: &pp{warning: -1, ppError: -1}}, want: WrongCurrent, sawBind: true},
		{name: "locked (ppolicy)", fake: fakeLDAP{bindCode: 49, bindPolicy: &pp{warning: -1, ppError: ppAccountLocked}}, want: Locked, sawBind: true},
		{name: "must change after a reset", fake: fakeLDAP{bindPolicy: &pp{warning: -1, ppError: ppChangeAfterReset}}, sawBind: true, sawExop: true},
		{name: "closed at once", fake: fakeLDAP{closeAtOnce: true}, want: Unreachable},
		{name: "StartTLS refused", startTLS: true, fake: fakeLDAP{startTLSCode: 2}, want: Unreachable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pki := newFakePKI(t)
			fake := tc.fake
			fake.startTLS = tc.startTLS
			addr := fake.serve(t, pki.server)
			scheme := "ldaps"
			if tc.startTLS {
				scheme = "ldap"
			}
			timeout := 10 * time.Second
			if tc.timeout > 0 {
				timeout = tc.timeout
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			err := ldapBackend{}.Change(ctx, Request{
				Username: "bob@example.org", Current: "OldPass1!", New: "NewPass2!",
				URL:   scheme + "://" + addr + "/uid=%n,ou=people,dc=example,dc=org",
				Roots: pki.roots,
			})
			checkKind(t, err, tc.want, tc.detail)
			got := fake.seen()
			if got.bind != tc.sawBind || got.exop != tc.sawExop {
				t.Errorf("server saw bind %v exop %v, want %v %v", got.bind, got.exop, tc.sawBind, tc.sawExop)
			}
			if got.bind && (got.bindDN != dn || got.bindPW != "OldPass1!" || !got.tlsAtBind) {
				t.Errorf("bind as %q with %q (TLS %v), want %q with the current password over TLS", got.bindDN, got.bindPW, got.tlsAtBind, dn)
			}
			if got.exop && (got.old != "OldPass1!" || got.new != "NewPass2!" || got.hasIdentity) {
				t.Errorf("exop old %q new %q identity %v, want the current and new passwords and no identity", got.old, got.new, got.hasIdentity)
			}
			if err != nil && strings.Contains(err.Error(), "OldPass1!") || err != nil && strings.Contains(err.Error(), "NewPass2!") {
				t.Errorf("error carries a password: %v", err)
			}
		})
	}
}

func TestLDAPChangeRefusesUntrustedAndClosed(t *testing.T) {
	pki := newFakePKI(t)
	var fake fakeLDAP
	addr := fake.serve(t, pki.server)
	req := Request{Username: "bob", Current: "OldPass1!", New: "NewPass2!", URL: "ldaps://" + addr + "/uid=%n,dc=x", Roots: x509.NewCertPool()}
	checkKind(t, ldapBackend{}.Change(context.Background(), req), Unreachable, "TLS")
	if fake.seen().bind {
		t.Error("credentials were sent to a server whose certificate is not trusted")
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	req.URL, req.Roots = "ldaps://"+closed+"/uid=%n,dc=x", pki.roots
	checkKind(t, ldapBackend{}.Change(context.Background(), req), Unreachable, "cannot connect")

	req.Current = ""
	checkKind(t, ldapBackend{}.Change(context.Background(), req), WrongCurrent, "")
}

func checkKind(t *testing.T, err error, want Kind, detail string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("Change() = %v, want success", err)
		}
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Change() = %v (%T), want a *provider.Error of kind %s", err, err, want)
	}
	if e.Kind != want {
		t.Fatalf("Change() kind = %s (%v), want %s", e.Kind, err, want)
	}
	if detail != "" && !strings.Contains(err.Error(), detail) {
		t.Errorf("Change() = %v, want it to mention %q", err, detail)
	}
}

// fakeLDAP answers one connection the way a directory would: optional
// StartTLS, a simple bind, then the Password Modify exop.
type fakeLDAP struct {
	startTLS              bool
	startTLSCode          uint16
	bindCode, exopCode    uint16
	bindMsg, exopMsg      string
	bindPolicy            *pp // a password-policy response control on the bind
	closeAtOnce, dropBind bool
	dropExop, hangExop    bool

	st *fakeLDAPState // set by serve
}

type fakeLDAPState struct {
	mu   sync.Mutex
	got  fakeLDAPSeen
	done chan struct{}
}

type fakeLDAPSeen struct {
	bind, exop, tlsAtBind, hasIdentity bool
	bindDN, bindPW, old, new           string
}

func (f *fakeLDAP) seen() fakeLDAPSeen {
	<-f.st.done
	f.st.mu.Lock()
	defer f.st.mu.Unlock()
	return f.st.got
}

// serve accepts one connection on 127.0.0.1 and returns the address.
func (f *fakeLDAP) serve(t *testing.T, cfg *tls.Config) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.st = &fakeLDAPState{done: make(chan struct{})}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop); ln.Close() })
	go func() {
		defer close(f.st.done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		go func() { <-stop; c.Close() }()
		if f.closeAtOnce {
			return
		}
		isTLS := !f.startTLS
		if isTLS {
			c = tls.Server(c, cfg)
		}
		for {
			p, err := ber.ReadPacket(c)
			if err != nil || len(p.Children) < 2 {
				return
			}
			id, _ := p.Children[0].Value.(int64)
			op := p.Children[1]
			switch op.Tag {
			case ldap.ApplicationBindRequest:
				f.st.mu.Lock()
				f.st.got.bind, f.st.got.tlsAtBind = true, isTLS
				if len(op.Children) >= 3 {
					f.st.got.bindDN = ber.DecodeString(op.Children[1].Data.Bytes())
					f.st.got.bindPW = ber.DecodeString(op.Children[2].Data.Bytes())
				}
				f.st.mu.Unlock()
				if f.dropBind {
					return
				}
				writeBindResponse(c, id, f.bindCode, f.bindMsg, f.bindPolicy)
			case ldap.ApplicationExtendedRequest:
				oid := ""
				if len(op.Children) > 0 {
					oid = ber.DecodeString(op.Children[0].Data.Bytes())
				}
				switch oid {
				case "1.3.6.1.4.1.1466.20037":
					writeLDAP(c, id, ldap.ApplicationExtendedResponse, f.startTLSCode, "")
					if f.startTLSCode != 0 {
						continue
					}
					c, isTLS = tls.Server(c, cfg), true
				case "1.3.6.1.4.1.4203.1.11.1":
					f.recordExop(op)
					switch {
					case f.dropExop:
						return
					case f.hangExop:
						_, _ = io.Copy(io.Discard, c) // until the client gives up
						return
					}
					writeLDAP(c, id, ldap.ApplicationExtendedResponse, f.exopCode, f.exopMsg)
				default:
					writeLDAP(c, id, ldap.ApplicationExtendedResponse, 2, "unknown extended operation")
				}
			case ldap.ApplicationUnbindRequest:
				return
			}
		}
	}()
	return ln.Addr().String()
}

func (f *fakeLDAP) recordExop(op *ber.Packet) {
	f.st.mu.Lock()
	defer f.st.mu.Unlock()
	f.st.got.exop = true
	if len(op.Children) < 2 {
		return
	}
	value, err := ber.DecodePacketErr(op.Children[1].Data.Bytes())
	if err != nil {
		return
	}
	for _, c := range value.Children {
		switch c.Tag {
		case 0:
			f.st.got.hasIdentity = true
		case 1:
			f.st.got.old = ber.DecodeString(c.Data.Bytes())
		case 2:
			f.st.got.new = ber.DecodeString(c.Data.Bytes())
		}
	}
}

func writeLDAP(c net.Conn, id int64, tag ber.Tag, code uint16, msg string) {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Response")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "MessageID"))
	r := ber.Encode(ber.ClassApplication, ber.TypeConstructed, tag, nil, "Response")
	r.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, uint64(code), "resultCode"))
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "matchedDN"))
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, msg, "diagnosticMessage"))
	p.AppendChild(r)
	_, _ = c.Write(p.Bytes())
}

// fakePKI is a throw-away CA and a server certificate for 127.0.0.1, ::1
// and localhost.
type fakePKI struct {
	roots  *x509.CertPool
	server *tls.Config
}

func newFakePKI(t *testing.T) fakePKI {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, leafKey := key(), key()
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "credsync test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	return fakePKI{
		roots:  roots,
		server: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}}},
	}
}
