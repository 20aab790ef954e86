package protocol

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/provider"
)

func TestExpiryRequest(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	for _, tc := range []struct {
		name, req string
		status    string
		code      string // error code, or the result's state
		field     string
	}{
		{"no back-end", `{"id":"e","type":"expiry","username":"bob","password":"pw-canary"}`, "error", "invalid_request", "backend"},
		{"unknown back-end", `{"id":"e","type":"expiry","backend":{"name":"nope"},"username":"bob","password":"pw-canary"}`, "error", "backend_unknown", "backend.name"},
		{"no user", `{"id":"e","type":"expiry","backend":{"name":"ldap","url":"ldaps://127.0.0.1/uid=%n"},"password":"pw-canary"}`, "error", "invalid_request", "username"},
		{"no password", `{"id":"e","type":"expiry","backend":{"name":"ldap","url":"ldaps://127.0.0.1/uid=%n"},"username":"bob"}`, "error", "invalid_request", "password"},
		{"a back-end that cannot know", `{"id":"e","type":"expiry","backend":{"name":"cpanel","url":"https://127.0.0.1:1"},"username":"bob","password":"pw-canary"}`, "ok", "unknown", ""},
		{"kpasswd without the directory", `{"id":"e","type":"expiry","backend":{"name":"kpasswd","url":"kpasswd://127.0.0.1:1?realm=EXAMPLE.ORG"},"username":"bob","password":"pw-canary"}`, "ok", "unknown", ""},
		{"the user name from the incoming server", `{"id":"e","type":"expiry","backend":{"name":"ldap","url":"ldaps://` + closed + `/uid=%n,dc=example,dc=org"},` +
			`"incoming":{"protocol":"imap","host":"127.0.0.1","port":993,"socketType":3,"authMethod":3,"username":"bob"},"password":"pw-canary"}`, "error", "backend_unreachable", ""},
		{"unreachable", `{"id":"e","type":"expiry","backend":{"name":"ad","url":"ldaps://` + closed + `"},"username":"bob@example.org","password":"pw-canary"}`, "error", "backend_unreachable", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs, err := serveAll(t, frame(tc.req))
			if err != nil || len(msgs) != 1 {
				t.Fatalf("Serve() = %v, %d messages", err, len(msgs))
			}
			m := msgs[0]
			got := m.Get("code").String()
			if tc.status == "ok" {
				got = m.Get("result.state").String()
			}
			if m.Get("status").String() != tc.status || got != tc.code || m.Get("field").String() != tc.field {
				t.Fatalf("reply = %s", m.Raw)
			}
			if tc.status == "ok" && (m.Get("result.source").String() != provider.SourceNone || m.Get("result.detail").String() == "") {
				t.Errorf("reply = %s, want source none and a detail", m.Raw)
			}
			if strings.Contains(m.Raw, "pw-canary") {
				t.Errorf("the reply carries the password: %s", m.Raw)
			}
		})
	}
}

func TestExpiryResultOf(t *testing.T) {
	at := time.Date(2027, 1, 12, 10, 30, 0, 0, time.FixedZone("CET", 3600))
	last := time.Date(2026, 10, 14, 9, 30, 0, 0, time.UTC)
	r := expiryResultOf(provider.Expiry{State: provider.Expires, At: at, LastChanged: last, Source: "msDS-UserPasswordExpiryTimeComputed", Grace: -1})
	if r.ExpiresAt != "2027-01-12T09:30:00Z" || r.LastChanged != "2026-10-14T09:30:00Z" || r.GraceLogins != nil {
		t.Errorf("expiryResultOf = %+v", r)
	}
	r = expiryResultOf(provider.Expiry{State: provider.Expired, Source: "ppolicy graceAuthNsRemaining", Grace: 2})
	if r.ExpiresAt != "" || r.GraceLogins == nil || *r.GraceLogins != 2 {
		t.Errorf("expiryResultOf = %+v", r)
	}
}
