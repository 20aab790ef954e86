// Package marionette is a small client for Gecko's Marionette remote protocol
// (protocol level 3), enough to drive Thunderbird from tests: new session,
// chrome/content context, script execution, window handles, temporary add-on
// install and quit.
//
// Wire format (both directions): "<decimal byte length>:<JSON>". The server
// greets with {"applicationType":"gecko","marionetteProtocol":3}. A command is
// [0, id, name, params]; its response is [1, id, error, result].
package marionette

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

// MaxPacket bounds one incoming packet (a script result can be large, but not this large).
const MaxPacket = 64 << 20

// Error is an error reported by the remote end.
type Error struct {
	Name       string `json:"error"`
	Message    string `json:"message"`
	Stacktrace string `json:"stacktrace"`
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "marionette: " + e.Name
	}
	return "marionette: " + e.Name + ": " + e.Message
}

// Client is one Marionette connection. Commands are serialised; a Client is
// safe for concurrent use but runs one command at a time.
type Client struct {
	mu     sync.Mutex
	conn   net.Conn
	r      *bufio.Reader
	nextID int64

	// Protocol and ApplicationType come from the server's greeting.
	Protocol        int
	ApplicationType string

	// ReadTimeout bounds the wait for one response when the context has no
	// earlier deadline. Zero means 120 s.
	ReadTimeout time.Duration
}

// Dial connects to addr (host:port) and reads the greeting. It does not retry.
func Dial(ctx context.Context, addr string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &Client{conn: conn, r: bufio.NewReader(conn)}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetReadDeadline(dl)
	} else {
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	}
	pkt, err := c.readPacket()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("marionette: reading greeting: %w", err)
	}
	var g struct {
		ApplicationType    string `json:"applicationType"`
		MarionetteProtocol int    `json:"marionetteProtocol"`
	}
	if err := json.Unmarshal(pkt, &g); err != nil {
		conn.Close()
		return nil, fmt.Errorf("marionette: bad greeting %q: %w", truncate(pkt), err)
	}
	if g.MarionetteProtocol != 3 {
		conn.Close()
		return nil, fmt.Errorf("marionette: unsupported protocol %d (want 3)", g.MarionetteProtocol)
	}
	c.Protocol, c.ApplicationType = g.MarionetteProtocol, g.ApplicationType
	return c, nil
}

