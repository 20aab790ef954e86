package provider

import (
	"cmp"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	sim "github.com/credsync/credsync/internal/testkit/simulators/poppassd"
)

const (
	ppUser = "mrossi"
	ppOld  = "old-pop-pass"
	ppNew  = "New-Pop-2026!"
)

func ppStart(t *testing.T, opts sim.Options) *sim.Server {
	t.Helper()
	opts.Users = defaultUsers(opts.Users, ppUser, ppOld)
	s, err := sim.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	return closeAtEnd(t, s)
}

func ppURL(s *sim.Server) string {
	if s.CAPool != nil {
		return "poppassds://" + s.Addr
	}
	return "poppassd://" + s.Addr
}

func ppChange(s *sim.Server, url, current, next string) error {
	return simChange(poppassd{}, s.CAPool, url, ppUser, current, next)
}

func TestPoppassdChange(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		s := ppStart(t, sim.Options{TLS: useTLS})
		btKind(t, ppChange(s, ppURL(s), ppOld, ppNew), "", "")
		if s.Password(ppUser) != ppNew {
			t.Fatalf("TLS %v: the server has %q", useTLS, s.Password(ppUser))
		}
	}
}

func TestPoppassdFailures(t *testing.T) {
	cases := []failureCase[sim.Options, sim.Fault]{
		{name: "wrong current password", current: "Sbagliata-9", kind: WrongCurrent},
		{name: "PAM refuses the new one", opts: sim.Options{MinLength: 20}, kind: Rejected, rule: "too_short"},
		{name: "lost after newpass, applied", fault: sim.DropAfterChange, kind: OutcomeUnknown, changed: true},
		{name: "lost after newpass, not applied", fault: sim.DropBeforeChange, kind: OutcomeUnknown},
		{name: "answer without a code", fault: sim.Garbage, kind: OutcomeUnknown, changed: true},
		{name: "not a poppassd server", fault: sim.NotPoppassd, kind: Unreachable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := ppStart(t, c.opts)
			s.SetFault(c.fault)
			current := cmp.Or(c.current, ppOld)
			btKind(t, ppChange(s, ppURL(s), current, ppNew), c.kind, c.rule, current, ppNew)
			if changed := s.Password(ppUser) == ppNew; changed != c.changed {
				t.Fatalf("changed = %v; want %v", changed, c.changed)
			}
		})
	}
}

func TestPoppassdUnreachable(t *testing.T) {
	err := poppassd{}.Change(context.Background(), Request{Username: ppUser, Current: ppOld, New: ppNew, URL: "poppassd://" + btDeadAddr(t)})
	btKind(t, err, Unreachable, "", ppOld, ppNew)
	// TLS against an untrusted certificate: nothing is sent.
	s := ppStart(t, sim.Options{TLS: true})
	err = poppassd{}.Change(context.Background(), Request{Username: ppUser, Current: ppOld, New: ppNew, URL: ppURL(s)})
	btKind(t, err, Unreachable, "", ppOld, ppNew)
	if s.NewPass() != 0 || s.Password(ppUser) != ppOld {
		t.Fatal("a password went to an untrusted server")
	}
}

// Nothing leaves the machine before the rules and the address are checked.
func TestPoppassdRefusesBeforeSending(t *testing.T) {
	s := ppStart(t, sim.Options{})
	for next, rule := range map[string]string{
		strings.Repeat("a", 124): "too_long", // the server would keep only part of it
		"with space":             "bad_character",
		"tab\there":              "bad_character",
		ppOld:                    "same_as_current",
	} {
		btKind(t, ppChange(s, ppURL(s), ppOld, next), Rejected, rule, ppOld, next)
	}
	for _, url := range []string{
		"poppassd://192.0.2.10:106", // cleartext to another host: never dialled
		"poppassd://mail.example.org",
		"imap://127.0.0.1:106",
		"poppassd://127.0.0.1:106/path",
		"poppassd://127.0.0.1:0",
		"",
	} {
		start := time.Now()
		btKind(t, ppChange(s, url, ppOld, ppNew), Unreachable, "", ppOld, ppNew)
		if time.Since(start) > time.Second {
			t.Fatalf("%q took %v: it dialled", url, time.Since(start))
		}
	}
	if n := s.Sessions(); n != 0 {
		t.Fatalf("%d connections", n)
	}
	if t2, err := poppassdURL("poppassds://mail.example.org"); err != nil || t2.addr != "mail.example.org:106" || !t2.tls {
		t.Fatalf("poppassdURL(poppassds) = %+v, %v", t2, err)
	}
	if t2, err := poppassdURL("poppassd://[::1]:1106"); err != nil || t2.addr != "[::1]:1106" {
		t.Fatalf("poppassdURL(::1) = %+v, %v", t2, err)
	}
}

