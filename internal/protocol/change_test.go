package protocol

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/testkit/sandbox"
	"github.com/credsync/credsync/internal/verify"
)

// extension plays Thunderbird's side of a live session.
type extension struct {
	t    *testing.T
	in   *io.PipeWriter
	msgs chan gjson.Result
	done chan error
}

func startSession(t *testing.T, trust verify.Trust) *extension {
	t.Helper()
	return startHost(t, &Host{Version: "test", Trust: trust})
}

func startHost(t *testing.T, h *Host) *extension {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	x := &extension{t: t, in: inW, msgs: make(chan gjson.Result, 64), done: make(chan error, 1)}
	go func() {
		x.done <- h.Serve(context.Background(), inR, outW)
		outW.Close()
	}()
	go func() {
		for {
			var n uint32
			if binary.Read(outR, binary.NativeEndian, &n) != nil {
				close(x.msgs)
				return
			}
			body := make([]byte, n)
			if _, err := io.ReadFull(outR, body); err != nil {
				close(x.msgs)
				return
			}
			x.msgs <- gjson.ParseBytes(body)
		}
	}()
	t.Cleanup(func() {
		inW.Close()
		select {
		case err := <-x.done:
			if err != nil {
				t.Errorf("Serve() = %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve() did not return after the input closed")
		}
	})
	return x
}

func (x *extension) send(v any) {
	x.t.Helper()
	b, _ := json.Marshal(v)
	if _, err := x.in.Write(frame(string(b))); err != nil {
		x.t.Fatalf("writing to the host: %v", err)
	}
}

func (x *extension) next() gjson.Result {
	x.t.Helper()
	select {
	case m, ok := <-x.msgs:
		if !ok {
			x.t.Fatal("the host closed its output")
		}
		return m
	case <-time.After(20 * time.Second):
		x.t.Fatal("no message from the host within 20 s")
	}
	return gjson.Result{}
}

// run sends a change and plays the extension until the final reply:
// answering store requests with storeReply, recording progress and the
// passwords the host asked to store.
func (x *extension) run(req map[string]any, storeReply func(store gjson.Result) map[string]any) (final gjson.Result, steps []string, stored []string) {
	x.t.Helper()
	x.send(req)
	for {
		m := x.next()
		switch {
		case m.Get("type").String() == "progress":
			if m.Get("request").String() != req["id"] {
				x.t.Fatalf("progress for another request: %s", m.Raw)
			}
			steps = append(steps, m.Get("step").String()+":"+m.Get("state").String())
		case m.Get("type").String() == "store":
			stored = append(stored, m.Get("password").String())
			reply := storeReply(m)
			reply["id"] = m.Get("id").String()
			x.send(reply)
		case m.Get("id").String() == req["id"]:
			return m, steps, stored
		default:
			x.t.Fatalf("unexpected message %s", m.Raw)
		}
	}
}

func ep(protocol, addr, user string) map[string]any {
	host, port, _ := strings.Cut(addr, ":")
	var p int
	fmt.Sscan(port, &p)
	return map[string]any{"protocol": protocol, "host": host, "port": p, "socketType": 3, "authMethod": 3, "username": user}
}

func startSandbox(t *testing.T) (*sandbox.Sandbox, verify.Trust) {
	t.Helper()
	sb, err := sandbox.Start(sandbox.Options{Users: map[string]string{"alice": "old-Passw0rd!"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	return sb, verify.Trust{Roots: sb.CAPool}
}

func changeRequest(sb *sandbox.Sandbox, current, next string) map[string]any {
	return map[string]any{
		"id": "c1", "type": "change",
		"account": map[string]any{"id": "account1", "incoming": ep("imap", sb.IMAPS, "alice"), "outgoing": ep("smtp", sb.SMTPS, "alice")},
		"backend": map[string]any{"name": "sandbox", "url": sb.ChangeURL},
		"current": current, "new": next,
	}
}

func storeOK(gjson.Result) map[string]any {
	return map[string]any{"status": "ok", "result": map[string]any{"incoming": "modified", "outgoing": "modified"}}
}

func TestChangeStoresOnlyAfterVerification(t *testing.T) {
	sb, trust := startSandbox(t)
	x := startSession(t, trust)
	final, steps, stored := x.run(changeRequest(sb, "old-Passw0rd!", "new-Passw0rd!"), func(store gjson.Result) map[string]any {
		if store.Get("accountId").String() != "account1" || store.Get("sides").Raw != `["incoming","outgoing"]` {
			t.Errorf("store request = %s", store.Raw)
		}
		// By the time Thunderbird is asked to store, both servers took it.
		var in, out bool
		for _, l := range sb.Logins() {
			in = in || l.Protocol == "imap" && l.Password == "new-Passw0rd!" && l.OK
			out = out || l.Protocol == "smtp" && l.Password == "new-Passw0rd!" && l.OK
		}
		if !in || !out {
			t.Errorf("store requested before both servers accepted the new password: %+v", sb.Logins())
		}
		return storeOK(store)
	})
	if final.Get("status").String() != "ok" || !final.Get("result.changed").Bool() || !final.Get("result.stored").Bool() ||
		final.Get("result.incoming.outcome").String() != "ok" || final.Get("result.outgoing.outcome").String() != "ok" {
		t.Fatalf("final reply = %s", final.Raw)
	}
	if len(stored) != 1 || stored[0] != "new-Passw0rd!" {
		t.Fatalf("store requests carried %d passwords", len(stored))
	}
	want := []string{"policy:running", "policy:ok", "changing:running", "changing:ok", "saving:running", "saving:ok"}
	for _, w := range want {
		if !contains(steps, w) {
			t.Fatalf("progress %v lacks %s", steps, w)
		}
	}
	if !contains(steps, "checking_incoming:ok") || !contains(steps, "checking_outgoing:ok") {
		t.Fatalf("progress %v lacks the checks", steps)
	}
}

func TestChangeWrongCurrentPasswordStoresNothing(t *testing.T) {
	sb, trust := startSandbox(t)
	x := startSession(t, trust)
	final, _, stored := x.run(changeRequest(sb, "not-the-password", "new-Passw0rd!"), storeOK)
	if final.Get("code").String() != "wrong_current_password" || len(stored) != 0 {
		t.Fatalf("final = %s, %d store requests", final.Raw, len(stored))
	}
	for _, l := range sb.Logins() {
		if l.Password == "new-Passw0rd!" {
			t.Fatalf("a server saw the new password although nothing changed")
		}
	}
}

func TestChangePolicyViolationSendsNothing(t *testing.T) {
	sb, trust := startSandbox(t)
	x := startSession(t, trust)
	final, steps, stored := x.run(changeRequest(sb, "old-Passw0rd!", "old-Passw0rd!"), storeOK)
	if final.Get("code").String() != "policy_violation" || final.Get("rule").String() != "same_as_current" || len(stored) != 0 {
		t.Fatalf("final = %s", final.Raw)
	}
	if contains(steps, "changing:running") || len(sb.Logins()) != 0 {
		t.Fatalf("a policy violation reached the network: steps %v, %d logins", steps, len(sb.Logins()))
	}
}

func TestChangeStoreFailureIsReported(t *testing.T) {
	for _, code := range []string{"store_failed", "store_cancelled"} {
		t.Run(code, func(t *testing.T) {
			sb, trust := startSandbox(t)
			x := startSession(t, trust)
			final, _, _ := x.run(changeRequest(sb, "old-Passw0rd!", "new-Passw0rd!"), func(gjson.Result) map[string]any {
				return map[string]any{"status": "error", "code": code, "message": "the extension could not"}
			})
			if final.Get("code").String() != code || !final.Get("changed").Bool() {
				t.Fatalf("final = %s", final.Raw)
			}
		})
	}
}

// The new password works at the provider but the outgoing server does not
// take it: nothing is stored, and the reply says the provider changed.
func TestChangeVerificationFailureStoresNothing(t *testing.T) {
	sb, trust := startSandbox(t)
	x := startSession(t, trust)
	req := changeRequest(sb, "old-Passw0rd!", "new-Passw0rd!")
	req["account"].(map[string]any)["outgoing"] = ep("smtp", sb.SMTPS, "bob")
	final, _, stored := x.run(req, storeOK)
	if final.Get("code").String() != "verification_failed" || !final.Get("changed").Bool() ||
		final.Get("incoming.outcome").String() != "ok" || final.Get("outgoing.outcome").String() != "auth_failed" || len(stored) != 0 {
		t.Fatalf("final = %s, %d store requests", final.Raw, len(stored))
	}
	if strings.Contains(final.Raw, "new-Passw0rd!") {
		t.Fatal("the reply contains the password")
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestSyncStoresVerifiedPassword(t *testing.T) {
	sb, trust := startSandbox(t)
	sb.SetPassword("alice", "changed-Elsewhere1")
	x := startSession(t, trust)
	req := changeRequest(sb, "", "")
	delete(req, "backend")
	delete(req, "current")
	delete(req, "new")
	req["type"], req["password"] = "sync", "changed-Elsewhere1"
	final, _, stored := x.run(req, storeOK)
	if final.Get("status").String() != "ok" || !final.Get("result.stored").Bool() || final.Get("result.changed").Bool() ||
		len(stored) != 1 || stored[0] != "changed-Elsewhere1" {
		t.Fatalf("final = %s, %d stores", final.Raw, len(stored))
	}
}