// DialRetry calls Dial every interval until it succeeds or ctx ends.
func DialRetry(ctx context.Context, addr string, interval time.Duration) (*Client, error) {
	for {
		c, err := Dial(ctx, addr)
		if err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("marionette: connecting to %s: %w (last error: %v)", addr, ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

// readPacket reads one "<len>:<json>" packet.
func (c *Client) readPacket() ([]byte, error) {
	n := 0
	digits := 0
	for {
		b, err := c.r.ReadByte()
		if err != nil {
			if err == io.EOF && digits > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if b == ':' {
			if digits == 0 {
				return nil, errors.New("marionette: packet without length")
			}
			break
		}
		if b < '0' || b > '9' {
			return nil, fmt.Errorf("marionette: bad length byte %q", b)
		}
		digits++
		n = n*10 + int(b-'0')
		if n > MaxPacket {
			return nil, fmt.Errorf("marionette: packet larger than %d bytes", MaxPacket)
		}
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(c.r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

func writePacket(w io.Writer, body []byte) error {
	pkt := make([]byte, 0, len(body)+12)
	pkt = strconv.AppendInt(pkt, int64(len(body)), 10)
	pkt = append(pkt, ':')
	pkt = append(pkt, body...)
	_, err := w.Write(pkt)
	return err
}

// Send runs one command and returns its raw result. A remote error is
// returned as *Error.
func (c *Client) Send(ctx context.Context, name string, params any) (json.RawMessage, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if params == nil {
		params = struct{}{}
	}
	c.nextID++
	id := c.nextID
	body, err := json.Marshal([]any{0, id, name, params})
	if err != nil {
		return nil, fmt.Errorf("marionette: encoding %s: %w", name, err)
	}
	dl, ok := ctx.Deadline()
	if !ok {
		t := c.ReadTimeout
		if t == 0 {
			t = 120 * time.Second
		}
		dl = time.Now().Add(t)
	}
	_ = c.conn.SetDeadline(dl)
	// Abort a blocked read when ctx is cancelled.
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if err := writePacket(c.conn, body); err != nil {
		return nil, c.ctxErr(ctx, fmt.Errorf("marionette: sending %s: %w", name, err))
	}
	for {
		pkt, err := c.readPacket()
		if err != nil {
			return nil, c.ctxErr(ctx, fmt.Errorf("marionette: awaiting %s: %w", name, err))
		}
		var msg []json.RawMessage
		if err := json.Unmarshal(pkt, &msg); err != nil || len(msg) != 4 {
			return nil, fmt.Errorf("marionette: bad response to %s: %q", name, truncate(pkt))
		}
		var typ, rid int64
		if json.Unmarshal(msg[0], &typ) != nil || json.Unmarshal(msg[1], &rid) != nil {
			return nil, fmt.Errorf("marionette: bad response header to %s: %q", name, truncate(pkt))
		}
		if typ != 1 || rid != id {
			continue // not ours (a stale reply or a server-initiated packet)
		}
		if e := string(msg[2]); e != "null" && e != "" {
			var me Error
			if err := json.Unmarshal(msg[2], &me); err != nil {
				return nil, fmt.Errorf("marionette: bad error in response to %s: %q", name, truncate(msg[2]))
			}
			return nil, &me
		}
		return msg[3], nil
	}
}

func (c *Client) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	// The socket deadline equals ctx's and may fire before ctx's own timer.
	if dl, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(dl) {
		return fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
	}
	return err
}

// NewSession starts a WebDriver session and returns its id.
func (c *Client) NewSession(ctx context.Context) (string, error) {
	res, err := c.Send(ctx, "WebDriver:NewSession", map[string]any{"capabilities": map[string]any{}})
	if err != nil {
		return "", err
	}
	var r struct {
		SessionID string `json:"sessionId"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return "", fmt.Errorf("marionette: NewSession result %q: %w", truncate(res), err)
	}
	return r.SessionID, nil
}

// Contexts for SetContext.
const (
	Chrome  = "chrome"
	Content = "content"
)

// SetContext switches between the chrome and content contexts.
func (c *Client) SetContext(ctx context.Context, value string) error {
	_, err := c.Send(ctx, "Marionette:SetContext", map[string]any{"value": value})
	return err
}

// SetScriptTimeout sets the script timeout (WebDriver:SetTimeouts).
func (c *Client) SetScriptTimeout(ctx context.Context, d time.Duration) error {
	_, err := c.Send(ctx, "WebDriver:SetTimeouts", map[string]any{"script": d.Milliseconds()})
	return err
}

// AsyncWrap wraps a script body so that it may use await; arguments stay available.
func AsyncWrap(body string) string {
	return "return (async function() {\n" + body + "\n}).apply(null, arguments);"
}

// ExecuteScript runs body (wrapped by AsyncWrap) with args in the current
// context and decodes the awaited return value into out (which may be nil).
func (c *Client) ExecuteScript(ctx context.Context, body string, args []any, out any) error {
	return c.ExecuteRawScript(ctx, AsyncWrap(body), args, out)
}

// ExecuteRawScript runs script as given (no wrapper).
func (c *Client) ExecuteRawScript(ctx context.Context, script string, args []any, out any) error {
	if args == nil {
		args = []any{}
	}
	res, err := c.Send(ctx, "WebDriver:ExecuteScript", map[string]any{"script": script, "args": args})
	if err != nil {
		return err
	}
	var r struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return fmt.Errorf("marionette: ExecuteScript result %q: %w", truncate(res), err)
	}
	if out == nil {
		return nil
	}
	if len(r.Value) == 0 {
		r.Value = json.RawMessage("null")
	}
	if err := json.Unmarshal(r.Value, out); err != nil {
		return fmt.Errorf("marionette: decoding script value %q: %w", truncate(r.Value), err)
	}
	return nil
}

// WindowHandles returns the content window handles (WebDriver:GetWindowHandles).
func (c *Client) WindowHandles(ctx context.Context) ([]string, error) {
	res, err := c.Send(ctx, "WebDriver:GetWindowHandles", nil)
	if err != nil {
		return nil, err
	}
	var hs []string
	if err := json.Unmarshal(res, &hs); err != nil {
		// Some versions wrap it as {"value": [...]}.
		var w struct {
			Value []string `json:"value"`
		}
		if err2 := json.Unmarshal(res, &w); err2 != nil {
			return nil, fmt.Errorf("marionette: GetWindowHandles result %q: %w", truncate(res), err)
		}
		hs = w.Value
	}
	return hs, nil
}

// SwitchToWindow makes handle the current window (WebDriver:SwitchToWindow).
func (c *Client) SwitchToWindow(ctx context.Context, handle string) error {
	_, err := c.Send(ctx, "WebDriver:SwitchToWindow", map[string]any{"handle": handle, "focus": true})
	return err
}

// InstallAddon installs the add-on at path (an unpacked directory or an .xpi)
// and returns its ID.
func (c *Client) InstallAddon(ctx context.Context, path string, temporary bool) (string, error) {
	res, err := c.Send(ctx, "Addon:Install", map[string]any{"path": path, "temporary": temporary})
	if err != nil {
		return "", err
	}
	var id string
	if err := json.Unmarshal(res, &id); err == nil {
		return id, nil
	}
	var w struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(res, &w); err != nil {
		return "", fmt.Errorf("marionette: Addon:Install result %q: %w", truncate(res), err)
	}
	return w.Value, nil
}

// UninstallAddon removes the add-on with the given ID.
func (c *Client) UninstallAddon(ctx context.Context, id string) error {
	_, err := c.Send(ctx, "Addon:Uninstall", map[string]any{"id": id})
	return err
}

// Quit asks the application to quit (eForceQuit). The connection is closed
// afterwards; an EOF while waiting for the reply counts as success.
func (c *Client) Quit(ctx context.Context) error {
	_, err := c.Send(ctx, "Marionette:Quit", map[string]any{"flags": []string{"eForceQuit"}})
	c.conn.Close()
	if err != nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)) {
		return nil
	}
	return err
}
