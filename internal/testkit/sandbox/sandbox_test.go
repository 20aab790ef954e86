package sandbox_test

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/credsync/credsync/internal/testkit/sandbox"
	"github.com/credsync/credsync/internal/testkit/wine"
)

func start(t *testing.T, opts sandbox.Options) *sandbox.Sandbox {
	t.Helper()
	sb, err := sandbox.Start(opts)
	if err != nil {
		t.Fatalf("Start() = %v", err)
	}
	t.Cleanup(func() {
		if err := sb.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	return sb
}

func tlsConfig(sb *sandbox.Sandbox) *tls.Config {
	return &tls.Config{RootCAs: sb.CAPool, ServerName: "127.0.0.1"}
}

func TestAddressesAreLoopback(t *testing.T) {
	sb := start(t, sandbox.Options{})
	for _, addr := range []string{sb.IMAPS, sb.IMAP, sb.POP3S, sb.POP3, sb.SMTPS, sb.Submission} {
		if !strings.HasPrefix(addr, "127.0.0.1:") {
			t.Errorf("address %q is not on 127.0.0.1", addr)
		}
	}
	if !strings.HasPrefix(sb.ChangeURL, "https://127.0.0.1:") || !strings.HasSuffix(sb.ChangeURL, "/change") {
		t.Errorf("ChangeURL = %q", sb.ChangeURL)
	}
	if len(sb.CertSHA256) != 64 {
		t.Errorf("CertSHA256 = %q", sb.CertSHA256)
	}
}

func imapLogin(t *testing.T, c *imapclient.Client, user, pw string) error {
	t.Helper()
	return c.Login(user, pw).Wait()
}

func TestIMAP(t *testing.T) {
	sb := start(t, sandbox.Options{Users: map[string]string{"alice": "old"}})

	c, err := imapclient.DialTLS(sb.IMAPS, &imapclient.Options{TLSConfig: tlsConfig(sb)})
	if err != nil {
		t.Fatalf("DialTLS() = %v", err)
	}
	defer c.Close()
	if err := imapLogin(t, c, "alice", "wrong"); err == nil {
		t.Fatal("Login(wrong) succeeded")
	}
	if err := imapLogin(t, c, "alice", "old"); err != nil {
		t.Fatalf("Login() = %v", err)
	}
	msg := "From: a@example.test\r\nSubject: kept\r\n\r\nhello\r\n"
	ac := c.Append("INBOX", int64(len(msg)), nil)
	ac.Write([]byte(msg))
	ac.Close()
	if _, err := ac.Wait(); err != nil {
		t.Fatalf("Append() = %v", err)
	}
	c.Logout().Wait()

	// A new password takes effect at the next login and keeps the mailbox.
	sb.SetPassword("alice", "new")
	c2, err := imapclient.DialStartTLS(sb.IMAP, &imapclient.Options{TLSConfig: tlsConfig(sb)})
	if err != nil {
		t.Fatalf("DialStartTLS() = %v", err)
	}
	defer c2.Close()
	if err := imapLogin(t, c2, "alice", "old"); err == nil {
		t.Fatal("old password still works")
	}
	if err := imapLogin(t, c2, "alice", "new"); err != nil {
		t.Fatalf("Login(new) = %v", err)
	}
	sel, err := c2.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatalf("Select() = %v", err)
	}
	if sel.NumMessages != 1 {
		t.Fatalf("INBOX has %d messages after the password change, want 1", sel.NumMessages)
	}

	want := []sandbox.Login{
		{Protocol: "imap", Addr: sb.IMAPS, Username: "alice", Password: "wrong"},
		{Protocol: "imap", Addr: sb.IMAPS, Username: "alice", Password: "old", OK: true},
		{Protocol: "imap", Addr: sb.IMAP, Username: "alice", Password: "old"},
		{Protocol: "imap", Addr: sb.IMAP, Username: "alice", Password: "new", OK: true},
	}
	if got := sb.Logins(); len(got) != len(want) {
		t.Fatalf("Logins() = %+v", got)
	} else {
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("Logins()[%d] = %+v, want %+v", i, got[i], want[i])
			}
		}
	}
}

