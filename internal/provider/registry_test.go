package provider

import (
	"context"
	"testing"
)

// The registry this package builds holds real back-ends only: the test
// sandbox's is added from outside (Register), by demo and test builds.
func TestRegistryHasNoSandbox(t *testing.T) {
	if _, ok := Lookup("sandbox"); ok {
		t.Fatal("the provider package registers the sandbox back-end itself")
	}
	for _, info := range All() {
		if info.Name == "sandbox" {
			t.Fatal("All() lists the sandbox back-end")
		}
	}
}

type namedBackend string

func (n namedBackend) Info() Info                          { return Info{Name: string(n)} }
func (namedBackend) Change(context.Context, Request) error { return nil }

func TestRegister(t *testing.T) {
	Register(namedBackend("test-register"))
	defer delete(backends, "test-register")
	if b, ok := Lookup("test-register"); !ok || b != namedBackend("test-register") {
		t.Fatalf("Lookup after Register = %v, %v", b, ok)
	}
	for _, name := range []string{"test-register", "ldap", ""} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%q) did not panic", name)
				}
			}()
			Register(namedBackend(name))
		}()
	}
}
