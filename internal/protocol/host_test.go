package protocol

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

func frame(body string) []byte {
	return append(binary.NativeEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// serveAll runs a Host over a fixed input and returns every message it wrote.
func serveAll(t *testing.T, input []byte) ([]gjson.Result, error) {
	t.Helper()
	var out bytes.Buffer
	h := &Host{Version: "test"}
	err := h.Serve(context.Background(), bytes.NewReader(input), &out)
	return readFrames(t, &out), err
}

func readFrames(t *testing.T, r io.Reader) []gjson.Result {
	t.Helper()
	var msgs []gjson.Result
	for {
		var n uint32
		if err := binary.Read(r, binary.NativeEndian, &n); err != nil {
			return msgs
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			t.Fatalf("truncated frame from the host: %v", err)
		}
		if !gjson.ValidBytes(body) {
			t.Fatalf("the host wrote invalid JSON: %q", body)
		}
		msgs = append(msgs, gjson.ParseBytes(body))
	}
}

func TestHello(t *testing.T) {
	msgs, err := serveAll(t, frame(`{"id":"1","type":"hello"}`))
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Serve() = %v with %d messages", err, len(msgs))
	}
	m := msgs[0]
	if m.Get("id").String() != "1" || m.Get("status").String() != "ok" ||
		m.Get("result.version").String() != "test" || m.Get("result.protocol").Int() != Version ||
		!strings.Contains(m.Get("result.capabilities").Raw, `"verify"`) ||
		!strings.Contains(m.Get("result.capabilities").Raw, `"plan"`) || !strings.Contains(m.Get("result.capabilities").Raw, `"propagate"`) ||
		!strings.Contains(m.Get("result.backends").Raw, `"sandbox"`) || m.Get("result.passwordAuthMethods").Raw != "[0,2,3,9]" {
		t.Fatalf("hello reply = %s", m.Raw)
	}
}

// Every malformed request gets an error reply with a stable code, and the
// host goes on to answer the hello after it.
func TestBadRequestsAreAnsweredAndServingContinues(t *testing.T) {
	endpoint := `{"protocol":"imap","host":"127.0.0.1","port":993,"socketType":3,"authMethod":3,"username":"alice"}`
	cases := []struct {
		name, body, id, code, field string
	}{
		{"not JSON", `{"id":"1",`, "", "invalid_json", ""},
		{"invalid UTF-8", "{\"id\":\"1\",\"type\":\"hello\xff\"}", "", "invalid_json", ""},
		{"array", `["hello"]`, "", "invalid_json", ""},
		{"string", `"hello"`, "", "invalid_json", ""},
		{"no id", `{"type":"hello"}`, "", "invalid_request", "id"},
		{"numeric id", `{"id":1,"type":"hello"}`, "", "invalid_request", "id"},
		{"empty id", `{"id":"","type":"hello"}`, "", "invalid_request", "id"},
		{"no type", `{"id":"2"}`, "2", "invalid_request", "type"},
		{"type not a string", `{"id":"2","type":["hello"]}`, "2", "invalid_request", "type"},
		{"unknown type", `{"id":"3","type":"launchMissiles"}`, "3", "unknown_type", ""},
		{"verify without servers", `{"id":"4","type":"verify","password":"x"}`, "4", "invalid_request", "incoming"},
		{"verify without password", `{"id":"4","type":"verify","incoming":` + endpoint + `}`, "4", "invalid_request", "password"},
		{"password not a string", `{"id":"4","type":"verify","incoming":` + endpoint + `,"password":123}`, "4", "invalid_request", "password"},
		{"password with NUL", `{"id":"4","type":"verify","incoming":` + endpoint + `,"password":"a\u0000b"}`, "4", "invalid_request", "password"},
		{"port as string", `{"id":"5","type":"verify","password":"x","incoming":` + strings.Replace(endpoint, `993`, `"993"`, 1) + `}`, "5", "invalid_request", "incoming.port"},
		{"port fractional", `{"id":"5","type":"verify","password":"x","incoming":` + strings.Replace(endpoint, `993`, `993.5`, 1) + `}`, "5", "invalid_request", "incoming.port"},
		{"port out of range", `{"id":"5","type":"verify","password":"x","incoming":` + strings.Replace(endpoint, `993`, `70000`, 1) + `}`, "5", "invalid_request", "incoming.port"},
		{"CRLF in username", `{"id":"6","type":"verify","password":"x","incoming":` + strings.Replace(endpoint, `alice`, `alice\r\nA1 LOGOUT`, 1) + `}`, "6", "invalid_request", "incoming"},
		{"quote in host", `{"id":"6","type":"verify","password":"x","incoming":` + strings.Replace(endpoint, `127.0.0.1`, `a\"b`, 1) + `}`, "6", "invalid_request", "incoming"},
		{"smtp as incoming", `{"id":"7","type":"verify","password":"x","incoming":` + strings.Replace(endpoint, `"imap"`, `"smtp"`, 1) + `}`, "7", "invalid_request", "incoming.protocol"},
		{"unknown socketType", `{"id":"7","type":"verify","password":"x","incoming":` + strings.Replace(endpoint, `"socketType":3`, `"socketType":1`, 1) + `}`, "7", "invalid_request", "incoming"},
		{"unknown backend", `{"id":"8","type":"change","accountId":"a","backend":{"name":"nope"},"current":"a","new":"b"}`, "8", "backend_unknown", "backend.name"},
		{"accountId not a string", `{"id":"8","type":"change","accountId":7,"backend":{"name":"sandbox"},"current":"a","new":"b"}`, "8", "invalid_request", "accountId"},
		{"change without new", `{"id":"8","type":"change","accountId":"a","backend":{"name":"sandbox"},"current":"a"}`, "8", "invalid_request", "new"},
		{"sync without accountId", `{"id":"9","type":"sync","password":"p"}`, "9", "invalid_request", "accountId"},
		{"sync without password", `{"id":"9","type":"sync","accountId":"a"}`, "9", "invalid_request", "password"},
		{"propagate without username", `{"id":"9","type":"propagate","origin":"imap://h"}`, "9", "invalid_request", "username"},
		{"propagate origin not a string", `{"id":"9","type":"propagate","origin":1,"username":"u"}`, "9", "invalid_request", "origin"},
		{"check without new", `{"id":"10","type":"check"}`, "10", "invalid_request", "new"},
		{"check unknown backend", `{"id":"10","type":"check","backend":"nope","new":"x"}`, "10", "backend_unknown", "backend"},
		{"check backend not a string", `{"id":"10","type":"check","backend":{"name":"aruba"},"new":"x"}`, "10", "backend_unknown", "backend"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msgs, err := serveAll(t, append(frame(c.body), frame(`{"id":"next","type":"hello"}`)...))
			if err != nil {
				t.Fatalf("Serve() = %v", err)
			}
			if len(msgs) != 2 {
				t.Fatalf("got %d messages, want an error reply and the hello reply", len(msgs))
			}
			// Requests run concurrently: replies come in any order.
			m, next := msgs[0], msgs[1]
			if m.Get("id").String() == "next" {
				m, next = next, m
			}
			wantID := `"` + c.id + `"`
			if c.id == "" {
				wantID = "null"
			}
			if m.Get("id").Raw != wantID || m.Get("status").String() != "error" ||
				m.Get("code").String() != c.code || m.Get("field").String() != c.field || m.Get("message").String() == "" {
				t.Fatalf("reply = %s; want id %s, code %q, field %q", m.Raw, wantID, c.code, c.field)
			}
			if next.Get("id").String() != "next" || next.Get("status").String() != "ok" {
				t.Fatalf("the host did not answer the next request: %s", next.Raw)
			}
		})
	}
}

