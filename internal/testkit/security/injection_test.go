package security

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/testkit/sandbox"
	"github.com/credsync/credsync/internal/verify"
)

// rawCommand is one command a client sent, as the server parses it.
type rawCommand struct {
	Verb string   // upper case; "" for a SASL response line
	Args []string // decoded arguments (IMAP: after tag and verb)
	Raw  string
}

// recordingFront is a TLS front for one of the sandbox's implicit-TLS
// servers: it terminates the client's TLS with the sandbox's certificate,
// relays every byte to the sandbox over TLS, and parses what the client
// sent the way a server does (IMAP literals and quoted strings, SMTP and
// POP3 lines, SASL responses), recording each command.
type recordingFront struct {
	proto endpoint.Protocol
	ln    net.Listener

	mu       sync.Mutex
	conns    int
	commands []rawCommand
	parseErr error
	wg       sync.WaitGroup // the accept loop and the connections
	conn     sync.WaitGroup // the connections
}

func startFront(t *testing.T, sb *sandbox.Sandbox, proto endpoint.Protocol, target string) *recordingFront {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", sb.ServerTLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	f := &recordingFront{proto: proto, ln: ln}
	upstream := &tls.Config{RootCAs: sb.CAPool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	f.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns++
			f.mu.Unlock()
			f.conn.Add(1)
			f.wg.Go(func() {
				defer f.conn.Done()
				defer c.Close()
				s, err := tls.Dial("tcp", target, upstream)
				if err != nil {
					return
				}
				defer s.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				s.SetDeadline(time.Now().Add(10 * time.Second))
				go func() { io.Copy(c, s); c.Close() }()
				r := bufio.NewReader(io.TeeReader(c, s))
				f.parse(r)
			})
		}
	})
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return f
}

func (f *recordingFront) addr() string { return f.ln.Addr().String() }

func (f *recordingFront) record(c rawCommand) {
	f.mu.Lock()
	f.commands = append(f.commands, c)
	f.mu.Unlock()
}

