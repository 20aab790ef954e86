//go:build e2e && !windows

package tbharness

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/testkit/sandbox"
)

// versions returns the Thunderbird builds to test: 153 always, 140 when unpacked.
func versions(t *testing.T) map[string]string {
	v := map[string]string{"153": System153}
	if d := Default140Dir(); d != "" {
		if _, err := FindBinary(d); err == nil {
			v["140"] = d
		} else if os.Getenv("CREDSYNC_TB140") != "" {
			t.Fatalf("CREDSYNC_TB140=%s: %v", d, err)
		}
	}
	return v
}

func TestSmoke(t *testing.T) {
	for _, name := range []string{"153", "140"} {
		t.Run(name, func(t *testing.T) {
			bin, ok := versions(t)[name]
			if !ok {
				t.Skipf("Thunderbird %s not found (run scripts/thunderbird or set CREDSYNC_TB140)", name)
			}
			smoke(t, bin, name)
		})
	}
}

const probeManifest = `{ "manifest_version": 2, "name": "probe", "version": "0.1",
  "browser_specific_settings": { "gecko": { "id": "probe@credsync.test", "strict_min_version": "128.0" } },
  "background": { "scripts": ["background.js"] } }`

const probeBackground = `browser.runtime.onMessage.addListener(async msg => ({ echo: msg.text.toUpperCase() }));`

const probePage = `<!doctype html><html><head><meta charset="utf-8"><script src="page.js"></script></head>
<body><form id="f"><input id="text"><button id="go" type="submit">Go</button></form><p id="status"></p></body></html>`

const probePageJS = `document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("f").addEventListener("submit", async e => {
    e.preventDefault();
    const r = await browser.runtime.sendMessage({ text: document.getElementById("text").value });
    document.getElementById("status").textContent = "answer: " + r.echo;
  });
});`