func TestIMAPPlaintextRefused(t *testing.T) {
	sb := start(t, sandbox.Options{Users: map[string]string{"alice": "pw"}})
	c, err := imapclient.DialInsecure(sb.IMAP, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	caps := c.Caps()
	if !caps.Has(imap.CapLoginDisabled) || !caps.Has(imap.CapStartTLS) {
		t.Fatalf("cleartext capabilities = %v, want LOGINDISABLED and STARTTLS", caps)
	}
}

func TestIMAPInsecureAuth(t *testing.T) {
	sb := start(t, sandbox.Options{Users: map[string]string{"alice": "pw"}, AllowInsecureAuth: true})
	c, err := imapclient.DialInsecure(sb.IMAP, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice", "pw").Wait(); err != nil {
		t.Fatalf("Login() = %v", err)
	}
}

func TestSMTP(t *testing.T) {
	sb := start(t, sandbox.Options{Users: map[string]string{"alice": "pw"}})

	c, err := smtp.DialTLS(sb.SMTPS, tlsConfig(sb))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Auth(sasl.NewPlainClient("", "alice", "wrong"))
	if se, ok := err.(*smtp.SMTPError); !ok || se.Code != 535 {
		t.Fatalf("Auth(wrong) = %v, want 535", err)
	}
	if err := c.Auth(sasl.NewPlainClient("", "alice", "pw")); err != nil {
		t.Fatalf("Auth(PLAIN) = %v", err)
	}
	if err := c.SendMail("alice@example.test", []string{"bob@example.test"}, strings.NewReader("Subject: x\r\n\r\nhi\r\n")); err != nil {
		t.Fatalf("SendMail() = %v", err)
	}
	c.Quit()

	// Submission with STARTTLS and LOGIN (go-sasl's client sends the user
	// name as an initial response).
	c2, err := smtp.DialStartTLS(sb.Submission, tlsConfig(sb))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Auth(sasl.NewLoginClient("alice", "pw")); err != nil {
		t.Fatalf("Auth(LOGIN) = %v", err)
	}
	if err := c2.Mail("alice@example.test", nil); err != nil {
		t.Fatalf("Mail() = %v", err)
	}
	c2.Quit()

	// Cleartext: no AUTH before STARTTLS.
	c3, err := smtp.Dial(sb.Submission)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if ok, _ := c3.Extension("AUTH"); ok {
		t.Fatal("AUTH offered without TLS")
	}
	if ok, _ := c3.Extension("STARTTLS"); !ok {
		t.Fatal("STARTTLS not offered")
	}
	if err := c3.Mail("x@example.test", nil); err == nil {
		t.Fatal("mail accepted without authentication")
	}

	if n := len(sb.Logins()); n != 3 {
		t.Fatalf("%d logins recorded, want 3", n)
	}
	// Counted per server (the port) and user name.
	want := map[sandbox.LoginKey]int{
		{Protocol: "smtp", Addr: sb.SMTPS, Username: "alice"}:      2,
		{Protocol: "smtp", Addr: sb.Submission, Username: "alice"}: 1,
	}
	got := sandbox.CountLogins(sb.Logins())
	if len(got) != len(want) {
		t.Errorf("CountLogins() = %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("CountLogins()[%s] = %d, want %d", k, got[k], n)
		}
	}
	if since := sb.LoginsSince(2); len(since) != 1 || since[0].Addr != sb.Submission {
		t.Errorf("LoginsSince(2) = %+v, want the submission login", since)
	}
	if since := sb.LoginsSince(3); len(since) != 0 {
		t.Errorf("LoginsSince(3) = %+v, want none", since)
	}
}

// pop3 is a scripted POP3 conversation.
type pop3 struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func (p *pop3) line() string {
	p.t.Helper()
	p.c.SetDeadline(time.Now().Add(5 * time.Second))
	l, err := p.r.ReadString('\n')
	if err != nil {
		p.t.Fatalf("read: %v", err)
	}
	return strings.TrimRight(l, "\r\n")
}

func (p *pop3) cmd(cmd, wantPrefix string) string {
	p.t.Helper()
	p.c.Write([]byte(cmd + "\r\n"))
	l := p.line()
	if !strings.HasPrefix(l, wantPrefix) {
		p.t.Fatalf("%s: got %q, want %q…", cmd, l, wantPrefix)
	}
	return l
}

func (p *pop3) multi() []string {
	var lines []string
	for l := p.line(); l != "."; l = p.line() {
		lines = append(lines, l)
	}
	return lines
}

func TestPOP3(t *testing.T) {
	sb := start(t, sandbox.Options{Users: map[string]string{"alice": "pw with spaces"}})

	c, err := tls.Dial("tcp", sb.POP3S, tlsConfig(sb))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := &pop3{t: t, c: c, r: bufio.NewReader(c)}
	if l := p.line(); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("greeting %q", l)
	}
	p.cmd("CAPA", "+OK")
	if caps := strings.Join(p.multi(), " "); !strings.Contains(caps, "USER") || strings.Contains(caps, "STLS") {
		t.Fatalf("CAPA over TLS = %q", caps)
	}
	p.cmd("USER alice", "+OK")
	p.cmd("PASS wrong", "-ERR [AUTH]")
	p.cmd("USER alice", "+OK")
	p.cmd("PASS pw with spaces", "+OK")
	p.cmd("STAT", "+OK 0 0")
	p.cmd("LIST", "+OK")
	if l := p.multi(); len(l) != 0 {
		t.Fatalf("LIST = %q", l)
	}
	p.cmd("UIDL", "+OK")
	if l := p.multi(); len(l) != 0 {
		t.Fatalf("UIDL = %q", l)
	}
	p.cmd("RETR 1", "-ERR")
	p.cmd("QUIT", "+OK")

	// STLS on the cleartext port; USER is refused before it.
	c2, err := net.Dial("tcp", sb.POP3)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	p = &pop3{t: t, c: c2, r: bufio.NewReader(c2)}
	p.line()
	p.cmd("CAPA", "+OK")
	if caps := strings.Join(p.multi(), " "); strings.Contains(caps, "USER") || !strings.Contains(caps, "STLS") {
		t.Fatalf("cleartext CAPA = %q", caps)
	}
	p.cmd("USER alice", "-ERR [AUTH]")
	p.cmd("STLS", "+OK")
	tc := tls.Client(c2, tlsConfig(sb))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("STLS handshake: %v", err)
	}
	p = &pop3{t: t, c: tc, r: bufio.NewReader(tc)}
	p.cmd("USER alice", "+OK")
	p.cmd("PASS pw with spaces", "+OK")
	p.cmd("QUIT", "+OK")

	want := []bool{false, true, true}
	got := sb.Logins()
	if len(got) != len(want) {
		t.Fatalf("Logins() = %+v", got)
	}
	for i := range want {
		if got[i].Protocol != "pop3" || got[i].OK != want[i] {
			t.Errorf("Logins()[%d] = %+v", i, got[i])
		}
	}
	if got[0].Addr != sb.POP3S || got[2].Addr != sb.POP3 {
		t.Errorf("Logins() addresses %q, %q; want POP3S %q, then POP3 %q", got[0].Addr, got[2].Addr, sb.POP3S, sb.POP3)
	}
}

