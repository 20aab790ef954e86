package marionette

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeServer is a Marionette server over loopback. handle is called for each
// command and writes whatever it wants (possibly nothing) with reply/raw.
type fakeServer struct {
	t        *testing.T
	ln       net.Listener
	greeting string
	handle   func(s *fakeConn, id int64, name string, params json.RawMessage)

	mu   sync.Mutex
	cmds []string
}

type fakeConn struct {
	conn net.Conn
	r    *bufio.Reader
}

func (c *fakeConn) raw(s string) {
	_, _ = io.WriteString(c.conn, s)
}

func (c *fakeConn) packet(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	c.raw(strconv.Itoa(len(b)) + ":" + string(b))
}

func (c *fakeConn) reply(id int64, result any) { c.packet([]any{1, id, nil, result}) }

func (c *fakeConn) fail(id int64, name, msg string) {
	c.packet([]any{1, id, map[string]string{"error": name, "message": msg, "stacktrace": "st"}, nil})
}

func newFakeServer(t *testing.T, handle func(s *fakeConn, id int64, name string, params json.RawMessage)) *fakeServer {
	t.Helper()
	return newFakeServerGreeting(t, `{"applicationType":"gecko","marionetteProtocol":3}`, handle)
}

func newFakeServerGreeting(t *testing.T, greeting string, handle func(s *fakeConn, id int64, name string, params json.RawMessage)) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := &fakeServer{t: t, ln: ln, handle: handle, greeting: greeting}
	t.Cleanup(func() { ln.Close() })
	go fs.serve()
	return fs
}

func (fs *fakeServer) addr() string { return fs.ln.Addr().String() }

func (fs *fakeServer) commands() []string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]string(nil), fs.cmds...)
}

