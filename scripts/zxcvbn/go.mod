// A module boundary: keeps npm's node_modules (which may hold .go files)
// out of the main module's ./... patterns.
module credsync.invalid/zxcvbn
