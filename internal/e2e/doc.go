// Package e2e is credsync's end-to-end suite against a real, headless
// Thunderbird (153 ESR and 140 ESR). Its tests carry the e2e build tag:
//
//	go test -tags e2e ./internal/e2e/
//
// CREDSYNC_TB140 names the unpacked Thunderbird 140 (scripts/thunderbird
// prints it); without it the default cache directory is tried and the 140
// tests are skipped if it is absent. CREDSYNC_BIN may name a prebuilt
// credsync binary built with -tags sandbox, for the sandbox back-end
// (otherwise the suite builds ./cmd/credsync with that tag),
// CREDSYNC_EXTENSION the add-on to install (an .xpi or a directory;
// otherwise the suite packs the .xpi with scripts/xpi, which needs the
// popup's strength estimator installed by `make xpi`, or `npm ci --prefix
// scripts/zxcvbn`: extension/ alone has no estimator), and
// CREDSYNC_E2E_ARTIFACTS a directory that keeps each Thunderbird's profile
// and log.
package e2e