// snapshot waits until the client has closed its connections (it does
// once the goodbye is answered), then returns what it sent.
func (f *recordingFront) snapshot() (int, []rawCommand, error) {
	done := make(chan struct{})
	go func() { f.conn.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conns, slices.Clone(f.commands), f.parseErr
}

func (f *recordingFront) parse(r *bufio.Reader) {
	var err error
	for err == nil {
		var c rawCommand
		switch f.proto {
		case endpoint.IMAP:
			c, err = readIMAPCommand(r)
		default:
			c, err = readLineCommand(r, f.proto)
		}
		if err != nil {
			break
		}
		f.record(c)
		// SASL responses that follow a command on lines of their own.
		for range saslLines(f.proto, c) {
			var line string
			if line, err = readCRLF(r); err != nil {
				break
			}
			f.record(rawCommand{Args: []string{line}, Raw: line + "\r\n"})
		}
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isTimeout(err) && !f.saidGoodbye() {
		f.mu.Lock()
		f.parseErr = err
		f.mu.Unlock()
	}
}

// saidGoodbye reports whether the last command was QUIT or LOGOUT: then the
// stream is complete, and a reset instead of an end of file only means that
// the client closed with the server's goodbye unread (Windows then resets
// the connection; seen under Wine).
func (f *recordingFront) saidGoodbye() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.commands) == 0 {
		return false
	}
	v := f.commands[len(f.commands)-1].Verb
	return v == "QUIT" || v == "LOGOUT"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// saslLines is the number of client lines after c that are SASL responses.
func saslLines(proto endpoint.Protocol, c rawCommand) []struct{} {
	n := 0
	switch {
	case proto == endpoint.IMAP && c.Verb == "AUTHENTICATE" && len(c.Args) == 1:
		n = 1 // no initial response
	case proto == endpoint.SMTP && c.Verb == "AUTH" && len(c.Args) >= 1:
		switch strings.ToUpper(c.Args[0]) {
		case "PLAIN":
			n = 1 - min(1, len(c.Args)-1)
		case "LOGIN":
			n = 2 - min(1, len(c.Args)-1)
		}
	}
	return make([]struct{}, n)
}

func readCRLF(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if !strings.HasSuffix(line, "\r\n") {
		return "", fmt.Errorf("line %q ends without CRLF", line)
	}
	return strings.TrimSuffix(line, "\r\n"), nil
}

// readLineCommand reads an SMTP or POP3 command: VERB[ SP args]CRLF. POP3
// takes everything after the first space as the argument (as the sandbox
// and Dovecot do for PASS); SMTP splits on spaces.
func readLineCommand(r *bufio.Reader, proto endpoint.Protocol) (rawCommand, error) {
	line, err := readCRLF(r)
	if err != nil {
		return rawCommand{}, err
	}
	verb, rest, _ := strings.Cut(line, " ")
	c := rawCommand{Verb: strings.ToUpper(verb), Raw: line + "\r\n"}
	switch {
	case rest == "":
	case proto == endpoint.POP3:
		c.Args = []string{rest}
	default:
		c.Args = strings.Split(rest, " ")
	}
	return c, nil
}

// readIMAPCommand reads one IMAP command: tag, verb and arguments, each an
// atom, a quoted string or a literal {n} (which the client sends after the
// server's continuation).
func readIMAPCommand(r *bufio.Reader) (rawCommand, error) {
	var raw bytes.Buffer
	var toks []string
	for {
		b, err := r.ReadByte()
		if err != nil {
			return rawCommand{}, err
		}
		raw.WriteByte(b)
		switch b {
		case ' ':
		case '\r':
			n, err := r.ReadByte()
			if err != nil {
				return rawCommand{}, err
			}
			raw.WriteByte(n)
			if n != '\n' || len(toks) < 2 {
				return rawCommand{}, fmt.Errorf("malformed command %q", raw.String())
			}
			return rawCommand{Verb: strings.ToUpper(toks[1]), Args: toks[2:], Raw: raw.String()}, nil
		case '"':
			var s []byte
			for {
				c, err := r.ReadByte()
				if err != nil {
					return rawCommand{}, err
				}
				raw.WriteByte(c)
				if c == '\r' || c == '\n' {
					return rawCommand{}, fmt.Errorf("CR or LF in a quoted string: %q", raw.String())
				}
				if c == '"' {
					break
				}
				if c == '\\' {
					if c, err = r.ReadByte(); err != nil {
						return rawCommand{}, err
					}
					raw.WriteByte(c)
					if c != '\\' && c != '"' {
						return rawCommand{}, fmt.Errorf("bad escape in %q", raw.String())
					}
				}
				s = append(s, c)
			}
			toks = append(toks, string(s))
		case '{':
			spec, err := r.ReadString('}')
			if err != nil {
				return rawCommand{}, err
			}
			raw.WriteString(spec)
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSuffix(spec, "}"), "+"))
			if err != nil {
				return rawCommand{}, fmt.Errorf("bad literal %q", spec)
			}
			crlf := make([]byte, 2)
			if _, err := io.ReadFull(r, crlf); err != nil || string(crlf) != "\r\n" {
				return rawCommand{}, fmt.Errorf("literal %q not followed by CRLF", spec)
			}
			raw.Write(crlf)
			lit := make([]byte, n)
			if _, err := io.ReadFull(r, lit); err != nil {
				return rawCommand{}, err
			}
			raw.Write(lit)
			toks = append(toks, string(lit))
		default:
			atom := []byte{b}
			for {
				c, err := r.ReadByte()
				if err != nil {
					return rawCommand{}, err
				}
				if c == ' ' || c == '\r' {
					r.UnreadByte()
					break
				}
				raw.WriteByte(c)
				atom = append(atom, c)
			}
			toks = append(toks, string(atom))
		}
	}
}

