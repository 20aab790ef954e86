package flow

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
)

// newSalt is a fresh salt for one transaction's fingerprints, so that a
// fingerprint means nothing outside it (PROTOCOL.md, "accounts").
func newSalt() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// fingerprint is the extension's fingerprint of a saved password: hex
// SHA-256 of salt + ":" + password.
func fingerprint(salt, password string) string {
	sum := sha256.Sum256([]byte(salt + ":" + password))
	return hex.EncodeToString(sum[:])
}
