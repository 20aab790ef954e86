package protocol

import (
	"bytes"
	"context"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/verify"
)

// FuzzServe feeds one arbitrary frame and a hello to the host: it must
// answer with valid frames, never panic, and still answer the hello.
// Requests that would reach the network are decoded but not run.
func FuzzServe(f *testing.F) {
	for _, s := range []string{
		`{"id":"1","type":"hello"}`,
		`{"id":"2","type":"verify","password":"p","incoming":{"protocol":"imap","host":"127.0.0.1","port":993,"socketType":3,"authMethod":3,"username":"u"}}`,
		`{"id":"3","type":"change","accountId":"a","backend":{"name":"sandbox","url":"https://127.0.0.1/"},"current":"a","new":"b"}`,
		`{"id":"5","type":"sync","accountId":"a","password":"p"}`,
		`{"id":"6","type":"propagate","origin":"imap://h","username":"u"}`,
		`{"id":"7","type":"check","backend":"aruba","current":"a","new":"b"}`,
		`{"id":"8","type":"plan"}`,
		`{"id":"4","status":"ok"}`, `[]`, `{"id":"\ud800","type":"x"}`, "{\"id\":\"1\",\"type\":\"hello\xff\"}",
	} {
		f.Add([]byte(s))
	}
	decodeOnly := map[string]handler{
		"hello": hello,
		"verify": func(_ context.Context, _ *session, _ string, req gjson.Result) (any, error) {
			_, err := decodeVerify(req)
			return nil, err
		},
		"change": func(_ context.Context, _ *session, _ string, req gjson.Result) (any, error) {
			_, err := decodeChange(req, verify.Trust{})
			return nil, err
		},
		"sync": func(_ context.Context, _ *session, _ string, req gjson.Result) (any, error) {
			if _, err := requiredString(req, "accountId", 1, 128); err != nil {
				return nil, err
			}
			_, err := password(req, "password", false)
			return nil, err
		},
		"propagate": func(_ context.Context, _ *session, _ string, req gjson.Result) (any, error) {
			if _, err := requiredString(req, "origin", 1, 300); err != nil {
				return nil, err
			}
			_, err := requiredString(req, "username", 1, endpoint.MaxUsername)
			return nil, err
		},
		// check never reaches the network: the real handler.
		"check": check,
	}
	real := handlers
	handlers = decodeOnly
	defer func() { handlers = real }()
	f.Fuzz(func(t *testing.T, body []byte) {
		var out bytes.Buffer
		in := append(frame(string(body)), frame(`{"id":"last","type":"hello"}`)...)
		if err := (&Host{Version: "fuzz"}).Serve(context.Background(), bytes.NewReader(in), &out); err != nil {
			t.Fatalf("Serve() = %v", err)
		}
		msgs := readFrames(t, &out)
		if len(msgs) == 0 || msgs[len(msgs)-1].Get("id").String() != "last" && !hasID(msgs, "last") {
			t.Fatalf("the hello after %q was not answered: %v", body, msgs)
		}
		for _, m := range msgs {
			if s := m.Get("status").String(); s != "ok" && !(s == "error" && knownCodes[m.Get("code").String()]) {
				t.Fatalf("reply without status or a known code: %s", m.Raw)
			}
		}
	})
}

func hasID(msgs []gjson.Result, id string) bool {
	for _, m := range msgs {
		if m.Get("id").String() == id {
			return true
		}
	}
	return false
}
