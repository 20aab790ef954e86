// Package protocol serves credsync's native-messaging protocol (PROTOCOL.md)
// on one connection: it validates each request, dispatches it by type to its
// handler (one file per type), and sends requests of its own to the
// extension (thunderbird.go).
package protocol

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/audit"
	"github.com/credsync/credsync/internal/code"
	"github.com/credsync/credsync/internal/flow"
	"github.com/credsync/credsync/internal/verify"
	"github.com/credsync/credsync/internal/wire"
)

// Version is the protocol version reported by hello.
const Version = 2

// maxInFlight caps the extension's requests answered at once; more are
// refused with busy, so a flood of requests cannot make the host balloon.
const maxInFlight = 16

// Host serves the protocol.
type Host struct {
	// Version is the credsync version reported by hello.
	Version string
	// Trust verifies the servers' and back-ends' certificates.
	Trust verify.Trust
	// Log receives one line per notable event, never a secret. Nil discards.
	Log *log.Logger
	// MaxIncoming caps request frames (wire.DefaultMaxIncoming when 0).
	MaxIncoming uint32
	// Audit, when set, writes one record per change and sync flow
	// (audit.go).
	Audit func(audit.Record) error
	// Listen, when set, opens the local socket for `credsync sync`
	// (localsock.Listen); the host serves it while the extension's session
	// lasts (socket.go). ListenDelay and ListenRetry default to 1 s and 30 s.
	Listen                   func() (net.Listener, string, error)
	ListenDelay, ListenRetry time.Duration
	// Recheck configures the wait of a change whose servers lag behind the
	// provider (flow.Recheck); nil: the defaults (flow.RecheckSchedule,
	// flow.LockoutBudget).
	Recheck *flow.Recheck
	// verifyTimeout bounds each verification login (flow.Engine's
	// default when 0); tests shorten it.
	verifyTimeout time.Duration
}

// handler answers one request type. It returns the reply's result, or an
// error that becomes an error reply (see errorReply).
type handler func(ctx context.Context, s *session, id string, req gjson.Result) (any, error)

var handlers = map[string]handler{
	"hello":     hello,
	"verify":    verifyRequest,
	"check":     check,
	"plan":      plan,
	"change":    change,
	"sync":      syncRequest,
	"propagate": propagate,
	"cancel":    cancelRequest,
	"expiry":    expiry,
}

// session is one connection: the frame writer, and the host's own requests
// waiting for the extension's replies.
type session struct {
	host   *Host
	engine *flow.Engine
	out    *wire.Writer
	log    *log.Logger
	nextID atomic.Uint64
	// inFlight counts the extension's requests being answered.
	inFlight atomic.Int32

	mu      sync.Mutex
	pending map[string]chan gjson.Result
	// waiters are the changes that may wait for lagging servers, by
	// account (wait.go).
	waiters map[string]*waiter
}

// Serve answers requests read from in until in ends, writing replies and
// events to out. Requests run concurrently, so a flow waiting for the
// extension does not block the reading of the extension's reply.
func (h *Host) Serve(ctx context.Context, in io.Reader, out io.Writer) error {
	s := &session{host: h, out: wire.NewWriter(out), log: h.Log, pending: map[string]chan gjson.Result{}}
	if s.log == nil {
		s.log = log.New(io.Discard, "", 0)
	}
	recheck := h.Recheck
	if recheck == nil {
		recheck = &flow.Recheck{}
	}
	s.engine = &flow.Engine{Trust: h.Trust, Thunderbird: s, Audit: h.auditHook(s.log), VerifyTimeout: h.verifyTimeout, Recheck: recheck}

	ctx, cancel := context.WithCancel(ctx)
	var running sync.WaitGroup
	defer func() {
		cancel()
		running.Wait()
	}()

	frames := wire.NewReader(in, h.MaxIncoming)
	listening := false
	for {
		body, err := frames.Read()
		var tooLarge *wire.TooLargeError
		switch {
		case err == io.EOF:
			return nil
		case errors.As(err, &tooLarge):
			s.log.Printf("refused a frame of %d bytes", tooLarge.Size)
			s.send(errorReply(nil, &Error{Code: code.MessageTooLarge, Message: tooLarge.Error(), Limit: tooLarge.Limit}))
			continue
		case err != nil:
			return fmt.Errorf("reading a frame: %w", err)
		}
		s.dispatch(ctx, body, &running)
		if !listening {
			listening = true
			s.listenSoon(ctx, &running)
		}
	}
}

