package verify_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/verify"
)

// Servers that echo the password: in any form a reader (or a UI that
// normalises whitespace, joins lines, or escapes control characters) could
// recover it, the password must not reach a Result (issue 19, item 3).

// echoMarker is server text around the echo: for a password too short to
// mask, none of the server's text may appear.
const echoMarker = "EchoMarker"

// ignorable are the characters a reader or a UI may blank, collapse or drop.
func ignorable(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError
}

// collapse blanks control characters and collapses whitespace runs.
func collapse(s string) string {
	return strings.Join(strings.FieldsFunc(s, ignorable), " ")
}

// strip drops every ignorable character: lines joined, whitespace gone.
func strip(s string) string {
	var b strings.Builder
	for _, r := range s {
		if !ignorable(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// textForms are the normalised forms of a detail a reader may see: as is,
// whitespace collapsed, lines joined (the "; " between joined lines
// dropped) and all whitespace gone.
func textForms(s string) []string {
	return []string{s, collapse(s), strip(s), strip(strings.ReplaceAll(s, "; ", ""))}
}

// passwordForms are the forms of a password that give it away.
func passwordForms(pw string) []string {
	q := strconv.Quote(pw)
	q = q[1 : len(q)-1]
	var out []string
	for _, f := range []string{pw, collapse(pw), strip(pw), q, strip(q)} {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// tooShort: under 6 characters once whitespace and control characters are
// gone, the password cannot be masked without damaging other words.
func tooShort(pw string) bool { return utf8.RuneCountInString(strip(pw)) < 6 }

// leak reports the first form of pw found in a form of text.
func leak(text, pw string) (form string, found bool) {
	for _, tf := range textForms(text) {
		for _, pf := range passwordForms(pw) {
			if strings.Contains(tf, pf) {
				return pf, true
			}
		}
	}
	return "", false
}

// checkNoEcho fails when res gives pw away: a form of it in Detail or in
// Err's text; for a password too short to mask, any server text or mask.
func checkNoEcho(t *testing.T, res verify.Result, pw string) {
	t.Helper()
	texts := []string{res.Detail}
	if res.Err != nil {
		texts = append(texts, res.Err.Error())
	}
	for _, s := range texts {
		if pw == "" {
			continue
		}
		if tooShort(pw) {
			if strings.Contains(s, echoMarker) || strings.Contains(s, "***") {
				t.Fatalf("password %q too short to mask, yet the server's text or a mask is shown: %q", pw, s)
			}
			continue
		}
		if f, ok := leak(s, pw); ok {
			t.Fatalf("password %q leaks as %q in %q", pw, f, s)
		}
	}
	if strings.ContainsAny(res.Detail, "\r\n\x00") {
		t.Fatalf("detail %q spans lines", res.Detail)
	}
}

// echoFake is a fake server of proto whose answer to the credentials
// carries echo (built from the password it received).
func echoFake(proto endpoint.Protocol, echo func(pass string) string) func(*fakeConn) {
	switch proto {
	case endpoint.IMAP:
		return imapFake{login: func(_, pass string) string {
			return "NO [AUTHENTICATIONFAILED] " + echoMarker + " " + echo(pass) + " " + echoMarker
		}}.handle
	case endpoint.POP3:
		return pop3Fake{capa: pop3Capa, pass: func(_, pass string) string {
			return "-ERR [AUTH] " + echoMarker + " " + echo(pass) + " " + echoMarker
		}}.handle
	default:
		return smtpFake{auth: func(_, pass string) string {
			return "535 5.7.8 " + echoMarker + " " + echo(pass) + " " + echoMarker
		}}.handle
	}
}

var echoProtos = []endpoint.Protocol{endpoint.IMAP, endpoint.POP3, endpoint.SMTP}

func echoLogin(t *testing.T, proto endpoint.Protocol, fake func(*fakeConn), pw string) verify.Result {
	t.Helper()
	srv := startFake(t, nil, false, fake)
	ep := mkEndpoint(t, proto, srv.addr, endpoint.Plain, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return verify.Login(ctx, ep, pw, verify.Trust{})
}

// A password with a tab came back with the tab shown as a space: control
// characters were blanked before the scrub.
func TestEchoedTabPassword(t *testing.T) {
	const pw = "Tab\tSecret-42"
	for _, proto := range echoProtos {
		t.Run(string(proto), func(t *testing.T) {
			res := echoLogin(t, proto, echoFake(proto, func(p string) string { return "wrong password " + p }), pw)
			wantOutcome(t, res, verify.AuthFailed)
			checkNoEcho(t, res, pw)
			if !strings.Contains(res.Detail, "wrong password ***") {
				t.Fatalf("Detail = %q, want the server's text with the password masked", res.Detail)
			}
		})
	}
}

// The server normalises the password before echoing it (tab → space,
// spaces collapsed, quoted with escapes).
func TestEchoedNormalisedPassword(t *testing.T) {
	const pw = "Sp  ace\tand\x01ctl-77"
	for name, echo := range map[string]func(string) string{
		"collapsed": collapse,
		"stripped":  strip,
		"quoted":    strconv.Quote,
	} {
		for _, proto := range echoProtos {
			t.Run(name+"/"+string(proto), func(t *testing.T) {
				res := echoLogin(t, proto, echoFake(proto, echo), pw)
				wantOutcome(t, res, verify.AuthFailed)
				checkNoEcho(t, res, pw)
			})
		}
	}
}

// An SMTP reply split over several lines left the halves on either side of
// the "; " that joins them.
func TestEchoedPasswordSplitOverSMTPLines(t *testing.T) {
	const pw = "Split-Secret-99"
	for cut := 1; cut < len(pw); cut++ {
		fake := smtpFake{auth: func(_, pass string) string {
			return "535-5.7.8 " + echoMarker + " wrong password " + pass[:cut] + "\r\n535 5.7.8 " + pass[cut:] + " for you"
		}}.handle
		res := echoLogin(t, endpoint.SMTP, fake, pw)
		wantOutcome(t, res, verify.AuthFailed)
		checkNoEcho(t, res, pw)
		if !strings.Contains(res.Detail, "wrong password *** for you") {
			t.Fatalf("cut %d: Detail = %q, want the server's text with the password masked", cut, res.Detail)
		}
	}
}

// A one-character password was masked inside the server's and our own
// words ("conte***t deadline e***ceeded"), which gives it away: too short
// to mask, the server's text is withheld and nothing is masked.
func TestShortPasswordWithholdsServerText(t *testing.T) {
	for _, pw := range []string{"x", "e", "pw", "a b", "\tab\t", "12345"} {
		for _, proto := range echoProtos {
			t.Run(strconv.Quote(pw)+"/"+string(proto), func(t *testing.T) {
				res := echoLogin(t, proto, echoFake(proto, func(p string) string { return "wrong password " + p }), pw)
				wantOutcome(t, res, verify.AuthFailed)
				checkNoEcho(t, res, pw)
				if !strings.Contains(res.Detail, "(server text withheld") {
					t.Fatalf("Detail = %q, want it to say the server's text is withheld", res.Detail)
				}
			})
		}
	}
}

// Our own words are not masked either: the timeout's text stays whole.
func TestShortPasswordTimeoutDetail(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // never answer
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range held {
			c.Close()
		}
	})
	ep := mkEndpoint(t, endpoint.IMAP, ln.Addr().String(), endpoint.Plain, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res := verify.Login(ctx, ep, "x", verify.Trust{})
	wantOutcome(t, res, verify.NetworkError)
	if strings.Contains(res.Detail, "***") || res.Err != nil && strings.Contains(res.Err.Error(), "***") {
		t.Fatalf("a one-character password was masked in our own words: detail %q, err %v", res.Detail, res.Err)
	}
	if !strings.Contains(res.Detail, "deadline") && !strings.Contains(res.Detail, "timed out") {
		t.Fatalf("Detail = %q, want it to say the deadline passed", res.Detail)
	}
}

// FuzzEchoNeverLeaks: a password with control characters and spaces, echoed
// by IMAP, POP3 and SMTP servers split at a random place (a line break,
// whitespace or a control character), normalised or escaped, never appears
// in any form in a Result; a password too short to mask brings no server
// text at all.
func FuzzEchoNeverLeaks(f *testing.F) {
	f.Add("Tab\tSecret-42", uint8(3), uint8(0), uint8(0))
	f.Add("Split-Secret-99", uint8(7), uint8(1), uint8(0))
	f.Add("x", uint8(0), uint8(2), uint8(0))
	f.Add(" sp  aced\x01pass ", uint8(4), uint8(3), uint8(1))
	f.Add("quo\"te\\d\tpw", uint8(2), uint8(5), uint8(2))
	f.Add("***abc***", uint8(3), uint8(0), uint8(0))
	f.Add("ab\u200bcdefgh", uint8(2), uint8(8), uint8(0))
	f.Fuzz(func(t *testing.T, pw string, cut, sep, mode uint8) {
		if len(pw) > 64 {
			return
		}
		seps := []string{"\r\n", " ", "\t", "  ", "\x01", "\x7f", "\v", "\f", "\u00a0", "\u200b", "\r"}
		s := seps[int(sep)%len(seps)]
		echo := func(p string) string {
			switch mode % 4 {
			case 1:
				p = collapse(p)
			case 2:
				p = strconv.Quote(p)
			case 3:
				p = strip(p)
			}
			k := int(cut) % (len(p) + 1)
			for k > 0 && k < len(p) && !utf8.RuneStart(p[k]) {
				k--
			}
			return p[:k] + "\x00" + p[k:] // NUL: where to split
		}
		split := func(proto endpoint.Protocol, p string) string {
			e := echo(p)
			if s == "\r\n" && proto == endpoint.SMTP {
				// A multi-line reply: the continuation carries the codes.
				return strings.Replace(e, "\x00", "\r\n535-5.7.8 ", 1)
			}
			return strings.Replace(e, "\x00", s, 1)
		}
		for _, proto := range echoProtos {
			var fake func(*fakeConn)
			switch proto {
			case endpoint.IMAP:
				fake = imapFake{login: func(_, p string) string {
					return "NO [AUTHENTICATIONFAILED] " + echoMarker + " " + split(proto, p) + " " + echoMarker
				}}.handle
			case endpoint.POP3:
				fake = pop3Fake{capa: pop3Capa, pass: func(_, p string) string {
					return "-ERR [AUTH] " + echoMarker + " " + split(proto, p) + " " + echoMarker
				}}.handle
			default:
				fake = smtpFake{auth: func(_, p string) string {
					return "535-5.7.8 " + echoMarker + " " + split(proto, p) + "\r\n535 5.7.8 " + echoMarker
				}}.handle
			}
			srv := startFake(t, nil, false, fake)
			ep := mkEndpoint(t, proto, srv.addr, endpoint.Plain, "alice")
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			res := verify.Login(ctx, ep, pw, verify.Trust{})
			cancel()
			checkNoEcho(t, res, pw)
		}
	})
}
