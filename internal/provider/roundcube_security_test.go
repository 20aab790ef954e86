package provider

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// FuzzRoundcubePage reads an arbitrary page as the Roundcube back-end
// reads its pages: the message it shows and its forms. Nothing panics; a
// message is one JSON-decoded string; a form's values are the hidden
// fields only, so a page cannot make credsync send anything of its own
// under the password fields' names without the driver setting them.
func FuzzRoundcubePage(f *testing.F) {
	// Seed corpus: testdata/fuzz/FuzzRoundcubePage.
	f.Fuzz(func(t *testing.T, page []byte) {
		text, typ, found := rcMessage(page)
		if !found && (text != "" || typ != "") {
			t.Fatalf("rcMessage = %q, %q without a message", text, typ)
		}
		if found && strings.Trim(typ, "abcdefghijklmnopqrstuvwxyz") != "" {
			t.Fatalf("message type %q", typ)
		}
		secrets := []string{"Old-S3cret!", "New-S3cret!"}
		resp := &http.Response{Status: "401 Unauthorized", StatusCode: http.StatusUnauthorized}
		for _, e := range []error{rcVerdict(page, secrets), rcLoginRefused(resp, page, secrets)} {
			var pe *Error
			if errors.As(e, &pe) && (strings.Contains(pe.Error()+pe.Words, "S3cret!") || len([]rune(pe.Words)) > maxWords) {
				t.Fatalf("an error carries a password or too many words: %v, %q", pe, pe.Words)
			}
		}
		for _, match := range []func(htmlForm) bool{
			func(f htmlForm) bool { return f.value("_task") == "login" && f.has("_user") },
			func(f htmlForm) bool { return f.id == "password-form" || f.has("_newpasswd") },
			func(htmlForm) bool { return true },
		} {
			form, ok := findForm(page, match)
			if !ok {
				continue
			}
			for name := range form.values() {
				in := false
				for _, i := range form.inputs {
					in = in || i.name == name && strings.EqualFold(i.typ, "hidden")
				}
				if !in {
					t.Fatalf("value %q is no hidden input of %+v", name, form)
				}
			}
		}
	})
}