func writeProbe(t *testing.T) string {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"manifest.json": probeManifest, "background.js": probeBackground,
		"page.html": probePage, "page.js": probePageJS,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func smoke(t *testing.T, bin, want string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sb, err := sandbox.Start(sandbox.Options{Users: map[string]string{"alice": "alice-pw-1", "bob": "bob-pw-1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()

	state := t.TempDir()
	tb, err := Launch(ctx, Options{Binary: bin, StateDir: state, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			tb.Close()
		}
		if t.Failed() {
			t.Logf("Thunderbird log:\n%s", tb.Log())
		}
	}()
	t.Logf("start: %s", tb.StartDuration)

	ai, err := tb.AppInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ai.Version, want+".") || tb.Binary.Major != atoi(want) {
		t.Fatalf("running %s (binary %s), want %s", ai.Version, tb.Binary.Version, want)
	}

	if _, err := tb.ImportCA(ctx, sb.CAPEM); err != nil {
		t.Fatal(err)
	}
	host, port := splitAddr(t, sb.IMAPS)
	_, sport := splitAddr(t, sb.SMTPS)
	acct, err := tb.CreateAccount(ctx, AccountSpec{
		Type:     "imap",
		Incoming: ServerSpec{Host: host, Port: port, SocketType: SocketSSL, AuthMethod: AuthPasswordCleartext, Username: "alice", Password: "alice-pw-1"},
		SMTP:     &ServerSpec{Host: host, Port: sport, SocketType: SocketSSL, AuthMethod: AuthPasswordCleartext, Username: "alice", Password: "alice-pw-1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if acct.IncomingOrigin != "imap://127.0.0.1" || acct.SMTPOrigin != "smtp://127.0.0.1" {
		t.Fatalf("origins %q %q", acct.IncomingOrigin, acct.SMTPOrigin)
	}
	logins, err := tb.Logins(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(logins) != 2 {
		t.Fatalf("logins: %v", logins)
	}
	for _, origin := range []string{"imap://127.0.0.1", "smtp://127.0.0.1"} {
		l, ok, err := tb.LoginFor(ctx, origin, "alice")
		if err != nil || !ok || l.Password != "alice-pw-1" || l.HTTPRealm != origin || l.FormOrig != "" {
			t.Fatalf("login %s: %v %v %v", origin, l, ok, err)
		}
	}

	// Thunderbird logs in itself with the stored passwords, over TLS to the sandbox CA.
	r, err := tb.VerifyIncoming(ctx, acct.Key, 20*time.Second)
	if err != nil || r.Code != 0 {
		t.Fatalf("IMAP verifyLogon: %+v %v", r, err)
	}
	if !sawLogin(sb, "imap", "alice", "alice-pw-1", true) {
		t.Fatalf("sandbox saw no IMAP login: %v", masked(sb.Logins()))
	}
	if err := tb.TriggerSMTPLogon(ctx, acct.SMTPKey); err != nil {
		t.Fatal(err)
	}
	if !waitLogin(ctx, sb, "smtp", "alice", "alice-pw-1", true) {
		t.Fatalf("sandbox saw no SMTP login: %v", masked(sb.Logins()))
	}
	if ps, err := tb.Prompts(ctx); err != nil || len(ps) != 0 {
		t.Fatalf("prompts after good logins: %+v %v", ps, err)
	}

	// A wrong stored password: Thunderbird's login fails; when it then asks
	// (the "login failed" question or a password prompt) the watcher sees it.
	for _, kind := range []string{"imap", "pop3"} {
		addr := sb.IMAPS
		if kind == "pop3" {
			addr = sb.POP3S
		}
		h, p := splitAddr(t, addr)
		bad, err := tb.CreateAccount(ctx, AccountSpec{
			Type:     kind,
			Incoming: ServerSpec{Host: h, Port: p, SocketType: SocketSSL, AuthMethod: AuthPasswordCleartext, Username: "bob", Password: "wrong-" + kind},
		})
		if err != nil {
			t.Fatal(err)
		}
		r, err := tb.VerifyIncoming(ctx, bad.Key, 20*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !sawLogin(sb, kind, "bob", "wrong-"+kind, false) {
			t.Fatalf("sandbox saw no failed %s login: %v", kind, masked(sb.Logins()))
		}
		ps, err := tb.Prompts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s wrong password: verifyLogon code %#x, prompts %+v", kind, r.Code, ps)
		// IMAP asks "Login to account … failed" (Retry / Enter new password / Cancel).
		if kind == "imap" && (len(ps) == 0 || !ps[0].Cancelled || !strings.Contains(ps[0].Title, "failed")) {
			t.Fatalf("IMAP login failure: no prompt recorded (%+v)", ps)
		}
		if err := tb.ClearPrompts(ctx); err != nil {
			t.Fatal(err)
		}
		if err := tb.RemoveAccount(ctx, bad); err != nil {
			t.Fatal(err)
		}
	}
	// A server without a stored password: asking for it opens a prompt.
	nopw, err := tb.CreateAccount(ctx, AccountSpec{
		Type:     "imap",
		Incoming: ServerSpec{Host: host, Port: port, SocketType: SocketSSL, AuthMethod: AuthPasswordCleartext, Username: "carol"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.ClearPrompts(ctx); err != nil {
		t.Fatal(err)
	}
	var res string
	if err := tb.Chrome(ctx, `
const s = MailServices.accounts.getAccount(arguments[0]).incomingServer;
try { return "got " + s.getPasswordWithUI("Password for carol", "credsync test").length; }
catch (e) { return "threw " + e.name; }`, []any{nopw.Key}, &res); err != nil {
		t.Fatal(err)
	}
	ps, err := tb.Prompts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || !ps[0].Cancelled || !strings.Contains(ps[0].Text+ps[0].Title, "carol") {
		t.Fatalf("password prompt not recorded: %q %+v", res, ps)
	}
	t.Logf("password prompt seen and cancelled (%s): %+v", res, ps[0])
	if err := tb.ClearPrompts(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tb.RemoveAccount(ctx, nopw); err != nil {
		t.Fatal(err)
	}

	// Primary password: set, lock, unlock without UI.
	if err := tb.SetPrimaryPassword(ctx, "primary-1"); err != nil {
		t.Fatal(err)
	}
	if err := tb.LockPrimaryPassword(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := tb.PrimaryPassword(ctx)
	if err != nil || !st.HasPassword || st.LoggedIn || st.ServicesLoggedIn {
		t.Fatalf("locked state %+v %v", st, err)
	}
	if err := tb.UnlockPrimaryPassword(ctx, "wrong"); err == nil {
		t.Fatal("unlock with a wrong primary password succeeded")
	}
	if err := tb.UnlockPrimaryPassword(ctx, "primary-1"); err != nil {
		t.Fatal(err)
	}
	st, err = tb.PrimaryPassword(ctx)
	if err != nil || !st.HasPassword || !st.LoggedIn || !st.ServicesLoggedIn {
		t.Fatalf("unlocked state %+v %v", st, err)
	}
	if l, ok, err := tb.LoginFor(ctx, "imap://127.0.0.1", "alice"); err != nil || !ok || l.Password != "alice-pw-1" {
		t.Fatalf("login after primary password: %v %v %v", l, ok, err)
	}
	if ps, _ := tb.Prompts(ctx); len(ps) != 0 {
		t.Fatalf("prompts around the primary password: %+v", ps)
	}

	// A temporary add-on with a page: fill in its form, click, read the answer.
	id, err := tb.InstallAddon(ctx, writeProbe(t))
	if err != nil {
		t.Fatal(err)
	}
	as, err := tb.Addon(ctx, id)
	if err != nil || !as.Found || !as.Active || !as.Temporary || as.Host == "" {
		t.Fatalf("add-on state %+v %v", as, err)
	}
	u, err := tb.ExtensionURL(ctx, id, "page.html")
	if err != nil || u != "moz-extension://"+as.Host+"/page.html" {
		t.Fatalf("URL %q %v", u, err)
	}
	page, err := tb.OpenPage(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if err := page.Eval(ctx, `
document.getElementById("text").value = arguments[0];
document.getElementById("go").click();`, []any{"hello"}, nil); err != nil {
		t.Fatal(err)
	}
	var status string
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	err = page.WaitFor(wctx, `return document.getElementById("status").textContent;`, nil, 100*time.Millisecond, &status)
	wcancel()
	if err != nil || status != "answer: HELLO" {
		t.Fatalf("page status %q %v", status, err)
	}
	var perr *EvalError
	if err := page.Eval(ctx, `throw new Error("boom")`, nil, nil); !errors.As(err, &perr) || !strings.Contains(perr.Message, "boom") {
		t.Fatalf("page exception: %v", err)
	}
	if err := page.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tb.UninstallAddon(ctx, id); err != nil {
		t.Fatal(err)
	}

	pid := tb.Pid()
	start := time.Now()
	closed = true
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("quit: %s", time.Since(start))
	if left := groupMembers(pid); len(left) > 0 {
		t.Fatalf("processes %v of group %d still alive after Close", left, pid)
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func splitAddr(t *testing.T, addr string) (string, int) {
	host, p, ok := strings.Cut(addr, ":")
	if !ok {
		t.Fatalf("address %q", addr)
	}
	return host, atoi(p)
}

func sawLogin(sb *sandbox.Sandbox, proto, user, pw string, ok bool) bool {
	for _, l := range sb.Logins() {
		if l.Protocol == proto && l.Username == user && l.Password == pw && l.OK == ok {
			return true
		}
	}
	return false
}

func waitLogin(ctx context.Context, sb *sandbox.Sandbox, proto, user, pw string, ok bool) bool {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if sawLogin(sb, proto, user, pw, ok) {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

func masked(ls []sandbox.Login) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Protocol+" "+l.Username+" "+Mask(l.Password)+" ok="+map[bool]string{true: "1", false: "0"}[l.OK])
	}
	return out
}
