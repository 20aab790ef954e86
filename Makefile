# credsync — see README.md. Targets a newcomer needs: `make demo`, `make test`.

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
# net/http without its HTTP/2 copy, which credsync never speaks: 390 KB less
# binary, and the binary is most of the host's memory (golang/go#35082).
TAGS     := nethttpomithttp2
BUILD    := CGO_ENABLED=0 $(GO) build -trimpath -tags $(TAGS) -ldflags "$(LDFLAGS)"
# The demo's and the bench's host: the release build plus the sandbox
# back-end (build tag sandbox), which changes passwords at credsync's own
# test servers. Release builds (build, cross, dist) never have the tag.
SANDBOX_BUILD := CGO_ENABLED=0 $(GO) build -trimpath -tags '$(TAGS) sandbox' -ldflags "$(LDFLAGS)"
BIN      := bin
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME ?= 10s
# package:FuzzTarget pairs run by `make fuzz`.
FUZZ_TARGETS := \
	./internal/wire:FuzzRead \
	./internal/protocol:FuzzServe \
	./internal/endpoint:FuzzParse \
	./internal/verify:FuzzPOP3Reply \
	./internal/verify:FuzzClassifyIMAP \
	./internal/verify:FuzzClassifySMTP \
	./internal/verify:FuzzScrub \
	./internal/verify:FuzzEchoNeverLeaks \
	./internal/provider:FuzzArubaPage \
	./internal/provider:FuzzZimbraFault \
	./internal/provider:FuzzCpanelJSON \
	./internal/provider:FuzzDirectAdminReply \
	./internal/provider:FuzzPoppassdReply \
	./internal/provider:FuzzRoundcubePage \
	./internal/provider:FuzzKpasswdReply \
	./internal/protocol:FuzzSocketRequest \
	./internal/protocol:FuzzAccountsReply \
	./internal/verify:FuzzLoginReplies \
	./internal/roots:FuzzAppendPEM

include scripts/integration.mk

.PHONY: all build xpi test test-unit test-windows test-js test-fuzz test-e2e lint lint-go lint-js fuzz bench cross demo thunderbird clean

all: build xpi

build:
	$(BUILD) -o $(BIN)/credsync ./cmd/credsync

ZXCVBN := scripts/zxcvbn/node_modules/.package-lock.json
$(ZXCVBN): scripts/zxcvbn/package.json scripts/zxcvbn/package-lock.json
	scripts/npm ci --prefix scripts/zxcvbn --no-audit --no-fund --loglevel=error

# The .xpi: extension/ plus the popup's strength estimator (zxcvbn-ts),
# an npm dependency pinned in scripts/zxcvbn/package-lock.json and never
# copied into the tree: npm ci installs it when the lockfile changed, and
# scripts/xpi packs its prebuilt browser bundles as vendor/zxcvbn/*.js.
xpi: $(ZXCVBN)
	$(GO) run ./scripts/xpi -o $(BIN)/credsync.xpi -npm scripts/zxcvbn extension

# The README's test command, and all that .ci/run calls.
test: lint test-js test-unit test-fuzz cross test-windows test-integration test-e2e test-e2e-stack test-dist

# Every package, scripts/own-code-check's planted-copy test included.
test-unit:
	$(GO) test -race -count=1 ./...

# Real Thunderbird ESR 153 and 140, headless, driven over Marionette; they
# install the .xpi (internal/e2e: CREDSYNC_EXTENSION).
test-e2e: thunderbird xpi
	CREDSYNC_TB140="$$(cat $(BIN)/thunderbird-140.path)" CREDSYNC_EXTENSION=$(CURDIR)/$(BIN)/credsync.xpi \
		$(GO) test -tags e2e -count=1 -timeout 20m ./internal/e2e/

thunderbird:
	@mkdir -p $(BIN)
	scripts/thunderbird > $(BIN)/thunderbird-140.path

lint: lint-go lint-js

# The last line keeps other projects' code out of the tree: libraries come
# in through go.mod and package-lock.json, never as copies.
lint-go:
	@out="$$(gofmt -l cmd internal scripts)"; if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags 'e2e integration' ./...
	GOOS=windows $(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(STATICCHECK) -tags 'e2e integration' ./...
	$(GO) run ./scripts/own-code-check
	$(GO) vet -tags sandbox ./cmd/...
	$(GO) run $(STATICCHECK) -tags sandbox ./cmd/...

lint-js:
	scripts/npm ci --prefix scripts/eslint --no-audit --no-fund --loglevel=error
	scripts/eslint/node_modules/.bin/eslint -c scripts/eslint/eslint.config.mjs extension/ test/js/

# The extension's JavaScript with node's own test runner and a fake
# messenger (test/js/fake.js); not packed into the .xpi. The strength
# meter's tests also run the real estimator (scripts/zxcvbn).
test-js: $(ZXCVBN)
	node --test test/js/

# Each fuzz target for FUZZTIME; corpora are in each package's testdata/fuzz.
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $$t ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) "$${t%%:*}"; \
	done

# Every fuzz target briefly, as part of `make test`: a count, not a time,
# since a time bound can end a worker mid-input and report a false failure.
test-fuzz:
	$(MAKE) --no-print-directory fuzz FUZZTIME=2000x

bench: xpi
	$(SANDBOX_BUILD) -o $(BIN)/credsync-sandbox ./cmd/credsync
	$(GO) run ./cmd/credsync-bench -credsync $(BIN)/credsync-sandbox -extension $(BIN)/credsync.xpi $(BENCHFLAGS)

# The host must build for every OS Thunderbird runs on.
cross:
	GOOS=windows GOARCH=amd64 $(BUILD) -o /dev/null ./cmd/credsync
	GOOS=windows GOARCH=arm64 $(BUILD) -o /dev/null ./cmd/credsync
	GOOS=darwin GOARCH=amd64 $(BUILD) -o /dev/null ./cmd/credsync
	GOOS=darwin GOARCH=arm64 $(BUILD) -o /dev/null ./cmd/credsync

# The tests of every package of the Windows build, and the Windows
# end-to-end scenario with the release credsync.exe (install, the registry,
# a host started as Thunderbird starts it, sync through the named pipe,
# doctor, uninstall), under Wine in a fresh prefix: scripts/wine-test.
# scripts/wine-setup installs Wine from Debian's packages when missing.
test-windows:
	GOOS=windows GOARCH=amd64 $(BUILD) -o $(BIN)/windows-amd64/credsync.exe ./cmd/credsync
	GO="$(GO)" CREDSYNC_EXE=$(BIN)/windows-amd64/credsync.exe scripts/wine-test

# The whole product in a real headless Thunderbird against an embedded sandbox.
demo: xpi thunderbird
	$(SANDBOX_BUILD) -o $(BIN)/credsync-sandbox ./cmd/credsync
	$(GO) run ./cmd/credsync-demo --credsync $(BIN)/credsync-sandbox --extension $(BIN)/credsync.xpi

clean:
	rm -rf $(BIN) dist

# Release artefacts in dist/: the .xpi, static binaries for Linux, macOS and
# Windows, .deb packages (amd64, arm64) and SHA256SUMS. scripts/dist/check
# installs the .deb, runs "credsync doctor" as an ordinary user and removes it.
.PHONY: dist test-dist
dist:
	GO="$(GO)" DESCRIBE="$(VERSION)" scripts/dist/build

test-dist: dist
	scripts/dist/check