// The server's 128-byte limit is why 123 is the maximum: a 123-byte
// password round-trips exactly.
func TestPoppassdLongestPassword(t *testing.T) {
	s := ppStart(t, sim.Options{})
	long := "L0ng!" + strings.Repeat("x", 118)
	btKind(t, ppChange(s, ppURL(s), ppOld, long), "", "")
	if s.Password(ppUser) != long {
		t.Fatalf("stored %d bytes; sent %d", len(s.Password(ppUser)), len(long))
	}
}

// A transcript against a scripted server: commands, continuation lines.
func TestPoppassdTranscript(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var seen []string
		buf := make([]byte, 512)
		say := func(s string) { c.Write([]byte(s)) }
		read := func() {
			n, _ := c.Read(buf)
			seen = append(seen, strings.TrimSpace(string(buf[:n])))
		}
		say("200-poppassd v1.2\r\n200 hello, who are you?\r\n")
		read()
		say("300 please send your password now\r\n")
		read()
		say("200 My, that was tasty\r\n")
		read()
		say("200 Happy to oblige\r\n")
		read()
		say("200 Bye-bye\r\n")
		got <- strings.Join(seen, "|")
	}()
	err = poppassd{}.Change(context.Background(), Request{Username: ppUser, Current: ppOld, New: ppNew, URL: "poppassd://" + ln.Addr().String()})
	btKind(t, err, "", "")
	if want := "user mrossi|pass old-pop-pass|newpass New-Pop-2026!|quit"; <-got != want {
		t.Fatalf("transcript differs; want %s", want)
	}
}

func TestPoppassdParse(t *testing.T) {
	type result struct {
		code     int
		text     string
		more, ok bool
	}
	for line, want := range map[string]result{
		"200 Password changed": {200, "Password changed", false, true},
		"500":                  {500, "", false, true},
		"200-more":             {200, "more", true, true},
		"2000 x":               {},
		"20 x":                 {},
		"600 x":                {},
		"Password changed":     {},
		"":                     {},
	} {
		var got result
		got.code, got.text, got.more, got.ok = poppassdParse(line)
		if got != want {
			t.Errorf("poppassdParse(%q) = %+v; want %+v", line, got, want)
		}
	}
}

// FuzzPoppassdReply: any reply line is read without panicking; codes are
// three digits, 100-599.
func FuzzPoppassdReply(f *testing.F) {
	for _, s := range []string{"200 poppassd", "500 Old password is incorrect", "200-more", "500 PAM error: BAD PASSWORD: The password is shorter than 8 characters", "* OK IMAP"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		code, text, _, ok := poppassdParse(line)
		if ok && (code < 100 || code > 599 || len(text) > len(line)) {
			t.Fatalf("poppassdParse(%q) = %d %q", line, code, text)
		}
		if !ok && code != 0 {
			t.Fatalf("code %d without ok", code)
		}
		if ok && code/100 != 2 {
			e := refusal(text, "S3cret-Old", "S3cret-New")
			if strings.Contains(e.Error(), "S3cret-Old") || strings.Contains(e.Error(), "S3cret-New") {
				t.Fatalf("the error carries a password: %v", e)
			}
		}
	})
}