func (s *session) dispatch(ctx context.Context, body []byte, running *sync.WaitGroup) {
	if err := checkShape(body); err != nil || !gjson.ValidBytes(body) {
		msg := "the frame is not valid UTF-8 JSON"
		if err != nil {
			msg = err.Error()
		}
		s.send(errorReply(nil, &Error{Code: code.InvalidJSON, Message: msg}))
		return
	}
	msg := gjson.ParseBytes(body)
	if !msg.IsObject() {
		s.send(errorReply(nil, &Error{Code: code.InvalidJSON, Message: "the message is not a JSON object"}))
		return
	}
	if msg.Get("status").Exists() {
		s.deliver(msg)
		return
	}
	id, err := requiredString(msg, "id", 1, 128)
	if err != nil {
		s.send(errorReply(nil, err))
		return
	}
	typ, err := requiredString(msg, "type", 1, 64)
	if err != nil {
		s.send(errorReply(&id, err))
		return
	}
	handle, known := handlers[typ]
	if !known {
		s.send(errorReply(&id, &Error{Code: code.UnknownType, Message: fmt.Sprintf("unknown request type %q", truncate(typ, 64))}))
		return
	}
	if s.inFlight.Add(1) > maxInFlight {
		s.inFlight.Add(-1)
		s.send(errorReply(&id, &Error{Code: code.Busy, Message: fmt.Sprintf("%d requests are already running; this one was not started", maxInFlight)}))
		return
	}
	running.Add(1)
	go func() {
		defer running.Done()
		defer s.inFlight.Add(-1)
		defer func() {
			if p := recover(); p != nil {
				s.log.Printf("%s request %q failed: %v\n%s", typ, id, p, debug.Stack())
				s.send(errorReply(&id, &Error{Code: code.InternalError, Message: "credsync failed unexpectedly; nothing was stored"}))
			}
		}()
		result, err := handle(ctx, s, id, msg)
		if err != nil {
			s.log.Printf("%s request %q: %v", typ, id, codeOf(err))
			s.send(errorReply(&id, err))
			return
		}
		s.send(okReply{ID: id, Status: "ok", Result: result})
	}()
}

// deliver hands the extension's reply to the host request waiting for it.
func (s *session) deliver(reply gjson.Result) {
	id := reply.Get("id")
	s.mu.Lock()
	wait, ok := s.pending[id.String()]
	delete(s.pending, id.String())
	s.mu.Unlock()
	if id.Type != gjson.String || !ok {
		s.log.Printf("ignored a reply to no pending request")
		return
	}
	wait <- reply
}

// request sends a request of the host's own and waits for its reply.
func (s *session) request(ctx context.Context, typ string, fields map[string]any) (gjson.Result, error) {
	id := fmt.Sprintf("host-%d", s.nextID.Add(1))
	wait := make(chan gjson.Result, 1)
	s.mu.Lock()
	s.pending[id] = wait
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pending, id)
		s.mu.Unlock()
	}()
	fields["id"], fields["type"] = id, typ
	if err := s.send(fields); err != nil {
		return gjson.Result{}, err
	}
	select {
	case reply := <-wait:
		return reply, nil
	case <-ctx.Done():
		return gjson.Result{}, ctx.Err()
	}
}

// send writes one message. A reply too large for Thunderbird becomes an
// internal_error so the extension is not left waiting.
func (s *session) send(msg any) error {
	body, err := json.Marshal(msg)
	if err == nil {
		err = s.out.Write(body)
	}
	if errors.Is(err, wire.ErrOutgoingTooLarge) {
		if r, ok := msg.(okReply); ok {
			return s.send(errorReply(&r.ID, &Error{Code: code.InternalError, Message: "the reply would exceed 1 MiB"}))
		}
	}
	if err != nil {
		s.log.Printf("sending a message: %v", err)
	}
	return err
}

// progress returns a flow.Progress that sends progress events for request id.
func (s *session) progress(id string) flow.Progress {
	return func(step flow.Step, state flow.State) {
		s.send(progressEvent{Type: "progress", Request: id, Step: step, State: state})
	}
}

type okReply struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Result any    `json:"result"`
}

type progressEvent struct {
	Type    string     `json:"type"`
	Request string     `json:"request"`
	Step    flow.Step  `json:"step"`
	State   flow.State `json:"state"`
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
