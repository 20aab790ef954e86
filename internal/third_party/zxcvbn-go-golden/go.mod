// Upstream zxcvbn-go as released, without internal/third_party's patch:
// this module has no replace directive.
module github.com/credsync/credsync/internal/third_party/zxcvbn-go-golden

go 1.26.0

require github.com/ccojocar/zxcvbn-go v1.0.4