func (fs *fakeServer) serve() {
	for {
		conn, err := fs.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			c := &fakeConn{conn: conn, r: bufio.NewReader(conn)}
			c.raw(strconv.Itoa(len(fs.greeting)) + ":" + fs.greeting)
			for {
				lenStr, err := c.r.ReadString(':')
				if err != nil {
					return
				}
				n, err := strconv.Atoi(strings.TrimSuffix(lenStr, ":"))
				if err != nil {
					fs.t.Errorf("fake: bad length %q", lenStr)
					return
				}
				buf := make([]byte, n)
				if _, err := io.ReadFull(c.r, buf); err != nil {
					return
				}
				var msg []json.RawMessage
				if err := json.Unmarshal(buf, &msg); err != nil || len(msg) != 4 {
					fs.t.Errorf("fake: bad command %q", buf)
					return
				}
				var typ, id int64
				var name string
				_ = json.Unmarshal(msg[0], &typ)
				_ = json.Unmarshal(msg[1], &id)
				_ = json.Unmarshal(msg[2], &name)
				if typ != 0 {
					fs.t.Errorf("fake: command type %d", typ)
				}
				fs.mu.Lock()
				fs.cmds = append(fs.cmds, name+" "+string(msg[3]))
				fs.mu.Unlock()
				fs.handle(c, id, name, msg[3])
			}
		}()
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func dial(t *testing.T, fs *fakeServer) *Client {
	t.Helper()
	c, err := Dial(ctx(t), fs.addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestGreeting(t *testing.T) {
	fs := newFakeServer(t, func(*fakeConn, int64, string, json.RawMessage) {})
	c := dial(t, fs)
	if c.Protocol != 3 || c.ApplicationType != "gecko" {
		t.Fatalf("greeting parsed as %d %q", c.Protocol, c.ApplicationType)
	}
}

func TestGreetingWrongProtocol(t *testing.T) {
	fs := newFakeServerGreeting(t, `{"applicationType":"gecko","marionetteProtocol":2}`,
		func(*fakeConn, int64, string, json.RawMessage) {})
	if _, err := Dial(ctx(t), fs.addr()); err == nil || !strings.Contains(err.Error(), "unsupported protocol 2") {
		t.Fatalf("Dial = %v, want unsupported protocol", err)
	}
}

func TestCommandsRoundTrip(t *testing.T) {
	var gotScript string
	var gotArgs []any
	fs := newFakeServer(t, func(c *fakeConn, id int64, name string, params json.RawMessage) {
		switch name {
		case "WebDriver:NewSession":
			c.reply(id, map[string]any{"sessionId": "abc", "capabilities": map[string]any{}})
		case "Marionette:SetContext", "WebDriver:SetTimeouts", "Addon:Uninstall", "WebDriver:SwitchToWindow":
			c.reply(id, nil)
		case "WebDriver:ExecuteScript":
			var p struct {
				Script string `json:"script"`
				Args   []any  `json:"args"`
			}
			_ = json.Unmarshal(params, &p)
			gotScript, gotArgs = p.Script, p.Args
			c.reply(id, map[string]any{"value": map[string]any{"sum": 3, "s": "x"}})
		case "WebDriver:GetWindowHandles":
			c.reply(id, []string{"h1", "h2"})
		case "Addon:Install":
			c.reply(id, map[string]any{"value": "a@b"})
		default:
			c.fail(id, "unknown command", name)
		}
	})
	c := dial(t, fs)
	cx := ctx(t)
	sid, err := c.NewSession(cx)
	if err != nil || sid != "abc" {
		t.Fatalf("NewSession = %q, %v", sid, err)
	}
	if err := c.SetContext(cx, Chrome); err != nil {
		t.Fatal(err)
	}
	if err := c.SetScriptTimeout(cx, 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	var out struct {
		Sum int    `json:"sum"`
		S   string `json:"s"`
	}
	if err := c.ExecuteScript(cx, "return arguments[0] + arguments[1];", []any{1, 2}, &out); err != nil {
		t.Fatal(err)
	}
	if out.Sum != 3 || out.S != "x" {
		t.Fatalf("script value %+v", out)
	}
	if !strings.HasPrefix(gotScript, "return (async function() {\n") ||
		!strings.Contains(gotScript, "return arguments[0] + arguments[1];") ||
		!strings.HasSuffix(gotScript, "}).apply(null, arguments);") {
		t.Fatalf("script not wrapped: %q", gotScript)
	}
	if len(gotArgs) != 2 || gotArgs[0] != float64(1) {
		t.Fatalf("args = %v", gotArgs)
	}
	hs, err := c.WindowHandles(cx)
	if err != nil || len(hs) != 2 || hs[1] != "h2" {
		t.Fatalf("WindowHandles = %v, %v", hs, err)
	}
	if err := c.SwitchToWindow(cx, "h2"); err != nil {
		t.Fatal(err)
	}
	id, err := c.InstallAddon(cx, "/tmp/x", true)
	if err != nil || id != "a@b" {
		t.Fatalf("InstallAddon = %q, %v", id, err)
	}
	if err := c.UninstallAddon(cx, "a@b"); err != nil {
		t.Fatal(err)
	}
	// A nil out discards the value.
	if err := c.ExecuteScript(cx, "return 1;", nil, nil); err != nil {
		t.Fatal(err)
	}

	cmds := fs.commands()
	want := []string{
		`WebDriver:NewSession {"capabilities":{}}`,
		`Marionette:SetContext {"value":"chrome"}`,
		`WebDriver:SetTimeouts {"script":1500}`,
	}
	for i, w := range want {
		if cmds[i] != w {
			t.Errorf("command %d = %s, want %s", i, cmds[i], w)
		}
	}
	if !strings.Contains(cmds[6], `"path":"/tmp/x"`) || !strings.Contains(cmds[6], `"temporary":true`) {
		t.Errorf("Addon:Install params %s", cmds[6])
	}
	if !strings.Contains(cmds[8], `"args":[]`) {
		t.Errorf("nil args not sent as []: %s", cmds[8])
	}
}

func TestRemoteError(t *testing.T) {
	fs := newFakeServer(t, func(c *fakeConn, id int64, name string, _ json.RawMessage) {
		c.fail(id, "javascript error", "ReferenceError: x is not defined")
	})
	c := dial(t, fs)
	err := c.ExecuteScript(ctx(t), "return x;", nil, nil)
	var me *Error
	if !errors.As(err, &me) {
		t.Fatalf("err = %v (%T), want *Error", err, err)
	}
	if me.Name != "javascript error" || me.Message != "ReferenceError: x is not defined" || me.Stacktrace != "st" {
		t.Fatalf("error = %+v", me)
	}
	if !strings.Contains(err.Error(), "ReferenceError") {
		t.Fatalf("Error() = %q", err.Error())
	}
}

// The client skips packets that are not the response to its command and
// reassembles packets split across many writes.
func TestSkipsForeignPacketsAndFragmentation(t *testing.T) {
	fs := newFakeServer(t, func(c *fakeConn, id int64, name string, _ json.RawMessage) {
		c.packet([]any{1, id - 1, nil, map[string]any{"value": "stale"}})
		c.packet([]any{0, 99, "Event", map[string]any{}})
		b, _ := json.Marshal([]any{1, id, nil, map[string]any{"value": strings.Repeat("é", 5000)}})
		s := strconv.Itoa(len(b)) + ":" + string(b)
		for i := 0; i < len(s); i += 7 {
			end := min(i+7, len(s))
			c.raw(s[i:end])
		}
	})
	c := dial(t, fs)
	var v string
	if err := c.ExecuteScript(ctx(t), "", nil, &v); err != nil {
		t.Fatal(err)
	}
	if v != strings.Repeat("é", 5000) {
		t.Fatalf("value has %d bytes", len(v))
	}
}

func TestBadFraming(t *testing.T) {
	for name, raw := range map[string]string{
		"letter in length": "1x:{}",
		"no length":        ":[]",
		"too large":        fmt.Sprintf("%d:", MaxPacket+1),
		"short body":       "100:[1,1,null,{}]",
		"not an array":     "2:{}",
	} {
		t.Run(name, func(t *testing.T) {
			fs := newFakeServer(t, func(c *fakeConn, id int64, _ string, _ json.RawMessage) {
				c.raw(raw)
				if name == "short body" {
					c.conn.Close()
				}
			})
			c := dial(t, fs)
			if _, err := c.Send(ctx(t), "X", nil); err == nil {
				t.Fatal("Send succeeded on a bad packet")
			}
		})
	}
}

func TestContextCancelAbortsRead(t *testing.T) {
	fs := newFakeServer(t, func(*fakeConn, int64, string, json.RawMessage) {}) // never answers
	c := dial(t, fs)
	cx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	start := time.Now()
	_, err := c.Send(cx, "X", nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("cancel did not abort the read")
	}
}

func TestDeadline(t *testing.T) {
	fs := newFakeServer(t, func(*fakeConn, int64, string, json.RawMessage) {})
	c := dial(t, fs)
	cx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	if _, err := c.Send(cx, "X", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}

func TestQuitTreatsEOFAsSuccess(t *testing.T) {
	fs := newFakeServer(t, func(c *fakeConn, id int64, name string, params json.RawMessage) {
		if name == "Marionette:Quit" && strings.Contains(string(params), "eForceQuit") {
			c.conn.Close() // the application exits without replying
		}
	})
	c := dial(t, fs)
	if err := c.Quit(ctx(t)); err != nil {
		t.Fatalf("Quit = %v", err)
	}
}

func TestQuitWithReply(t *testing.T) {
	fs := newFakeServer(t, func(c *fakeConn, id int64, name string, _ json.RawMessage) {
		c.reply(id, map[string]any{"cause": "shutdown"})
	})
	c := dial(t, fs)
	if err := c.Quit(ctx(t)); err != nil {
		t.Fatalf("Quit = %v", err)
	}
}

func TestDialRetry(t *testing.T) {
	// Reserve a port, close it, and start listening on it a little later.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	go func() {
		time.Sleep(300 * time.Millisecond)
		ln2, err := net.Listen("tcp", addr)
		if err != nil {
			return // port taken meanwhile; the test then fails on its deadline
		}
		t.Cleanup(func() { ln2.Close() })
		conn, err := ln2.Accept()
		if err != nil {
			return
		}
		g := `{"applicationType":"gecko","marionetteProtocol":3}`
		_, _ = io.WriteString(conn, strconv.Itoa(len(g))+":"+g)
		t.Cleanup(func() { conn.Close() })
	}()
	c, err := DialRetry(ctx(t), addr, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	cx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := DialRetry(cx, "127.0.0.1:1", 50*time.Millisecond); err == nil {
		t.Fatal("DialRetry to a closed port succeeded")
	}
}

func TestConcurrentSendsAreSerialised(t *testing.T) {
	fs := newFakeServer(t, func(c *fakeConn, id int64, _ string, params json.RawMessage) {
		var p struct {
			Args []int `json:"args"`
		}
		_ = json.Unmarshal(params, &p)
		c.reply(id, map[string]any{"value": p.Args[0] * 2})
	})
	c := dial(t, fs)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var v int
			if err := c.ExecuteScript(ctx(t), "", []any{i}, &v); err != nil || v != 2*i {
				t.Errorf("call %d: %d, %v", i, v, err)
			}
		}()
	}
	wg.Wait()
}