func TestOversizeFrameIsSkipped(t *testing.T) {
	h := &Host{Version: "test", MaxIncoming: 64}
	var out bytes.Buffer
	in := append(frame(`{"id":"big","type":"hello","pad":"`+strings.Repeat("x", 100)+`"}`), frame(`{"id":"next","type":"hello"}`)...)
	if err := h.Serve(context.Background(), bytes.NewReader(in), &out); err != nil {
		t.Fatalf("Serve() = %v", err)
	}
	msgs := readFrames(t, &out)
	if len(msgs) != 2 || msgs[0].Get("code").String() != "message_too_large" || msgs[0].Get("limit").Int() != 64 ||
		msgs[1].Get("id").String() != "next" {
		t.Fatalf("replies = %v", msgs)
	}
}

// A 4 GiB length with no body behind it ends the session with an error,
// without allocating and without writing a partial frame.
func TestHugeLengthAndTruncatedBody(t *testing.T) {
	for name, in := range map[string][]byte{
		"0xFFFFFFFF":     {0xff, 0xff, 0xff, 0xff, '{'},
		"truncated body": frame(`{"id":"1","type":"hello"}`)[:10],
	} {
		t.Run(name, func(t *testing.T) {
			msgs, err := serveAll(t, in)
			if err == nil || len(msgs) > 1 {
				t.Fatalf("Serve() = %v, %d messages; want an error", err, len(msgs))
			}
		})
	}
}

