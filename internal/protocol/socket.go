package protocol

// The local socket (PROTOCOL.md, "The local socket"). While the extension's
// session lasts, the host also accepts connections on a per-user local
// socket (internal/localsock) from `credsync sync`, and serves them with
// socketHandlers only: a local program can never reach the extension's
// requests (change, verify, …), and a socket sync only logs in to servers
// that Thunderbird itself reported.
//
// When: the host listens once its first message has been read and the
// session is still open ListenDelay (1 s) later. `credsync doctor` starts
// the host with a hello and closes its input as soon as the reply arrives,
// so its probe never listens; Thunderbird keeps the extension's port open.
// If the socket is taken (another host listens), the host tries again
// every ListenRetry (30 s). It stops listening, and removes the socket,
// when the session ends.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/code"
	"github.com/credsync/credsync/internal/endpoint"
	"github.com/credsync/credsync/internal/flow"
	"github.com/credsync/credsync/internal/verify"
	"github.com/credsync/credsync/internal/wire"
)

const (
	defaultListenDelay = time.Second
	defaultListenRetry = 30 * time.Second
	// socketMaxIncoming caps a frame on the socket: a sync request is a
	// password and a user name.
	socketMaxIncoming = 64 << 10
	// socketIdle is how long a connection may wait before its next request.
	socketIdle = time.Minute
	// socketWriteTimeout bounds the sending of one reply.
	socketWriteTimeout = 10 * time.Second
	// maxSocketConns caps the connections served at once; more are closed.
	maxSocketConns = 4
)

// socketHandler answers one request type on the socket. ext is the
// extension's session: the socket's own connection carries only the
// request and its reply.
type socketHandler func(ctx context.Context, ext *session, id string, req gjson.Result) (any, error)

// socketHandlers is everything the socket serves.
var socketHandlers = map[string]socketHandler{
	"sync": socketSync,
}

// listenSoon starts the socket listener after the host's ListenDelay, if
// the session is still open then, and serves it until ctx ends.
func (s *session) listenSoon(ctx context.Context, running *sync.WaitGroup) {
	h := s.host
	if h.Listen == nil {
		return
	}
	delay, retry := h.ListenDelay, h.ListenRetry
	if delay <= 0 {
		delay = defaultListenDelay
	}
	if retry <= 0 {
		retry = defaultListenRetry
	}
	running.Add(1)
	go func() {
		defer running.Done()
		timer := time.NewTimer(delay)
		defer timer.Stop()
		var lastErr string
		for {
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
			ln, path, err := h.Listen()
			if err == nil {
				s.log.Printf("listening for credsync sync on %s", path)
				s.acceptSocket(ctx, ln)
				s.log.Printf("stopped listening on %s", path)
				return
			}
			if err.Error() != lastErr {
				lastErr = err.Error()
				s.log.Printf("not listening for credsync sync: %v (trying again every %v)", err, retry)
			}
			timer.Reset(retry)
		}
	}()
}

// acceptSocket serves ln's connections until ctx ends, then closes ln and
// waits for the connections.
func (s *session) acceptSocket(ctx context.Context, ln net.Listener) {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var conns sync.WaitGroup
	defer conns.Wait()
	defer ln.Close()
	slots := make(chan struct{}, maxSocketConns)
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// A connection from another user (localsock.ErrRejected), or a
			// passing failure: the listener goes on.
			s.log.Printf("local socket: %v", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		select {
		case slots <- struct{}{}:
		default:
			s.log.Printf("local socket: refused a connection: %d already open", maxSocketConns)
			refuseBusy(conn)
			continue
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			defer func() { <-slots }()
			s.serveSocketConn(ctx, conn)
		}()
	}
}

// serveSocketConn answers one connection's requests one at a time.
func (s *session) serveSocketConn(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	client := &session{host: s.host, out: wire.NewWriter(deadlineWriter{conn}), log: s.log}
	frames := wire.NewReader(conn, socketMaxIncoming)
	for {
		conn.SetReadDeadline(time.Now().Add(socketIdle))
		body, err := frames.Read()
		var tooLarge *wire.TooLargeError
		switch {
		case errors.As(err, &tooLarge):
			client.send(errorReply(nil, &Error{Code: code.MessageTooLarge, Message: tooLarge.Error(), Limit: tooLarge.Limit}))
			continue
		case err != nil:
			if err != io.EOF && ctx.Err() == nil {
				s.log.Printf("local socket: %v", err)
			}
			return
		}
		conn.SetReadDeadline(time.Time{})
		client.answerSocket(ctx, s, body)
	}
}

// refuseBusy tells a connection over the cap, before reading anything
// from it, that the host is busy, then closes it: `credsync sync` can say
// for sure that its request was not sent.
func refuseBusy(conn net.Conn) {
	defer conn.Close()
	body, _ := json.Marshal(errorReply(nil, &Error{Code: code.Busy, Message: fmt.Sprintf("the host already serves %d connections; nothing was read", maxSocketConns)}))
	wire.NewWriter(deadlineWriter{conn}).Write(body)
}

// deadlineWriter bounds each write, so a client that stops reading does
// not hold the host.
type deadlineWriter struct{ net.Conn }

