package endpoint

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	cases := []struct {
		url  string
		want Endpoint
	}{
		{"imaps://alice@mail.example.org", Endpoint{Protocol: IMAP, Host: "mail.example.org", Port: 993, Security: TLS, Username: "alice"}},
		{"imap://alice%40example.org@127.0.0.1:1143", Endpoint{Protocol: IMAP, Host: "127.0.0.1", Port: 1143, Security: STARTTLS, Username: "alice@example.org"}},
		{"imap+insecure://a@h", Endpoint{Protocol: IMAP, Host: "h", Port: 143, Security: Plain, Username: "a"}},
		{"pop3s://a@h", Endpoint{Protocol: POP3, Host: "h", Port: 995, Security: TLS, Username: "a"}},
		{"pop3://a@h:1110", Endpoint{Protocol: POP3, Host: "h", Port: 1110, Security: STARTTLS, Username: "a"}},
		{"pop3+insecure://a@h", Endpoint{Protocol: POP3, Host: "h", Port: 110, Security: Plain, Username: "a"}},
		{"smtps://a@h", Endpoint{Protocol: SMTP, Host: "h", Port: 465, Security: TLS, Username: "a"}},
		{"smtp://DOMAIN%5Calice@h", Endpoint{Protocol: SMTP, Host: "h", Port: 587, Security: STARTTLS, Username: `DOMAIN\alice`}},
		{"SMTP+INSECURE://a@h:25", Endpoint{Protocol: SMTP, Host: "h", Port: 25, Security: Plain, Username: "a"}},
		{"imaps://a@[::1]:993", Endpoint{Protocol: IMAP, Host: "::1", Port: 993, Security: TLS, Username: "a"}},
	}
	for _, c := range cases {
		got, err := Parse(c.url)
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", c.url, got, err, c.want)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for url, why := range map[string]string{
		"imaps://alice:secret@h":                "password",
		"https://a@h":                           "scheme",
		"imaps://h":                             "user",
		"imaps://a@h:0":                         "port",
		"imaps://a@h:99999":                     "port",
		"imaps://a@h/INBOX":                     "path",
		"imaps://a@h?x=1":                       "query",
		"imaps://a%0D%0ALOGOUT@h":               "CR/LF",
		"imaps://a%00@h":                        "NUL",
		"imaps://a@bad%20host":                  "host",
		"imaps://a@" + strings.Repeat("x", 300): "host",
	} {
		if ep, err := Parse(url); err == nil {
			t.Errorf("Parse(%q) = %+v; want an error about the %s", url, ep, why)
		}
	}
}

func TestStringHasNoSecretAndRoundTrips(t *testing.T) {
	e := Endpoint{Protocol: SMTP, Host: "::1", Port: 587, Security: STARTTLS, Username: "a@b"}
	if s := e.String(); s != "smtp://a%40b@[::1]:587" {
		t.Fatalf("String() = %q", s)
	}
	back, err := Parse(e.String())
	if err != nil || back != e {
		t.Fatalf("Parse(String()) = %+v, %v", back, err)
	}
}

func TestUsesPassword(t *testing.T) {
	for m, want := range map[AuthMethod]bool{AuthUnset: true, AuthOld: true, AuthPasswordCleartext: true, AuthAnything: true,
		AuthNone: false, AuthPasswordEncrypted: false, AuthGSSAPI: false, AuthNTLM: false, AuthExternal: false, AuthSecure: false, AuthOAuth2: false} {
		if m.UsesPassword() != want {
			t.Errorf("AuthMethod(%d).UsesPassword() = %v", m, !want)
		}
	}
}

func TestValidateFingerprint(t *testing.T) {
	e := Endpoint{Protocol: IMAP, Host: "h", Port: 1, Username: "u", CertSHA256: strings.Repeat("ab", 32)}
	if err := e.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	e.CertSHA256 = strings.Repeat("zz", 32)
	if e.Validate() == nil {
		t.Fatal("Validate() accepted a non-hex fingerprint")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"imaps://alice@h:993", "smtp://a%40b@[::1]:587", "pop3+insecure://u@h", "imap://a%0D%0A@h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s)
		if err != nil {
			return
		}
		if e.Validate() != nil || strings.ContainsAny(e.Username, "\r\n\x00") {
			t.Fatalf("Parse(%q) accepted an invalid endpoint %+v", s, e)
		}
		if back, err := Parse(e.String()); err != nil || back != e {
			t.Fatalf("Parse(String()) of %+v = %+v, %v", e, back, err)
		}
	})
}
