//go:build !windows

package bench

import (
	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/endpoint"
)

// benchAccount is the one account the bench's fake extension lists
// (PROTOCOL.md, "accounts"): its two servers, their login origins, and no
// saved login.
func benchAccount(in, out endpoint.Endpoint) map[string]any {
	server := func(e endpoint.Endpoint, scheme string) map[string]any {
		return map[string]any{"protocol": string(e.Protocol), "host": e.Host, "port": e.Port,
			"socketType": int(e.Security), "authMethod": int(e.AuthMethod), "username": e.Username,
			"origin": scheme + "://" + e.Host, "saved": nil}
	}
	return map[string]any{"id": "bench", "name": "bench", "incoming": server(in, "imap"), "outgoing": server(out, "smtp")}
}

// answerHost is the bench's fake extension answering the host's own
// requests at once: the accounts it lists, and a store that saves every
// login. ok is false for a message that is no such request.
func answerHost(m gjson.Result, account map[string]any) (reply map[string]any, ok bool) {
	var result map[string]any
	switch m.Get("type").String() {
	case "accounts":
		result = map[string]any{"accounts": []any{account}}
	case "store":
		logins := []map[string]string{}
		for _, l := range m.Get("logins").Array() {
			logins = append(logins, map[string]string{"origin": l.Get("origin").String(), "username": l.Get("username").String(), "state": "stored"})
		}
		result = map[string]any{"logins": logins}
	default:
		return nil, false
	}
	if !m.Get("id").Exists() || m.Get("status").Exists() {
		return nil, false
	}
	return map[string]any{"id": m.Get("id").String(), "status": "ok", "result": result}, true
}
