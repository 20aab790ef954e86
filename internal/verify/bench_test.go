package verify_test

import (
	"context"
	"net"
	"strconv"
	"testing"

	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/testkit/sandbox"
	"github.com/credsync/credsync/internal/verify"
)

// BenchmarkBoth: one verification of an account (IMAP implicit TLS and SMTP
// submission with STARTTLS, in parallel) against the in-process servers.
func BenchmarkBoth(b *testing.B) {
	sb, err := sandbox.Start(sandbox.Options{Users: map[string]string{"alice": "s3cret"}})
	if err != nil {
		b.Fatal(err)
	}
	defer sb.Close()
	at := func(p endpoint.Protocol, addr string, sec endpoint.Security) *endpoint.Endpoint {
		host, port, _ := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(port)
		return &endpoint.Endpoint{Protocol: p, Host: host, Port: n, Security: sec, AuthMethod: endpoint.AuthPasswordCleartext, Username: "alice"}
	}
	in, out := at(endpoint.IMAP, sb.IMAPS, endpoint.TLS), at(endpoint.SMTP, sb.Submission, endpoint.STARTTLS)
	trust := verify.Trust{Roots: sb.CAPool}
	for b.Loop() {
		i, o := verify.Both(context.Background(), in, out, "s3cret", trust)
		if i.Outcome != verify.OK || o.Outcome != verify.OK {
			b.Fatalf("Both() = %+v, %+v", i, o)
		}
	}
}
