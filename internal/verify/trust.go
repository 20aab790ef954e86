package verify

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/roots"
)

// baseTLSConfig verifies the server the normal way: against trust.Roots (or
// the system roots, loaded once for the process: package roots) and ep.Host.
func baseTLSConfig(ep endpoint.Endpoint, trust Trust) *tls.Config {
	return &tls.Config{
		ServerName: strings.TrimSuffix(ep.Host, "."),
		RootCAs:    roots.Or(trust.Roots),
		MinVersion: tls.VersionTLS12,
	}
}

// parsePin decodes a hex SHA-256 fingerprint, with or without colons.
func parsePin(pin string) ([]byte, bool) {
	b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(pin), ":", ""))
	if err != nil || len(b) != sha256.Size {
		return nil, false
	}
	return b, true
}

// pinMatches reports whether the SHA-256 of leaf's DER equals pin.
func pinMatches(pin string, leaf *x509.Certificate) bool {
	want, ok := parsePin(pin)
	if !ok || leaf == nil {
		return false
	}
	got := sha256.Sum256(leaf.Raw)
	return subtle.ConstantTimeCompare(got[:], want) == 1
}

// pinnedTLSConfig trusts exactly leaf, the way a Thunderbird certificate
// exception does: leaf is the only root; if it does not carry host, one of
// the names it carries is verified instead; if it is outside its validity
// period, verification happens at a time inside it. The chain is still
// verified by crypto/tls, so a server presenting any other certificate on
// the second connection fails.
func pinnedTLSConfig(base *tls.Config, leaf *x509.Certificate, host string, now time.Time) (*tls.Config, error) {
	cfg := base.Clone()
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	cfg.RootCAs = pool
	if leaf.VerifyHostname(strings.TrimSuffix(host, ".")) != nil {
		name := certName(leaf)
		if name == "" {
			return nil, errors.New("the pinned certificate carries no DNS name or IP address to verify it against")
		}
		cfg.ServerName = name
	}
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		mid := leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
		cfg.Time = func() time.Time { return mid }
	}
	return cfg, nil
}

// certName is a name leaf is valid for, preferring a DNS name without
// wildcard.
func certName(leaf *x509.Certificate) string {
	for _, n := range leaf.DNSNames {
		if !strings.Contains(n, "*") && leaf.VerifyHostname(n) == nil {
			return n
		}
	}
	for _, ip := range leaf.IPAddresses {
		if leaf.VerifyHostname(ip.String()) == nil {
			return ip.String()
		}
	}
	for _, n := range leaf.DNSNames {
		if strings.HasPrefix(n, "*.") {
			if name := "pinned" + n[1:]; leaf.VerifyHostname(name) == nil {
				return name
			}
		}
	}
	return ""
}
