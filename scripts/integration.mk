# Integration tests against a real mail stack on 127.0.0.1 (Dovecot, Postfix,
# OpenLDAP, Roundcube), as root on Debian 12: see scripts/mailstack and
# internal/integration. Included from the Makefile.
#
# The stack is always stopped afterwards (also on Ctrl-C), and the target
# fails if the start, the tests or the stop failed. MAILSTACK_DIR moves its state directory.

GO ?= go

.PHONY: test-integration
test-integration:
	@status=1; \
	trap 'scripts/mailstack stop || [ $$status -ne 0 ] || status=1; exit $$status' EXIT; \
	trap 'exit' INT TERM; \
	scripts/mailstack start --with-roundcube --with-samba || exit; \
	start=$$(date +%s%N); \
	$(GO) test -tags integration -count=1 ./internal/integration/; status=$$?; \
	ms=$$(( ($$(date +%s%N) - start) / 1000000 )); \
	printf 'mailstack: tests   %d.%d s\n' $$((ms / 1000)) $$((ms % 1000 / 100))

# Real Thunderbird ESR 153 and 140 against the real mail stack
# (internal/e2e/stack_test.go, tags e2e and integration): a password change
# through the popup with the ldap back-end, then Thunderbird's own IMAP and
# SMTP logins to Dovecot and Postfix. Starts the stack (no Roundcube) and
# always stops it; CREDSYNC_E2E_STACK=required makes a stack that is not up
# fail the tests instead of skipping them.
.PHONY: test-e2e-stack
test-e2e-stack: thunderbird xpi
	@status=1; \
	trap 'scripts/mailstack stop || [ $$status -ne 0 ] || status=1; exit $$status' EXIT; \
	trap 'exit' INT TERM; \
	scripts/mailstack start || exit; \
	start=$$(date +%s%N); \
	CREDSYNC_E2E_STACK=required CREDSYNC_TB140="$$(cat $(BIN)/thunderbird-140.path)" CREDSYNC_EXTENSION=$(CURDIR)/$(BIN)/credsync.xpi \
		$(GO) test -tags 'e2e integration' -count=1 -timeout 10m -run Stack ./internal/e2e/; status=$$?; \
	ms=$$(( ($$(date +%s%N) - start) / 1000000 )); \
	printf 'mailstack: e2e tests %d.%d s\n' $$((ms / 1000)) $$((ms % 1000 / 100))
