package protocol

// The tests change passwords at the sandbox: its back-end, which release
// builds leave out, registers itself.
import _ "github.com/credsync/credsync/internal/testkit/sandbox/backend"