// credentials decodes the user name and password that commands carried,
// and the verbs sent, checking each verb is one a login needs.
func credentials(proto endpoint.Protocol, cmds []rawCommand) (user, pass string, verbs []string, err error) {
	allowed := map[endpoint.Protocol][]string{
		endpoint.IMAP: {"CAPABILITY", "LOGIN", "AUTHENTICATE", "LOGOUT"},
		endpoint.SMTP: {"EHLO", "HELO", "AUTH", "QUIT"},
		endpoint.POP3: {"CAPA", "USER", "PASS", "QUIT"},
	}[proto]
	var sasl []string
	auth := 0
	for i, c := range cmds {
		verbs = append(verbs, c.Verb)
		if c.Verb == "" {
			if i == 0 || cmds[i-1].Verb != "AUTHENTICATE" && cmds[i-1].Verb != "AUTH" && cmds[i-1].Verb != "" {
				return "", "", verbs, fmt.Errorf("a line that is no command: %q", c.Raw)
			}
			sasl = append(sasl, c.Args[0])
			continue
		}
		if !slices.Contains(allowed, c.Verb) {
			return "", "", verbs, fmt.Errorf("unexpected command %q", c.Raw)
		}
		switch c.Verb {
		case "LOGIN":
			auth++
			if len(c.Args) != 2 {
				return "", "", verbs, fmt.Errorf("LOGIN with %d arguments: %q", len(c.Args), c.Raw)
			}
			user, pass = c.Args[0], c.Args[1]
		case "AUTHENTICATE", "AUTH":
			auth++
			sasl = append(sasl, c.Args[1:]...)
			if len(c.Args) == 0 {
				return "", "", verbs, fmt.Errorf("%s without mechanism", c.Verb)
			}
			if m := strings.ToUpper(c.Args[0]); m != "PLAIN" && m != "LOGIN" {
				return "", "", verbs, fmt.Errorf("mechanism %s", m)
			}
		case "USER":
			auth++
			user = strings.Join(c.Args, " ")
		case "PASS":
			pass = strings.Join(c.Args, " ")
		}
	}
	if auth != 1 {
		return "", "", verbs, fmt.Errorf("%d authentication commands, want 1", auth)
	}
	if len(sasl) > 0 {
		var dec []string
		for _, s := range sasl {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return "", "", verbs, fmt.Errorf("SASL response %q: %v", s, err)
			}
			dec = append(dec, string(b))
		}
		switch len(dec) {
		case 1: // PLAIN: authzid NUL authcid NUL password
			parts := strings.Split(dec[0], "\x00")
			if len(parts) != 3 {
				return "", "", verbs, fmt.Errorf("SASL PLAIN response with %d parts", len(parts))
			}
			user, pass = parts[1], parts[2]
		case 2: // LOGIN
			user, pass = dec[0], dec[1]
		}
	}
	return user, pass, verbs, nil
}