func TestChangePassword(t *testing.T) {
	sb := start(t, sandbox.Options{Users: map[string]string{"alice": "old"}})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: sb.CAPool}}, Timeout: 5 * time.Second}
	post := func(form url.Values) (int, map[string]any) {
		t.Helper()
		resp, err := client.PostForm(sb.ChangeURL, form)
		if err != nil {
			t.Fatalf("POST: %v", err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatalf("decode: %v", err)
		}
		return resp.StatusCode, body
	}

	if code, body := post(url.Values{"username": {"alice"}, "current": {"nope"}, "new": {"x"}}); code != 403 || body["error"] != "wrong_current_password" {
		t.Fatalf("wrong current: %d %v", code, body)
	}
	if code, body := post(url.Values{"username": {"bob"}, "current": {"old"}, "new": {"x"}}); code != 403 || body["error"] != "wrong_current_password" {
		t.Fatalf("unknown user: %d %v", code, body)
	}
	if code, body := post(url.Values{"username": {"alice"}, "current": {"old"}}); code != 400 || body["ok"] != false {
		t.Fatalf("missing field: %d %v", code, body)
	}
	if code, body := post(url.Values{"username": {"alice"}, "current": {"old"}, "new": {"n€w pw"}}); code != 200 || body["ok"] != true {
		t.Fatalf("change: %d %v", code, body)
	}
	resp, err := client.Get(sb.ChangeURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", resp.StatusCode)
	}

	// All three servers use the new password.
	c, err := imapclient.DialTLS(sb.IMAPS, &imapclient.Options{TLSConfig: tlsConfig(sb)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice", "n€w pw").Wait(); err != nil {
		t.Fatalf("IMAP login with the new password: %v", err)
	}
	s, err := smtp.DialTLS(sb.SMTPS, tlsConfig(sb))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Auth(sasl.NewPlainClient("", "alice", "old")); err == nil {
		t.Fatal("SMTP accepts the old password")
	}
}

func TestCustomCertificateAndWriteCA(t *testing.T) {
	sb := start(t, sandbox.Options{})
	path := filepath.Join(wine.TempDir(t), "ca.pem")
	if err := sb.WriteCA(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != string(sb.CAPEM) || !strings.Contains(string(b), "BEGIN CERTIFICATE") {
		t.Fatalf("WriteCA wrote %q, %v", b, err)
	}

	// A sandbox can serve another sandbox's certificate.
	other := start(t, sandbox.Options{})
	cfg := other.ServerTLSConfig()
	sb2 := start(t, sandbox.Options{Certificate: &cfg.Certificates[0]})
	if sb2.CertSHA256 != other.CertSHA256 {
		t.Fatal("CertSHA256 does not describe the custom certificate")
	}
	c, err := tls.Dial("tcp", sb2.IMAPS, &tls.Config{RootCAs: other.CAPool, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("the custom certificate is not served: %v", err)
	}
	c.Close()
}

func TestClose(t *testing.T) {
	sb, err := sandbox.Start(sandbox.Options{Users: map[string]string{"alice": "pw"}})
	if err != nil {
		t.Fatal(err)
	}
	// An open, idle connection on each server must not block Close.
	var conns []net.Conn
	for _, addr := range []string{sb.IMAP, sb.POP3, sb.Submission, sb.IMAPS} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	done := make(chan error)
	go func() { done <- sb.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close() = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close() hangs")
	}
	if err := sb.Close(); err != nil {
		t.Fatalf("second Close() = %v", err)
	}
	for _, addr := range []string{sb.IMAPS, sb.POP3, sb.SMTPS} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections", addr)
		}
	}
}

// With a lag, the change endpoint takes the new password at once, the mail
// servers only Lag later: the old password works until then, the new one
// after; the log records every attempt, so a test can count the failed
// ones.
func TestLag(t *testing.T) {
	sb := start(t, sandbox.Options{Users: map[string]string{"alice": "old"}, Lag: 300 * time.Millisecond})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: sb.CAPool}}, Timeout: 5 * time.Second}
	resp, err := client.PostForm(sb.ChangeURL, url.Values{"username": {"alice"}, "current": {"old"}, "new": {"new"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("change: %d", resp.StatusCode)
	}
	login := func(pw string) error {
		c, err := imapclient.DialTLS(sb.IMAPS, &imapclient.Options{TLSConfig: tlsConfig(sb)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.Login("alice", pw).Wait()
	}
	if login("new") == nil || login("old") != nil {
		t.Fatal("during the lag the servers must refuse the new password and accept the old one")
	}
	// The provider knows the new password already: a second change needs it.
	resp, err = client.PostForm(sb.ChangeURL, url.Values{"username": {"alice"}, "current": {"old"}, "new": {"x"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("a change with the password the provider replaced: %d", resp.StatusCode)
	}
	time.Sleep(400 * time.Millisecond)
	if login("new") != nil || login("old") == nil {
		t.Fatal("after the lag the servers must accept the new password only")
	}
	failed := 0
	for _, l := range sb.Logins() {
		if !l.OK {
			failed++
		}
	}
	if failed != 2 {
		t.Fatalf("%d failed logins in the log; want 2", failed)
	}
}

// TestExpired: an expired user's right password gets IMAP's NO [EXPIRED]
// and SMTP's 432 4.7.12 on the wire; a wrong one the usual refusals; the
// change endpoint clears it.
func TestExpired(t *testing.T) {
	sb := start(t, sandbox.Options{Users: map[string]string{"alice": "old-pw", "bob": "bob-pw"}, Expired: []string{"alice"}})

	c, err := imapclient.DialTLS(sb.IMAPS, &imapclient.Options{TLSConfig: tlsConfig(sb)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var ie *imap.Error
	if err := c.Login("alice", "old-pw").Wait(); !errors.As(err, &ie) || ie.Code != imap.ResponseCodeExpired || ie.Type != imap.StatusResponseTypeNo {
		t.Fatalf("IMAP login of an expired user = %v, want NO [EXPIRED]", err)
	}
	if err := c.Login("alice", "wrong").Wait(); !errors.As(err, &ie) || ie.Code != imap.ResponseCodeAuthenticationFailed {
		t.Fatalf("IMAP login with a wrong password = %v, want NO [AUTHENTICATIONFAILED]", err)
	}
	if err := c.Login("bob", "bob-pw").Wait(); err != nil {
		t.Fatalf("IMAP login of another user: %v", err)
	}

	smtpAuth := func(user, pw string) error {
		s, err := smtp.DialTLS(sb.SMTPS, tlsConfig(sb))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		return s.Auth(sasl.NewPlainClient("", user, pw))
	}
	var se *smtp.SMTPError
	if err := smtpAuth("alice", "old-pw"); !errors.As(err, &se) || se.Code != 432 || se.EnhancedCode != (smtp.EnhancedCode{4, 7, 12}) {
		t.Fatalf("SMTP AUTH of an expired user = %v, want 432 4.7.12", err)
	}
	if err := smtpAuth("alice", "wrong"); !errors.As(err, &se) || se.Code != 535 {
		t.Fatalf("SMTP AUTH with a wrong password = %v, want 535", err)
	}
	for _, l := range sb.Logins() {
		if l.OK && l.Username == "alice" {
			t.Errorf("an expired login counted as accepted: %+v", l)
		}
	}

	// The change endpoint changes an expired password, which clears it.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: sb.CAPool}}, Timeout: 5 * time.Second}
	resp, err := client.PostForm(sb.ChangeURL, url.Values{"username": {"alice"}, "current": {"old-pw"}, "new": {"new-pw"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("change: %d", resp.StatusCode)
	}
	if err := smtpAuth("alice", "new-pw"); err != nil {
		t.Fatalf("SMTP AUTH after the change: %v", err)
	}
}
