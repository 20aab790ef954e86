package provider

import (
	"context"
	"crypto/x509"
	"testing"
	"time"
)

// defaultUsers is a simulator's account table: users, or when the test
// names none, the one account the back-end's tests change.
func defaultUsers(users map[string]string, user, password string) map[string]string {
	if users == nil {
		return map[string]string{user: password}
	}
	return users
}

// closeAtEnd stops a simulator when the test ends.
func closeAtEnd[S interface{ Close() }](t *testing.T, s S) S {
	t.Cleanup(s.Close)
	return s
}

// simChange changes a password once against a simulator trusted through
// roots; the deadline makes a hung exchange fail the test, not stall it.
func simChange(b Backend, roots *x509.CertPool, url, user, current, next string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return b.Change(ctx, Request{Username: user, Current: current, New: next, URL: url, Roots: roots})
}

// failureCase is a row of a back-end's failure table: the simulator's
// options and fault, the current password to send ("" for the right one),
// the kind and rule Change must fail with, and whether the password changed.
type failureCase[O, F any] struct {
	name    string
	opts    O
	fault   F
	current string
	kind    Kind
	rule    string
	changed bool
}
