package redact

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestCleanMasksEveryForm(t *testing.T) {
	const pw = "Tab\tSecret-42"
	oneLine := func(s string) string { return strings.Join(strings.FieldsFunc(s, ignorable), " ") }
	for _, c := range []struct{ text, want string }{
		{"wrong " + pw + " here", "wrong *** here"},
		{"wrong Tab Secret-42 here", "wrong *** here"},
		{"wrong TabSecret-42 here", "wrong *** here"},
		{"wrong Tab\r\nSecret-42 here", "wrong *** here"},
		{"wrong Tab\u00a0Secret\u200b-42 here", "wrong *** here"},
		{`wrong "Tab\tSecret-42" here`, `wrong "***" here`},
		{"wrong " + base64.StdEncoding.EncodeToString([]byte(pw)) + " here", "wrong *** here"},
		{"nothing to see", "nothing to see"},
	} {
		if got := New(pw).Clean(c.text, oneLine); got != c.want {
			t.Errorf("Clean(%q) = %q, want %q", c.text, got, c.want)
		}
	}
}

func TestCleanWithholds(t *testing.T) {
	// Masking would recreate the password: nothing of the text is kept.
	if got := New("xy***z").Clean("xyxy***zz", nil); got != Withheld {
		t.Errorf("Clean = %q, want %q", got, Withheld)
	}
	// A password under MinRunes non-blank characters: the text goes.
	for _, pw := range []string{"x", "ab cd", "\t12345\t"} {
		if s := New(pw); !s.Short() || s.Clean("context deadline exceeded", nil) != WithheldShort {
			t.Errorf("New(%q): Short = %v, Clean = %q", pw, s.Short(), s.Clean("context deadline exceeded", nil))
		}
	}
	if New("abc def").Short() || !New("").Empty() {
		t.Error("a 6-character password is short, or an empty one is not empty")
	}
}

// Lines joined with "; " (a detail) still count as joined.
func TestLeaksAcrossJoinedLines(t *testing.T) {
	if !New("Split-Secret").Leaks("wrong Split-; Secret for you") {
		t.Error("the password across a \"; \" join is not found")
	}
}