func (w deadlineWriter) Write(p []byte) (int, error) {
	w.SetWriteDeadline(time.Now().Add(socketWriteTimeout))
	return w.Conn.Write(p)
}

// answerSocket answers one request read from the socket (client) with the
// help of the extension's session ext.
func (client *session) answerSocket(ctx context.Context, ext *session, body []byte) {
	if err := checkShape(body); err != nil || !gjson.ValidBytes(body) {
		msg := "the frame is not valid UTF-8 JSON"
		if err != nil {
			msg = err.Error()
		}
		client.send(errorReply(nil, &Error{Code: code.InvalidJSON, Message: msg}))
		return
	}
	msg := gjson.ParseBytes(body)
	if !msg.IsObject() {
		client.send(errorReply(nil, &Error{Code: code.InvalidJSON, Message: "the message is not a JSON object"}))
		return
	}
	id, err := requiredString(msg, "id", 1, 128)
	if err != nil {
		client.send(errorReply(nil, err))
		return
	}
	typ, err := requiredString(msg, "type", 1, 64)
	if err != nil {
		client.send(errorReply(&id, err))
		return
	}
	handle, known := socketHandlers[typ]
	if !known {
		client.send(errorReply(&id, &Error{Code: code.UnknownType, Message: fmt.Sprintf("the local socket does not serve %q requests", truncate(typ, 64))}))
		return
	}
	result, rerr := func() (result any, err error) {
		defer func() {
			if p := recover(); p != nil {
				ext.log.Printf("socket %s request failed: %v\n%s", typ, p, debug.Stack())
				result, err = nil, &Error{Code: code.InternalError, Message: "credsync failed unexpectedly"}
			}
		}()
		return handle(withSocket(ctx), ext, id, msg)
	}()
	if rerr != nil {
		ext.log.Printf("socket %s request: %v", typ, codeOf(rerr))
		client.send(errorReply(&id, rerr))
		return
	}
	client.send(okReply{ID: id, Status: "ok", Result: result})
}

type socketSyncResult struct {
	Accounts []socketAccount `json:"accounts"`
}

// socketAccount is what a socket sync did for one account.
type socketAccount struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Stored  bool      `json:"stored"`
	Code    code.Code `json:"code,omitempty"`
	Message string    `json:"message,omitempty"`
	// Servers are the servers that did not accept the password.
	Servers     []serverJSON `json:"servers,omitempty"`
	AuditFailed bool         `json:"auditFailed,omitempty"`
}

// socketSync stores a password changed elsewhere in every login it belongs
// to, starting from the Thunderbird accounts whose incoming server has the
// given user name and host (PROTOCOL.md, "sync (socket)"): one transaction,
// as the extension's sync. Only servers that the extension reports are
// contacted.
func socketSync(ctx context.Context, ext *session, _ string, req gjson.Result) (any, error) {
	m := req.Get("match")
	if !m.IsObject() {
		return nil, invalid("match", `member "match" must be an object`)
	}
	username, err := requiredString(m, "username", 1, endpoint.MaxUsername)
	if err != nil {
		return nil, prefix("match", err)
	}
	host, err := requiredString(m, "host", 1, 253)
	if err != nil {
		return nil, prefix("match", err)
	}
	pw, err := password(req, "password", false)
	if err != nil {
		return nil, err
	}

	res, ferr := ext.engine.Sync(ctx, flow.Trigger{Username: username, Host: host}, pw, func(flow.Step, flow.State) {})
	result := socketSyncResult{Accounts: []socketAccount{}}
	var failure errorReplyMsg
	if ferr != nil {
		failure = errorReply(nil, ferr)
		if failure.Code == code.UnknownAccount || failure.Code == code.InternalError || len(failure.Accounts) == 0 && len(res.Skipped) == 0 {
			return nil, ferr
		}
	}
	var refusing []serverJSON
	for _, s := range failure.Servers {
		if s.Outcome != verify.OK {
			refusing = append(refusing, s)
		}
	}
	accounts := members(res.Accounts, nil, nil).Accounts
	if ferr != nil {
		accounts = failure.Accounts
	}
	var summary []string
	for _, a := range accounts {
		r := socketAccount{ID: a.ID, Name: a.Name, Stored: ferr == nil, AuditFailed: res.AuditFailed}
		if ferr != nil {
			r.Code, r.Message, r.Servers, r.AuditFailed = failure.Code, failure.Message, refusing, failure.AuditFailed
		}
		result.Accounts = append(result.Accounts, r)
	}
	for _, a := range res.Skipped {
		result.Accounts = append(result.Accounts, socketAccount{ID: a.ID, Name: truncate(a.Name, maxName), Code: code.NotPasswordAccount,
			Message: "the account signs in without a password (OAuth2, Kerberos, NTLM or a certificate)"})
	}
	for _, r := range result.Accounts {
		outcome := "stored"
		if !r.Stored {
			outcome = string(r.Code)
		}
		summary = append(summary, r.ID+" "+outcome)
	}
	ext.log.Printf("socket sync: %s", strings.Join(summary, ", "))
	return result, nil
}
