//go:build e2e && !windows

package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/testkit/sandbox"
	"github.com/credsync/credsync/internal/testkit/tbharness"
)

// The password checks on the popup's path (issue 18), on an Italian
// administrator's machine: its own Thunderbird with an Italian UI and the
// administrator's settings in managed storage (minimum strength 3, the
// breach check on against a range API on 127.0.0.1, fail-open). The popup
// shows the strength meter in Italian as the new password is typed,
// counting the account's words as guessable; it refuses a change below the
// minimum itself; and the host asks the range API for the first 5 hex
// digits of the password's SHA-1 only, before anything reaches the
// provider, which never sees a listed password.
func testItalianAdministrator(t *testing.T, bin, name string) {
	var api *rangeAPI
	e := newEnvWith(t, bin, name+"-it", envOptions{
		Locale: "it",
		Managed: func(sb *sandbox.Sandbox) map[string]any {
			api = startRangeAPI(t, sb)
			return map[string]any{
				"minStrength":      3,
				"breachCheck":      true,
				"breachUrl":        api.srv.URL + "/pwned",
				"breachFailClosed": false,
				"expiryWarnDays":   7,
			}
		},
	})
	const (
		user     = "m.rossi@aclibresciane.it"
		old      = "Vecchia-Pw-2019"
		breached = "Tramonto-sul-Garda-1987!"    // strong, but the range API lists it
		fresh    = "Quercia-Lavagna-Torrente-83" // strong and not listed
		later    = "Girasole-Fiume-Collina-59"   // strong; the range API is gone by then
	)
	api.list(breached, 42)
	e.sb.SetPassword(user, old)
	s := e.newScenario(t, tbharness.AccountSpec{
		Type:     "imap",
		Incoming: sslServer(t, e.sb.IMAPS, user, old),
		SMTP:     ptr(sslServer(t, e.sb.SMTPS, user, old)),
		Email:    user,
		FullName: "Mario Rossi",
	}, old, fresh)
	p := s.popup

	// The administrator's settings are in force and locked.
	var settings struct {
		MinStrength int             `json:"minStrength"`
		BreachCheck bool            `json:"breachCheck"`
		BreachURL   string          `json:"breachUrl"`
		Locked      map[string]bool `json:"locked"`
	}
	if err := p.Command(s.ctx, map[string]any{"cmd": "settings"}, &settings); err != nil {
		t.Fatal(err)
	}
	if settings.MinStrength != 3 || !settings.BreachCheck || settings.BreachURL != api.srv.URL+"/pwned" ||
		!settings.Locked["minStrength"] || !settings.Locked["breachCheck"] || !settings.Locked["breachUrl"] || !settings.Locked["breachFailClosed"] {
		t.Fatalf("settings %+v: want the administrator's, locked", settings)
	}
	// The options page shows them, and cannot change them.
	options := s.openOptions()
	wctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
	defer cancel()
	var shown struct {
		MinStrength string `json:"minStrength"`
		URL         string `json:"url"`
		Checked     bool   `json:"checked"`
	}
	if err := options.WaitFor(wctx, `
const ids = ["min-strength", "breach-check", "breach-url", "breach-fail-closed"];
const $ = id => document.getElementById(id);
if (!ids.every(id => $(id).disabled && $(id + "-locked").textContent === "Impostato dal tuo amministratore.")) return null;
return { minStrength: $("min-strength").value, url: $("breach-url").value, checked: $("breach-check").checked };`,
		nil, 100*time.Millisecond, &shown); err != nil {
		t.Errorf("the options page does not show the administrator's settings locked, in Italian: %v", err)
	} else if shown.MinStrength != "3" || shown.URL != api.srv.URL+"/pwned" || !shown.Checked {
		t.Errorf("the options page shows %+v", shown)
	}
	_ = options.Close(s.ctx)

	if err := p.Select(s.ctx, s.acct.Key); err != nil {
		t.Fatal(err)
	}
	if v, err := p.WaitView(s.ctx, "change", 30*time.Second); err != nil {
		t.Fatalf("popup: %v (%+v)", err, v)
	}
	m, err := p.Meter(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.Shown || m.Minimum != "Il tuo amministratore richiede almeno “buona”." {
		t.Errorf("before typing, the meter %+v: want it hidden, and the administrator's minimum said in Italian", m)
	}

	// The meter, in Italian. The first keystroke loads the estimator.
	start := time.Now()
	m, err = p.TypeNew(s.ctx, "Lombardia2024", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first estimate after %s (the estimator loads)", time.Since(start).Round(time.Millisecond))
	if m.State != "ready" || m.Score != 1 || m.Level != "weak" || m.Word != "Sicurezza: debole" || !m.BelowMinimum ||
		!slices.Contains(m.Suggestions, "Aggiungi un maggior numero di parole meno comuni.") {
		t.Errorf("“Lombardia2024” (1 with the Italian lists): the meter shows %+v", m)
	}
	m, err = p.TypeNew(s.ctx, "Aclibresciane1!", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m.State != "ready" || m.Score > 1 || !strings.Contains(m.Word, "debole") ||
		m.Warning != "Non devono essere presenti dati personali o relativi alla pagina." {
		t.Errorf("“Aclibresciane1!” for %s: the meter shows %+v, want weak with the warning about personal data", user, m)
	}

	// Below the minimum: refused in the popup, nothing sent anywhere.
	changes, asked := e.sb.ChangeRequests(), len(api.requests())
	if _, err := p.Type(s.ctx, tbharness.Field{ID: "current", Value: old}, tbharness.Field{ID: "new", Value: "Lombardia2024"},
		tbharness.Field{ID: "repeat", Value: "Lombardia2024"}); err != nil {
		t.Fatal(err)
	}
	if err := p.Click(s.ctx, "change"); err != nil {
		t.Fatal(err)
	}
	v, err := p.WaitFieldRule(s.ctx, "new", "too_weak", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(v.FieldErrors["new"], "“debole”") || !strings.Contains(v.FieldErrors["new"], "almeno “buona”") || v.StatusKind != "" {
		t.Errorf("the refusal below the minimum: %+v", v)
	}
	if m, _ := p.Meter(s.ctx); !m.BelowMinimum || m.Level != "weak" {
		t.Errorf("after the refusal the meter shows %+v: want it to show why", m)
	}
	time.Sleep(300 * time.Millisecond) // nothing may follow
	if n := e.sb.ChangeRequests(); n != changes {
		t.Errorf("the provider saw %d change requests for a password below the minimum", n-changes)
	}
	if n := len(api.requests()); n != asked {
		t.Errorf("the range API was asked %d times for a password below the minimum", n-asked)
	}
	s.wantLogin("imap://127.0.0.1", user, old)

	// A listed password: the host asks the range API with the prefix only,
	// refuses, and nothing reaches the provider.
	if m, err := p.TypeNew(s.ctx, breached, 30*time.Second); err != nil || m.Score < 3 {
		t.Fatalf("%s: the meter shows %+v (%v), want at least “buona”", tbharness.Mask(breached), m, err)
	}
	o, err := p.Change(s.ctx, s.acct.Key, old, breached, 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if o.Kind != "error" || !strings.Contains(o.Text, "compare 42 volte in violazioni di dati note: scegline un'altra") ||
		o.Steps["policy"] != "failed" || o.Steps["changing"] != "pending" {
		t.Errorf("a listed password: the popup shows %s %q (steps %v)", o.Kind, o.Text, o.Steps)
	}
	seen := api.requests()[asked:]
	if len(seen) != 1 {
		t.Fatalf("the range API saw %v, want one request", seen)
	}
	wantRange(t, seen[0], breached)
	if n := e.sb.ChangeRequests(); n != changes {
		t.Errorf("the provider saw %d change requests for a listed password", n-changes)
	}
	s.wantLogin("imap://127.0.0.1", user, old)
	s.wantLogin("smtp://127.0.0.1", user, old)

	// A password the range API does not list: the change goes through,
	// and the popup says it was checked.
	o = s.change()
	for _, step := range []string{"policy", "changing", "checking_incoming", "checking_outgoing", "saving"} {
		if o.Kind != "success" || o.Steps[step] != "ok" {
			t.Fatalf("a password the range API does not list: the popup shows %s %q (steps %v)", o.Kind, o.Text, o.Steps)
		}
	}
	if v, _ := p.View(s.ctx); v.Note != "Controllata nelle violazioni di dati note: non compare." {
		t.Errorf("after a checked change the popup's note is %q", v.Note)
	}
	seen = api.requests()[asked:]
	if len(seen) != 2 {
		t.Fatalf("the range API saw %v, want a second request", seen)
	}
	wantRange(t, seen[1], fresh)
	if n := e.sb.ChangeRequests(); n != changes+1 {
		t.Errorf("the provider saw %d change requests, want 1", n-changes)
	}
	s.wantLogin("imap://127.0.0.1", user, fresh)
	s.wantLogin("smtp://127.0.0.1", user, fresh)

	// The range API gone, fail-open: the change goes through and the user
	// is told the check could not be made.
	api.srv.Close()
	o, err = p.Change(s.ctx, s.acct.Key, fresh, later, 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if o.Kind != "success" {
		t.Fatalf("with the range API unreachable (fail-open) the popup shows %s %q", o.Kind, o.Text)
	}
	if v, _ := p.View(s.ctx); !strings.HasPrefix(v.Note, "Non è stato possibile controllare la nuova password nelle violazioni di dati note") {
		t.Errorf("fail-open: the popup's note is %q, want it to say the check could not be made", v.Note)
	}
	s.wantLogin("imap://127.0.0.1", user, later)

	testItalianExpiry(t, e, s, user, later)
}

// A minimum strength the user set in the options page (the administrator
// set none): the popup refuses a weaker new password, naming the user's
// settings, and lets a strong one through.
func (e *env) testUserMinimum(t *testing.T) {
	const user, old, new = "lia", "Lia-old-pw-1", "Quercia-Lavagna-Torrente-83"
	e.sb.SetPassword(user, old)
	s := e.newScenario(t, e.imapAccount(t, user, old), old, new)
	options := s.openOptions()
	defer options.Close(s.ctx)
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.popup.Command(c, map[string]any{"cmd": "setSettings", "minStrength": 0}, nil); err != nil {
			t.Errorf("no minimum again: %v", err)
		}
	})
	wctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
	defer cancel()
	var saved string
	if err := options.WaitFor(wctx, `
const $ = id => document.getElementById(id);
const select = $("min-strength");
if (!select || select.disabled || select.value !== "0" || !$("breach-url").disabled) return null; // loaded: no minimum, breach check off
select.value = "4";
select.dispatchEvent(new Event("change", { bubbles: true }));
return true;`, nil, 100*time.Millisecond, nil); err != nil {
		t.Fatalf("options page: the password checks are not shown unlocked, without a minimum: %v", err)
	}
	if err := options.WaitFor(wctx, `return document.getElementById("checks-saved").textContent;`, nil, 100*time.Millisecond, &saved); err != nil || saved != "Saved." {
		t.Fatalf("options page says %q (%v), want Saved.", saved, err)
	}

	// The popup reads the settings when it opens.
	if err := s.popup.Reload(s.ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.popup.Select(s.ctx, s.acct.Key); err != nil {
		t.Fatal(err)
	}
	if _, err := s.popup.WaitView(s.ctx, "change", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	changes := e.sb.ChangeRequests()
	if _, err := s.popup.Type(s.ctx, tbharness.Field{ID: "current", Value: old}, tbharness.Field{ID: "new", Value: "Lombardia2024"},
		tbharness.Field{ID: "repeat", Value: "Lombardia2024"}); err != nil {
		t.Fatal(err)
	}
	if err := s.popup.Click(s.ctx, "change"); err != nil {
		t.Fatal(err)
	}
	v, err := s.popup.WaitFieldRule(s.ctx, "new", "too_weak", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if v.FieldErrors["new"] != "Too easy to guess (“weak”): your settings require at least “strong”. Choose a longer or less common password." {
		t.Errorf("the refusal says %q", v.FieldErrors["new"])
	}
	if m, err := s.popup.Meter(s.ctx); err != nil || m.Minimum != "Your settings require at least “strong”." || m.Word != "Strength: weak" {
		t.Errorf("the meter shows %+v (%v)", m, err)
	}
	if n := e.sb.ChangeRequests(); n != changes {
		t.Errorf("the provider saw %d change requests for a password below the minimum", n-changes)
	}
	o := s.change()
	s.wantSuccess(o, true)
	s.wantLogin("imap://127.0.0.1", user, new)
}

// rangeAPI is a k-anonymity range API (Pwned Passwords' GET
// /range/<5 hex>) on 127.0.0.1 with a certificate of the sandbox CA. It
// records each request and lists the passwords given to list().
type rangeAPI struct {
	srv    *httptest.Server
	mu     sync.Mutex
	seen   []rangeRequest
	listed map[string]int // upper-case hex SHA-1 → count
}

// rangeRequest is what the range API received.
type rangeRequest struct {
	Method, Path, Query, Padding string
}

func (r rangeRequest) String() string {
	return fmt.Sprintf("%s %s?%s (Add-Padding: %q)", r.Method, r.Path, r.Query, r.Padding)
}

var rangePath = regexp.MustCompile(`^/pwned/range/([0-9A-F]{5})$`)

func startRangeAPI(t *testing.T, sb *sandbox.Sandbox) *rangeAPI {
	api := &rangeAPI{listed: map[string]int{}}
	api.srv = httptest.NewUnstartedServer(http.HandlerFunc(api.serve))
	api.srv.TLS = sb.ServerTLSConfig()
	api.srv.StartTLS()
	t.Cleanup(api.srv.Close)
	return api
}

func (a *rangeAPI) list(password string, count int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.listed[sha1Hex(password)] = count
}

func (a *rangeAPI) requests() []rangeRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.seen)
}

func (a *rangeAPI) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.seen = append(a.seen, rangeRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Padding: r.Header.Get("Add-Padding")})
	listed := make(map[string]int, len(a.listed))
	for k, v := range a.listed {
		listed[k] = v
	}
	a.mu.Unlock()
	match := rangePath.FindStringSubmatch(r.URL.Path)
	if r.Method != http.MethodGet || match == nil {
		http.NotFound(w, r)
		return
	}
	var body strings.Builder
	for hash, count := range listed {
		if strings.HasPrefix(hash, match[1]) {
			fmt.Fprintf(&body, "%s:%d\r\n", hash[5:], count)
		}
	}
	// Padding, as the real API adds when asked: suffixes seen 0 times.
	for range 20 {
		b := make([]byte, 18)
		_, _ = rand.Read(b)
		fmt.Fprintf(&body, "%s:0\r\n", strings.ToUpper(hex.EncodeToString(b))[:35])
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(body.String()))
}

func sha1Hex(password string) string {
	sum := sha1.Sum([]byte(password))
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// wantRange checks that the request asked for the first 5 hex digits of
// the password's SHA-1, with padding, and carried nothing else.
func wantRange(t *testing.T, r rangeRequest, password string) {
	t.Helper()
	hash := sha1Hex(password)
	if r.Method != http.MethodGet || r.Path != "/pwned/range/"+hash[:5] || r.Query != "" || r.Padding != "true" {
		t.Errorf("the range API saw %v, want GET /pwned/range/%s with Add-Padding: true and nothing more", r, hash[:5])
	}
	if strings.Contains(strings.ToUpper(r.Path), hash[5:10]) {
		t.Errorf("the range API's request %v carries more of the hash than its prefix", r)
	}
}
