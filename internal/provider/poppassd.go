package provider

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/credsync/credsync/internal/policy"
	"github.com/credsync/credsync/internal/roots"
)

// poppassd changes the password with the poppassd line protocol (TCP 106;
// providers.md §7): "user", "pass" with the current password, "newpass"
// with the new one, each answered by a three-digit code, 2xx (3xx after
// user and pass) meaning go on.
//
// The protocol is cleartext and has no access control of its own, so
// Request.URL must be poppassd://127.0.0.1[:port] (this machine: the
// server is only reached from a loopback address, checked after the dial
// as well), or poppassds://host[:port] for poppassd behind TLS (stunnel),
// verified against Request.Roots. The default port is 106.
//
// Outcomes: a refused connection or greeting is Unreachable; a refusal of
// "user" or "pass" is WrongCurrent (Locked when it says so); a refusal of
// "newpass" is Rejected with the rule its text names (PAM's "BAD PASSWORD:
// The password is shorter than 8 characters" → too_short). Once "newpass"
// has been sent, a lost connection or a reply without a code is
// OutcomeUnknown.
//
// Rules: poppassd-ceti reads the new password with sscanf("%128c") after
// skipping white space, and older poppassd versions with "%s", which stops
// at a space; longer passwords or passwords with spaces could be stored
// silently altered. So passwords are limited to 123 bytes (a "pass" line
// is at most 128) without spaces or tabs.
type poppassd struct{}

var poppassdRules = &policy.Rules{MaxBytes: 123, Forbidden: " \t"}

const (
	poppassdTimeout  = 30 * time.Second
	poppassdMaxLine  = 512
	poppassdMaxUser  = 59 // a "user" line is at most 64 bytes
	poppassdMaxLines = 16 // continuation lines ("200-…") accepted per reply
)

func (poppassd) Info() Info {
	return Info{
		Name:         "poppassd",
		Description:  "poppassd (TCP 106): poppassd://127.0.0.1[:port] on this machine only, or poppassds://host[:port] through TLS",
		NeedsURL:     true,
		NeedsCurrent: true,
		Rules:        poppassdRules,
	}
}

// poppassdTarget is a parsed poppassd URL.
type poppassdTarget struct {
	host, addr string
	tls        bool
}

func poppassdURL(raw string) (poppassdTarget, error) {
	bad := func(why string) (poppassdTarget, error) {
		return poppassdTarget{}, &Error{Kind: Unreachable, Detail: "poppassd: " + why}
	}
	if raw == "" {
		return bad("no URL: give poppassd://127.0.0.1 (this machine) or poppassds://host:port (TLS)")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return bad("the URL must be poppassd://127.0.0.1[:port] or poppassds://host[:port]")
	}
	t := poppassdTarget{host: u.Hostname()}
	switch u.Scheme {
	case "poppassds":
		t.tls = true
	case "poppassd":
		if !poppassdLoopback(t.host) {
			return bad("poppassd sends passwords in clear text: only to this machine (poppassd://127.0.0.1); use poppassds:// for another host")
		}
	default:
		return bad("the URL must start with poppassd:// or poppassds://")
	}
	port := u.Port()
	if port == "" {
		port = "106"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return bad("bad port " + port)
	}
	t.addr = net.JoinHostPort(t.host, port)
	return t, nil
}

func poppassdLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (poppassd) Change(ctx context.Context, r Request) (err error) {
	if v := policy.Check(r.Current, r.New, poppassdRules); v != nil {
		return &Error{Kind: Rejected, Rule: v.Rule, Detail: "poppassd: refused before sending: " + v.Message}
	}
	switch {
	case r.Current == "":
		return &Error{Kind: Rejected, Detail: "poppassd: the current password is required"}
	case r.Username == "" || len(r.Username) > poppassdMaxUser || strings.ContainsAny(r.Username, " \t\r\n\x00"):
		return &Error{Kind: Rejected, Detail: "poppassd: the protocol takes a user name of 1-59 bytes without spaces"}
	case strings.ContainsAny(r.Current, "\r\n\x00") || len(r.Current) > 123:
		return &Error{Kind: Rejected, Detail: "poppassd: the current password cannot be sent in a poppassd line (CR, LF, NUL or over 123 bytes)"}
	}
	target, err := poppassdURL(r.URL)
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, poppassdTimeout)
		defer cancel()
	}
	secrets := []string{r.Current, r.New}

	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", target.addr)
	if err != nil {
		return &Error{Kind: Unreachable, Detail: "poppassd: " + target.addr, Err: err}
	}
	defer conn.Close()
	if !target.tls {
		if a, ok := conn.RemoteAddr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
			return &Error{Kind: Unreachable, Detail: "poppassd: " + target.host + " is not this machine; refusing to send a password in clear text"}
		}
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	if target.tls {
		tc := tls.Client(conn, &tls.Config{ServerName: target.host, RootCAs: roots.Or(r.Roots), MinVersion: tls.VersionTLS12})
		if err := tc.HandshakeContext(ctx); err != nil {
			return &Error{Kind: Unreachable, Detail: "poppassd: TLS with " + target.addr, Err: err}
		}
		conn = tc
	}
	s := &poppassdSession{conn: conn, r: bufio.NewReaderSize(conn, 1024)}

	// Nothing sent before "newpass" can change the password.
	if code, text, err := s.reply(); err != nil || code/100 != 2 {
		return poppassdEarly(ctx, "greeting", code, text, err, secrets)
	}
	if code, text, err := s.command("user " + r.Username); err != nil || code/100 != 2 && code/100 != 3 {
		return poppassdEarly(ctx, "user", code, text, err, secrets)
	}
	if code, text, err := s.command("pass " + r.Current); err != nil || code/100 != 2 && code/100 != 3 {
		return poppassdEarly(ctx, "pass", code, text, err, secrets)
	}

	code, text, err := s.command("newpass " + r.New)
	switch {
	case err != nil:
		return &Error{Kind: OutcomeUnknown, Detail: "poppassd: the answer to newpass was lost", Err: poppassdCtxErr(ctx, err)}
	case code/100 == 2:
		_, _, _ = s.command("quit") // courtesy; the change is done
		return nil
	case code == 0:
		return &Error{Kind: OutcomeUnknown, Detail: "poppassd: unreadable answer to newpass: " + scrubText(text, secrets...)}
	}
	e := refusal(text, secrets...)
	e.Detail = fmt.Sprintf("poppassd: newpass refused (%d): %s", code, e.Detail)
	return e
}

// poppassdEarly is the error for a failure before "newpass" was sent:
// nothing changed.
func poppassdEarly(ctx context.Context, step string, code int, text string, err error, secrets []string) error {
	detail := "poppassd: " + step
	switch {
	case err != nil:
		return &Error{Kind: Unreachable, Detail: detail, Err: poppassdCtxErr(ctx, err)}
	case code == 0:
		return &Error{Kind: Unreachable, Detail: detail + ": not a poppassd answer: " + scrubText(text, secrets...)}
	case step == "greeting":
		return &Error{Kind: Unreachable, Detail: fmt.Sprintf("%s refused (%d): %s", detail, code, scrubText(text, secrets...))}
	}
	if e := refusal(text, secrets...); e.Kind == Locked {
		e.Detail = detail + ": " + e.Detail
		return e
	}
	return &Error{Kind: WrongCurrent, Detail: fmt.Sprintf("%s refused (%d): %s", detail, code, scrubText(text, secrets...))}
}

// poppassdCtxErr reports a cancelled or expired context rather than the
// closed socket it caused.
func poppassdCtxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errors.Join(ctx.Err(), err)
	}
	return err
}

type poppassdSession struct {
	conn net.Conn
	r    *bufio.Reader
}

// command sends one line and reads the reply. The line never appears in an
// error.
func (s *poppassdSession) command(line string) (int, string, error) {
	if _, err := io.WriteString(s.conn, line+"\r\n"); err != nil {
		return 0, "", fmt.Errorf("write: %w", err)
	}
	return s.reply()
}

// reply reads one reply, following "xyz-" continuation lines to the final
// "xyz " line. A line without a code gives code 0 and the line's text.
func (s *poppassdSession) reply() (int, string, error) {
	var texts []string
	for i := 0; i < poppassdMaxLines; i++ {
		line, err := s.readLine()
		if err != nil {
			return 0, "", err
		}
		code, text, more, ok := poppassdParse(line)
		if !ok {
			return 0, line, nil
		}
		texts = append(texts, text)
		if !more {
			return code, strings.Join(texts, " "), nil
		}
	}
	return 0, strings.Join(texts, " "), nil
}

func (s *poppassdSession) readLine() (string, error) {
	var b []byte
	for {
		chunk, isPrefix, err := s.r.ReadLine()
		if err != nil {
			return "", err
		}
		b = append(b, chunk...)
		if len(b) > poppassdMaxLine {
			return "", errors.New("reply line too long")
		}
		if !isPrefix {
			return string(b), nil
		}
	}
}

// poppassdParse reads a reply line: three digits, then a space (final
// line), a dash (more lines follow) or nothing. ok is false for anything
// else.
func poppassdParse(line string) (code int, text string, more, ok bool) {
	if len(line) < 3 || line[0] < '1' || line[0] > '5' || line[1] < '0' || line[1] > '9' || line[2] < '0' || line[2] > '9' {
		return 0, "", false, false
	}
	code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	switch {
	case len(line) == 3:
		return code, "", false, true
	case line[3] == ' ':
		return code, strings.TrimSpace(line[4:]), false, true
	case line[3] == '-':
		return code, strings.TrimSpace(line[4:]), true, true
	}
	return 0, "", false, false
}
