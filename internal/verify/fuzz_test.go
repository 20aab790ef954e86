package verify_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/credsync/credsync/internal/verify"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/.

var outcomes = map[verify.Outcome]bool{
	verify.OK: true, verify.AuthFailed: true, verify.TLSError: true, verify.NetworkError: true,
	verify.Temporary: true, verify.ProtocolError: true, verify.RefusedPlaintext: true, verify.PasswordExpired: true,
}

func checkDetail(t *testing.T, detail string) {
	t.Helper()
	if strings.ContainsAny(detail, "\r\n\x00") {
		t.Fatalf("detail %q spans lines or carries control characters", detail)
	}
}

func FuzzPOP3Reply(f *testing.F) {
	f.Add("+OK POP3 ready")
	f.Add("-ERR [AUTH] Authentication failed")
	f.Fuzz(func(t *testing.T, line string) {
		ok, code, text, err := verify.ParsePOP3Reply(line)
		if err != nil {
			return
		}
		status, _, _ := strings.Cut(line, " ")
		if ok != strings.EqualFold(status, "+OK") || !ok && !strings.EqualFold(status, "-ERR") {
			t.Fatalf("ParsePOP3Reply(%q) ok = %v", line, ok)
		}
		if strings.Contains(code, "]") {
			t.Fatalf("code %q contains ]", code)
		}
		if !strings.Contains(line, text) {
			t.Fatalf("text %q is not part of %q", text, line)
		}
		if !ok {
			for _, cmd := range []string{"", "USER", "PASS", "STLS", "CAPA"} {
				for _, plain := range []bool{false, true} {
					o, detail, err := verify.ClassifyPOP3(cmd, line, plain)
					if err != nil || !outcomes[o] || o == verify.OK {
						t.Fatalf("ClassifyPOP3(%q, %q) = %q, %v", cmd, line, o, err)
					}
					if utf8.ValidString(line) {
						checkDetail(t, detail)
					}
					if temp := map[string]bool{"IN-USE": true, "SYS/TEMP": true, "LOGIN-DELAY": true}[strings.ToUpper(code)]; temp && o != verify.Temporary {
						t.Fatalf("ClassifyPOP3(%q, %q) = %q, want temporary", cmd, line, o)
					}
				}
			}
		}
	})
}

func FuzzClassifyIMAP(f *testing.F) {
	f.Add("NO", "AUTHENTICATIONFAILED", "Authentication failed", uint8(verify.StageAuth), false)
	f.Fuzz(func(t *testing.T, typ, code, text string, st uint8, plain bool) {
		stage := int(st % 3)
		o, detail := verify.ClassifyIMAP(typ, code, text, stage, plain)
		if !outcomes[o] || o == verify.OK {
			t.Fatalf("outcome %q", o)
		}
		checkDetail(t, detail)
		var want verify.Outcome
		switch {
		case stage == verify.StageTLS:
			want = verify.TLSError
		case code == "PRIVACYREQUIRED" && plain:
			want = verify.RefusedPlaintext
		case code == "PRIVACYREQUIRED":
			want = verify.TLSError
		case code == "UNAVAILABLE" || code == "INUSE":
			want = verify.Temporary
		case code == "EXPIRED":
			want = verify.PasswordExpired
		case typ == "NO" && stage == verify.StageAuth && verify.ExpiredWording(text):
			want = verify.PasswordExpired
		case typ == "NO" && stage == verify.StageAuth:
			want = verify.AuthFailed
		default:
			want = verify.ProtocolError
		}
		if o != want {
			t.Fatalf("ClassifyIMAP(%q, %q, %q, %d, %v) = %q, want %q", typ, code, text, stage, plain, o, want)
		}
	})
}

func FuzzClassifySMTP(f *testing.F) {
	f.Add(535, 5, 7, 8, "Authentication failed", uint8(verify.StageAuth), false)
	f.Fuzz(func(t *testing.T, code, e1, e2, e3 int, msg string, st uint8, plain bool) {
		stage := int(st % 3)
		o, detail := verify.ClassifySMTP(code, [3]int{e1, e2, e3}, msg, stage, plain)
		if !outcomes[o] || o == verify.OK {
			t.Fatalf("outcome %q", o)
		}
		checkDetail(t, detail)
		switch {
		case stage == verify.StageTLS && o != verify.TLSError:
			t.Fatalf("error during STARTTLS classified %q", o)
		case stage == verify.StageTLS:
		case e2 == 7 && e3 == 12 && code >= 400 && code < 600 && o != verify.PasswordExpired:
			t.Fatalf("%d %d.%d.%d classified %q", code, e1, e2, e3, o)
		case (code == 535 || code == 534 || code == 432 || code == 454) && verify.ExpiredWording(msg) && o != verify.PasswordExpired:
			t.Fatalf("%d %q classified %q", code, msg, o)
		case o == verify.PasswordExpired:
		case code == 535 && o != verify.AuthFailed:
			t.Fatalf("535 classified %q", o)
		case code >= 400 && code < 500 && o != verify.Temporary:
			t.Fatalf("%d classified %q", code, o)
		case (code == 523 || code == 530 || code == 538) && plain && o != verify.RefusedPlaintext:
			t.Fatalf("%d without TLS classified %q", code, o)
		}
	})
}

func FuzzScrub(f *testing.F) {
	f.Add("NO [AUTHENTICATIONFAILED] wrong password hunter2", "hunter2")
	f.Fuzz(func(t *testing.T, detail, password string) {
		if password == "" {
			return
		}
		got := verify.Scrub(detail, password)
		if tooShort(password) {
			// Too short to mask: none of the text is kept, nothing masked.
			if detail == "" && got == "" {
				return
			}
			if got != "the server refused the login (server text withheld: the password is too short to mask in it)" {
				t.Fatalf("Scrub(%q, %q) = %q, want the server's text withheld", detail, password, got)
			}
			return
		}
		if f, ok := leak(got, password); ok {
			t.Fatalf("Scrub(%q, %q) = %q still contains the password (as %q)", detail, password, got, f)
		}
	})
}
