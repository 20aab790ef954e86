package provider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptrace"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/publicsuffix"

	sysroots "github.com/credsync/credsync/internal/roots"
)

// maxBody bounds what a web back-end reads of a provider's page.
const maxBody = 4 << 20

// newHTTPClient returns a client for one change: its own cookie jar, TLS
// verified against roots, no redirects to other schemes, and none that
// would carry a password to another site.
func newHTTPClient(roots *x509.CertPool) *http.Client {
	jar, _ := cookiejar.New(&cookiejar.Options{PublicSuffixList: publicsuffix.List})
	return &http.Client{
		Jar: jar,
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			TLSClientConfig:     &tls.Config{RootCAs: sysroots.Or(roots), MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout: 15 * time.Second,
			// HTTP/1.1 only: a change is a few requests in turn, which
			// HTTP/2 would not speed up, and release builds leave it out
			// to keep the host small (Makefile's TAGS).
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("too many redirects")
			}
			if req.URL.Scheme != via[0].URL.Scheme {
				return errors.New("redirect changes the scheme")
			}
			// A 307 or 308 repeats a form with its body, and any redirect
			// may repeat the Authorization header: neither may take a
			// password to another site than the one it was meant for.
			if site(req.URL) != site(via[0].URL) &&
				(req.Method != http.MethodGet && req.Method != http.MethodHead || req.Header.Get("Authorization") != "") {
				return errors.New("redirect would send the passwords to another site")
			}
			return nil
		},
	}
}

// site is u's scheme, host name and port (the default one when absent).
func site(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	return u.Scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// sendOnce sends req once on a client of its own and closes its
// connection afterwards: one request is the whole exchange.
func sendOnce(ctx context.Context, roots *x509.CertPool, req *http.Request) (*http.Response, []byte, error) {
	client := newHTTPClient(roots)
	defer client.CloseIdleConnections()
	return send(ctx, client, req, true)
}

// SendOnce is sendOnce for a back-end registered from outside this package
// (Register): the same client, TLS verification, redirect rules and error
// kinds as the built-in web back-ends.
func SendOnce(ctx context.Context, roots *x509.CertPool, req *http.Request) (*http.Response, []byte, error) {
	return sendOnce(ctx, roots, req)
}

// send performs req once and reads the body. A failure before the request
// was written is Unreachable (nothing changed); after it, OutcomeUnknown
// when changes is true (the provider may have applied it), else Unreachable.
func send(ctx context.Context, client *http.Client, req *http.Request, changes bool) (*http.Response, []byte, error) {
	var written bool
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { written = true }}
	req = req.WithContext(httptrace.WithClientTrace(ctx, trace))
	resp, err := client.Do(req)
	if err == nil {
		var body []byte
		body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		if err == nil {
			return resp, body, nil
		}
	}
	kind := Unreachable
	if written && changes {
		kind = OutcomeUnknown
	}
	return nil, nil, &Error{Kind: kind, Detail: req.URL.Redacted(), Err: err, written: written}
}
