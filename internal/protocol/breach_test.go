package protocol

import (
	"crypto/sha1"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// rangeAPI is a Pwned Passwords range API on 127.0.0.1 (the sandbox's
// certificate) that lists listed with a count of 42, and records the paths
// it was asked for with their Add-Padding header.
func rangeAPI(t *testing.T, config *tls.Config, listed string) (url string, asked func() []string) {
	t.Helper()
	sum := sha1.Sum([]byte(listed))
	hash := strings.ToUpper(hex.EncodeToString(sum[:]))
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path+" padding="+r.Header.Get("Add-Padding"))
		mu.Unlock()
		fmt.Fprintf(w, "0000000000000000000000000000000000A:0\r\n")
		if strings.HasSuffix(r.URL.Path, "/"+hash[:5]) {
			fmt.Fprintf(w, "%s:42\r\n", hash[5:])
		}
	}))
	srv.TLS = config
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), paths...)
	}
}

// TestChangeBreachCheck: with the administrator's breachCheck, the host
// asks the range API (only a 5-character prefix, padded) before anything
// is sent to the provider; a listed password never reaches it.
func TestChangeBreachCheck(t *testing.T) {
	for _, c := range []struct {
		name, next string
		url        func(live string) string
		failClosed bool
		code, rule string
		outcome    string // breachCheck of a stored change
		posts      int32
	}{
		{name: "listed", next: "Listed-Passw0rd-1", url: func(l string) string { return l }, code: "policy_violation", rule: "breached"},
		{name: "not listed", next: "Fresh-Passw0rd-2", url: func(l string) string { return l }, outcome: "not_listed", posts: 1},
		{name: "unreachable, fail open", next: "Fresh-Passw0rd-3", url: func(string) string { return "https://127.0.0.1:1" }, outcome: "unavailable", posts: 1},
		{name: "unreachable, fail closed", next: "Fresh-Passw0rd-4", url: func(string) string { return "https://127.0.0.1:1" }, failClosed: true,
			code: "policy_violation", rule: "breach_check_unavailable"},
	} {
		t.Run(c.name, func(t *testing.T) {
			sb, trust := startSandbox(t)
			var posts atomic.Int32
			provider := faultProvider(t, sb, func(w http.ResponseWriter, r *http.Request) {
				posts.Add(1)
				applyChange(sb, r)
				fmt.Fprint(w, `{"ok":true}`)
			})
			live, asked := rangeAPI(t, sb.ServerTLSConfig(), "Listed-Passw0rd-1")
			x := startExt(t, &Host{Version: "test", Trust: trust})
			x.mailbox(sb)
			req := changeReq("c", "account1", sb, oldPw, c.next)
			req["backend"] = map[string]any{"name": "sandbox", "url": provider}
			req["breachCheck"] = map[string]any{"url": c.url(live), "failClosed": c.failClosed}
			final, _ := x.call(req)
			if c.code != "" {
				if final.Get("code").String() != c.code || final.Get("rule").String() != c.rule {
					t.Fatalf("reply %s; want %s %s", final.Raw, c.code, c.rule)
				}
				if c.rule == "breached" && final.Get("breaches").Int() != 42 {
					t.Errorf("breaches %s, want 42", final.Get("breaches").Raw)
				}
				x.wantNothingStored()
			} else if final.Get("status").String() != "ok" || final.Get("result.breachCheck").String() != c.outcome {
				t.Fatalf("reply %s; want stored with breachCheck %s", final.Raw, c.outcome)
			}
			if posts.Load() != c.posts {
				t.Errorf("%d requests reached the provider, want %d", posts.Load(), c.posts)
			}
			for _, p := range asked() {
				if !strings.HasPrefix(p, "/range/") || len(strings.Fields(p)[0]) != len("/range/")+5 || !strings.HasSuffix(p, "padding=true") {
					t.Errorf("the range API was asked %q: want /range/ and 5 hex digits, padded", p)
				}
			}
		})
	}
}

func TestChangeBreachCheckMember(t *testing.T) {
	sb, trust := startSandbox(t)
	x := startExt(t, &Host{Version: "test", Trust: trust})
	x.mailbox(sb)
	for _, bc := range []any{"on", map[string]any{"url": "http://127.0.0.1/"}, map[string]any{"failClosed": "yes"}} {
		req := changeReq("c", "account1", sb, oldPw, newPw)
		req["breachCheck"] = bc
		if final, _ := x.call(req); final.Get("code").String() != "invalid_request" || !strings.HasPrefix(final.Get("field").String(), "breachCheck") {
			t.Errorf("breachCheck %v: reply %s", bc, final.Raw)
		}
	}
	x.wantNothingStored()
}
