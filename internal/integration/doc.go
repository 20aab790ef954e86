// Package integration tests credsync against real mail servers: Dovecot
// (IMAP, POP3), Postfix (submission), OpenLDAP and Roundcube, as
// scripts/mailstack runs them on 127.0.0.1. Its tests carry the integration
// build tag:
//
//	scripts/mailstack start --with-roundcube
//	go test -tags integration -count=1 ./internal/integration/
//	scripts/mailstack stop
//
// or `make test-integration`, which does all three. The tests read the
// stack's ports, users and CA from $MAILSTACK_DIR/env (default
// /tmp/credsync-mailstack/env) and skip, saying so, when the stack is not
// running; the Roundcube tests skip when it was started without
// --with-roundcube. Every test restores the passwords it changes.
package integration
