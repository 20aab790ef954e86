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
	scripts/mailstack start --with-roundcube || exit; \
	start=$$(date +%s%N); \
	$(GO) test -tags integration -count=1 ./internal/integration/; status=$$?; \
	ms=$$(( ($$(date +%s%N) - start) / 1000000 )); \
	printf 'mailstack: tests   %d.%d s\n' $$((ms / 1000)) $$((ms % 1000 / 100))