// TestInjectionMailProtocols logs in with user names and passwords made
// of what could break out of a command — CR, LF, NUL, quotes, backslashes,
// spaces, braces, non-ASCII, 300 characters — through recording fronts
// that parse what the client sent as the server does. Each either works,
// the exact user name and password reaching the server inside the one
// authentication command, with no other command than a login needs, or is
// refused before any connection with a protocol_error saying why.
func TestInjectionMailProtocols(t *testing.T) {
	sb, err := sandbox.Start(sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	long := strings.Repeat("Lönger-pw-", 30) // 300 characters, 330 bytes
	cases := []struct {
		name, user, pass string
		refused          map[endpoint.Protocol]bool // refused before connecting
	}{
		{"spaces", "alice smith", "pass word with  spaces ", nil},
		{"quotes and backslashes", `al"ice\`, `p"a\ss\\"w"ord\`, nil},
		{"IMAP syntax", "{5}", `x" {3}` + "\r\n" + `A2 DELETE INBOX`, map[endpoint.Protocol]bool{endpoint.POP3: true}},
		{"CR LF command in the password", "alice", "pw\r\nA2 LOGOUT\r\nQUIT\r\nRSET", map[endpoint.Protocol]bool{endpoint.POP3: true}},
		{"lone LF and CR", "alice", "a\nb\rc", map[endpoint.Protocol]bool{endpoint.POP3: true}},
		{"non-ASCII", "élodie@exämple.org", "pässwörd-日本語-🔑", nil},
		{"300 characters", strings.Repeat("u", 300), long, nil},
		{"NUL in the password", "alice", "a\x00b", map[endpoint.Protocol]bool{endpoint.IMAP: true, endpoint.POP3: true, endpoint.SMTP: true}},
		{"CR LF in the user name", "alice\r\nA2 LOGOUT", "pw", map[endpoint.Protocol]bool{endpoint.IMAP: true, endpoint.POP3: true, endpoint.SMTP: true}},
		{"NUL in the user name", "al\x00ice", "pw", map[endpoint.Protocol]bool{endpoint.IMAP: true, endpoint.POP3: true, endpoint.SMTP: true}},
	}
	servers := map[endpoint.Protocol]string{endpoint.IMAP: sb.IMAPS, endpoint.POP3: sb.POP3S, endpoint.SMTP: sb.SMTPS}
	for _, tc := range cases {
		for _, proto := range []endpoint.Protocol{endpoint.IMAP, endpoint.POP3, endpoint.SMTP} {
			t.Run(tc.name+"/"+string(proto), func(t *testing.T) {
				front := startFront(t, sb, proto, servers[proto])
				sb.SetPassword(tc.user, tc.pass)
				host, port, _ := net.SplitHostPort(front.addr())
				p, _ := strconv.Atoi(port)
				ep := endpoint.Endpoint{Protocol: proto, Host: host, Port: p, Security: endpoint.TLS,
					AuthMethod: endpoint.AuthPasswordCleartext, Username: tc.user}
				mark := len(sb.Logins())
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				res := verify.Login(ctx, ep, tc.pass, verify.Trust{Roots: sb.CAPool})
				logins := sb.Logins()[mark:]
				conns, cmds, perr := front.snapshot()
				if strings.Contains(res.Detail, tc.pass) {
					t.Errorf("detail %q carries the password", res.Detail)
				}
				if tc.refused[proto] {
					if res.Outcome != verify.ProtocolError || res.Detail == "" || conns != 0 || len(logins) != 0 {
						t.Fatalf("outcome %s %q after %d connections, %d logins; want protocol_error before connecting",
							res.Outcome, res.Detail, conns, len(logins))
					}
					t.Logf("refused: %s", res.Detail)
					return
				}
				if res.Outcome != verify.OK {
					t.Fatalf("outcome %s (%s), want ok; client sent %q", res.Outcome, res.Detail, cmds)
				}
				if perr != nil {
					t.Fatalf("the client's stream does not parse as %s commands: %v", proto, perr)
				}
				user, pass, verbs, err := credentials(proto, cmds)
				if err != nil {
					t.Fatalf("%v; commands %q", err, cmds)
				}
				if user != tc.user || pass != tc.pass {
					t.Fatalf("the commands carried user %q password %q, want %q %q", user, pass, tc.user, tc.pass)
				}
				if conns != 1 || len(logins) != 1 || !logins[0].OK || logins[0].Username != tc.user || logins[0].Password != tc.pass {
					t.Fatalf("%d connections; the server saw %d logins (ok %v)", conns, len(logins), len(logins) == 1 && logins[0].OK)
				}
				var raw []string
				for _, c := range cmds {
					raw = append(raw, c.Raw)
				}
				t.Logf("commands %v: %q", verbs, raw)
			})
		}
	}
}

// The recorders' parsers catch what a broken client would send: an
// injected command after the login, a password split over lines.
func TestInjectionDetector(t *testing.T) {
	for _, c := range []struct {
		proto endpoint.Protocol
		raw   string
	}{
		{endpoint.IMAP, "T1 LOGIN alice \"pw\"\r\nA2 DELETE INBOX\r\nT2 LOGOUT\r\n"},
		{endpoint.IMAP, "T1 LOGIN alice pw\r\nA2 LOGOUT\r\nT2 LOGIN alice pw\r\n"},
		{endpoint.SMTP, "EHLO x\r\nAUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00alice\x00pw")) + "\r\nRSET\r\nQUIT\r\n"},
		{endpoint.POP3, "CAPA\r\nUSER alice\r\nPASS pw\r\nDELE 1\r\nQUIT\r\n"},
	} {
		r := bufio.NewReader(strings.NewReader(c.raw))
		var cmds []rawCommand
		for {
			var cmd rawCommand
			var err error
			if c.proto == endpoint.IMAP {
				cmd, err = readIMAPCommand(r)
			} else {
				cmd, err = readLineCommand(r, c.proto)
			}
			if err != nil {
				break
			}
			cmds = append(cmds, cmd)
		}
		if _, _, _, err := credentials(c.proto, cmds); err == nil {
			t.Errorf("%s %q: not detected", c.proto, c.raw)
		}
	}
}