func TestEmptyInputEndsCleanly(t *testing.T) {
	msgs, err := serveAll(t, nil)
	if err != nil || len(msgs) != 0 {
		t.Fatalf("Serve(EOF) = %v, %d messages", err, len(msgs))
	}
}

func TestVerifyNotPasswordAccount(t *testing.T) {
	req := `{"id":"v","type":"verify","password":"secret-canary","incoming":{"protocol":"imap","host":"127.0.0.1","port":1,"socketType":3,"authMethod":10,"username":"alice"}}`
	msgs, err := serveAll(t, frame(req))
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Serve() = %v, %d messages", err, len(msgs))
	}
	m := msgs[0]
	if m.Get("status").String() != "ok" || m.Get("result.verified").Bool() ||
		m.Get("result.incoming.outcome").String() != "not_password_account" || m.Get("result.outgoing").Exists() {
		t.Fatalf("reply = %s", m.Raw)
	}
}

// A reply to nothing the host asked is ignored, not answered.
func TestStrayReplyIsIgnored(t *testing.T) {
	msgs, err := serveAll(t, append(frame(`{"id":"host-99","status":"ok","result":{}}`), frame(`{"id":"n","type":"hello"}`)...))
	if err != nil || len(msgs) != 1 || msgs[0].Get("id").String() != "n" {
		t.Fatalf("Serve() = %v, %v", err, msgs)
	}
}

func TestErrorReplyJSON(t *testing.T) {
	id := "x"
	b, _ := json.Marshal(errorReply(&id, invalid("password", "bad")))
	if string(b) != `{"id":"x","status":"error","code":"invalid_request","message":"bad","field":"password"}` {
		t.Fatalf("error reply = %s", b)
	}
}

// check lists every broken rule while the user types: the universal rules
// alone without a back-end; the back-end's, all of them in policy's
// order, once the universal ones hold.
func TestCheckRequest(t *testing.T) {
	for _, c := range []struct {
		req, want string
	}{
		{`{"id":"c","type":"check","new":""}`, "empty"},
		{`{"id":"c","type":"check","new":"short"}`, ""},
		{`{"id":"c","type":"check","current":"Same-pw1!","new":"Same-pw1!"}`, "same_as_current"},
		{`{"id":"c","type":"check","new":"a\r\nb"}`, "control_characters"},
		{`{"id":"c","type":"check","backend":"aruba","new":"abc"}`, "too_short needs_upper needs_digit needs_special"},
		{`{"id":"c","type":"check","backend":"aruba","new":""}`, "empty"},
		{`{"id":"c","type":"check","backend":"aruba","new":"Valid-Passw0rd!"}`, ""},
	} {
		msgs, err := serveAll(t, frame(c.req))
		if err != nil || len(msgs) != 1 || msgs[0].Get("status").String() != "ok" || !msgs[0].Get("result.violations").IsArray() {
			t.Fatalf("%s: Serve() = %v, %v", c.req, err, msgs)
		}
		var rules []string
		for _, v := range msgs[0].Get("result.violations").Array() {
			rules = append(rules, v.Get("rule").String())
			if v.Get("message").String() == "" {
				t.Fatalf("%s: violation without message: %s", c.req, v.Raw)
			}
		}
		if got := strings.Join(rules, " "); got != c.want {
			t.Fatalf("%s: violations %q; want %q", c.req, got, c.want)
		}
	}
}
