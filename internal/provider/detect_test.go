package provider

import (
	"errors"
	"net"
	"strings"
	"testing"
)

func TestDetect(t *testing.T) {
	for host, want := range map[string]string{
		"imaps.pec.aruba.it":            "aruba",
		"SMTPS.PEC.ARUBA.IT.":           "aruba",
		"pop3s.pec.aruba.it":            "aruba",
		"imaps.arubapec.it":             "aruba",
		"pec.aruba.it":                  "", // the bare suffix is no server
		"imaps.aruba.it":                "", // Aruba's ordinary mail: another panel
		"mail.example.org":              "",
		"notpec.aruba.it":               "",
		"evil-pec.aruba.it.example.org": "",
		"":                              "",
	} {
		got, ok := Detect(host)
		if got != want || ok != (want != "") {
			t.Errorf("Detect(%q) = %q, %v; want %q", host, got, ok, want)
		}
	}
}

func TestRefusal(t *testing.T) {
	for _, c := range []struct {
		text string
		kind Kind
		rule string
	}{
		{"La nuova password è già stata utilizzata in precedenza", RecentlyUsed, ""},
		{"password recently used", RecentlyUsed, ""},
		{"password can't be changed yet", TooRecent, ""},
		{"La casella è temporaneamente bloccata", Locked, ""},
		{"invalid password: too short", Rejected, "too_short"},
		{"Server error, password not changed", Rejected, ""},
	} {
		e := refusal(c.text)
		if e.Kind != c.kind || e.Rule != c.rule {
			t.Errorf("refusal(%q) = %s %q; want %s %q", c.text, e.Kind, e.Rule, c.kind, c.rule)
		}
	}
}

func TestScrubText(t *testing.T) {
	got := scrubText("bad \x00 password  Hunter2-Secret! for\nuser", "Hunter2-Secret!", "")
	if got != "bad password *** for user" {
		t.Fatalf("scrubText() = %q", got)
	}
	long := scrubText(strings.Repeat("è", 400))
	if len(long) > maxDetail+len("…") || !strings.HasSuffix(long, "…") || !strings.HasPrefix(long, "è") {
		t.Fatalf("scrubText(long) = %d bytes", len(long))
	}
}

// Helpers shared by the back-end tests (prefixed bt: the package's other
// tests have their own).

// btDeadAddr is a loopback address where nothing listens.
func btDeadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// btKind checks err's kind (and rule), and that it carries no secret.
func btKind(t *testing.T, err error, want Kind, rule string, secrets ...string) *Error {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("Change() = %v; want success", err)
		}
		return nil
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Change() = %v (%T); want a *provider.Error of kind %s", err, err, want)
	}
	if e.Kind != want || e.Rule != rule {
		t.Fatalf("Change() = %v, kind %s rule %q; want %s %q", err, e.Kind, e.Rule, want, rule)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Fatalf("the error %q carries a password", err)
		}
	}
	return e
}
