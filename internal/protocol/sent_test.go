package protocol

import (
	"context"
	"testing"

	"github.com/credsync/credsync/internal/provider"
)

// refusingBackend refuses every change the way a web panel does after the
// current password was posted to its login form.
type refusingBackend struct{}

func (refusingBackend) Info() provider.Info {
	return provider.Info{Name: "test-refusing", NeedsCurrent: true}
}

func (refusingBackend) Change(context.Context, provider.Request) error {
	return &provider.Error{Kind: provider.Rejected, Detail: "test: refused", Sent: provider.SentCurrent,
		Words: "La nuova password non rispetta i criteri di sicurezza"}
}

func init() { provider.Register(refusingBackend{}) }

// TestProviderRefusalSaysWhatWasSent: the reply says what reached the
// provider and carries its own words, so the popup neither claims that
// nothing was sent nor paraphrases a refusal it does not know.
func TestProviderRefusalSaysWhatWasSent(t *testing.T) {
	sb, trust := startSandbox(t)
	x := startExt(t, &Host{Version: "test", Trust: trust})
	x.mailbox(sb)
	req := changeReq("c", "account1", sb, oldPw, newPw)
	req["backend"] = map[string]any{"name": "test-refusing"}
	final, _ := x.call(req)
	if final.Get("code").String() != "backend_rejected" || final.Get("sent").String() != "current" ||
		final.Get("providerWords").String() != "La nuova password non rispetta i criteri di sicurezza" || final.Get("changed").Bool() {
		t.Fatalf("reply %s", final.Raw)
	}
	if len(sb.Logins()) != 0 {
		t.Errorf("a refused change logged in %d times", len(sb.Logins()))
	}
	x.wantNothingStored()
}
