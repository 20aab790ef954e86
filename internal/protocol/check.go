package protocol

import (
	"context"
	"fmt"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/code"
	"github.com/credsync/credsync/internal/policy"
	"github.com/credsync/credsync/internal/provider"
)

type checkResult struct {
	Violations []violationJSON `json:"violations"`
}

type violationJSON struct {
	Rule    string `json:"rule"`
	Message string `json:"message"`
}

// check lists every rule a new password breaks, for the popup while the
// user types (PROTOCOL.md, "check"): the universal rules first; when they
// hold, the back-end's. The change itself checks again.
func check(_ context.Context, _ *session, _ string, req gjson.Result) (any, error) {
	current, err := optionalString(req, "current", policy.MaxBytes)
	if err != nil {
		return nil, err
	}
	next := req.Get("new")
	if next.Type != gjson.String {
		return nil, invalid("new", `member "new" must be a string`)
	}
	var rules *policy.Rules
	if name := req.Get("backend"); name.Exists() {
		b, known := provider.Lookup(name.String())
		if name.Type != gjson.String || !known {
			return nil, &Error{Code: code.BackendUnknown, Field: "backend", Message: fmt.Sprintf("no back-end is called %q", truncate(name.String(), 64))}
		}
		rules = b.Info().Rules
	}
	result := checkResult{Violations: []violationJSON{}}
	if v := policy.Check(current, next.String(), nil); v != nil {
		result.Violations = append(result.Violations, violationJSON{v.Rule, v.Message})
		return result, nil
	}
	for _, v := range rules.Violations(next.String()) {
		result.Violations = append(result.Violations, violationJSON{v.Rule, v.Message})
	}
	return result, nil
}
