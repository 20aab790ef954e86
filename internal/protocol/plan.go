package protocol

import (
	"context"

	"github.com/tidwall/gjson"
)

type planResult struct {
	Accounts []planAccount `json:"accounts"`
}

type planAccount struct {
	ID            string        `json:"id"`
	PasswordBased bool          `json:"passwordBased"`
	Touches       []accountJSON `json:"touches"`
}

// plan tells the popup, for every account, whether its password can be
// changed here and which accounts a change of it writes
// (flow.Engine.Previews). Nothing is logged in to or written.
func plan(ctx context.Context, s *session, _ string, _ gjson.Result) (any, error) {
	previews, err := s.engine.Previews(ctx)
	if err != nil {
		return nil, err
	}
	result := planResult{Accounts: []planAccount{}}
	for _, p := range previews {
		a := planAccount{ID: p.ID, PasswordBased: p.PasswordBased, Touches: members(p.Touches, nil, nil).Accounts}
		if a.Touches == nil {
			a.Touches = []accountJSON{}
		}
		result.Accounts = append(result.Accounts, a)
	}
	return result, nil
}
