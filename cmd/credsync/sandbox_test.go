package main

// The tests change passwords at the sandbox, whatever the build tags: the
// test binary registers its back-end (once, also under -tags sandbox).
import _ "github.com/credsync/credsync/internal/testkit/sandbox/backend"
