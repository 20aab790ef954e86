package provider

import (
	"strings"
	"testing"

	"github.com/jcmturner/gokrb5/v8/types"
)

// FuzzKpasswdReply decodes an arbitrary kpasswd answer (RFC 3244), as one
// from a hostile network could be: a KRB-ERROR needs no key. Nothing
// panics, and the error a refusal becomes never quotes the passwords.
func FuzzKpasswdReply(f *testing.F) {
	// Seed corpus: testdata/fuzz/FuzzKpasswdReply.
	secrets := []string{"Old-Secret-1", "New-Secret-2"}
	f.Fuzz(func(t *testing.T, b []byte) {
		var key types.EncryptionKey
		r, err := parseKpasswdReply(b, key, key)
		if err != nil {
			return
		}
		if err := kpasswdResult(r, "bob@EXAMPLE.ORG", secrets); err != nil {
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("the error quotes a password: %v", err)
				}
			}
		}
	})
}
