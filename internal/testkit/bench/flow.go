//go:build !windows

package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/protocol"
	"github.com/credsync/credsync/internal/verify"
	"github.com/credsync/credsync/internal/wire"
)

// extension plays Thunderbird's side of a native-messaging session with an
// in-process protocol.Host over pipes, as internal/protocol's tests do: it
// sends requests and answers the host's store requests at once.
type extension struct {
	toHost *io.PipeWriter
	frames *wire.Writer
	msgs   chan message
	served chan error
	nextID int
}

type message struct {
	m  gjson.Result
	at time.Time
}

func startExtension(roots verify.Trust) *extension {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	x := &extension{toHost: inW, frames: wire.NewWriter(inW), msgs: make(chan message, 64), served: make(chan error, 1)}
	h := &protocol.Host{Version: "bench", Trust: roots}
	go func() {
		x.served <- h.Serve(context.Background(), inR, outW)
		outW.Close()
	}()
	go func() {
		defer close(x.msgs)
		r := wire.NewReader(outR, 1<<20)
		for {
			body, err := r.Read()
			if err != nil {
				return
			}
			x.msgs <- message{gjson.ParseBytes(body), time.Now()}
		}
	}()
	return x
}

func (x *extension) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return x.frames.Write(b)
}

// close ends the session and returns Serve's error.
func (x *extension) close() error {
	x.toHost.Close()
	for range x.msgs {
	}
	select {
	case err := <-x.served:
		return err
	case <-time.After(10 * time.Second):
		return errors.New("the host did not stop after its input closed")
	}
}

// flowRun is one change request, from the extension's point of view.
type flowRun struct {
	wall   time.Duration // request sent → final reply
	change time.Duration // → progress changing:ok
	verify time.Duration // changing:ok → store request
	store  time.Duration // store request → final reply (the fake answers at once)
	// completed counts the round trips completed per leg ("backend" and
	// the verified kinds' keys) when the reply arrived.
	completed map[string]int
}

// change runs one password change through the host: back-end change,
// verification of both servers, store. On success s.Password is the new
// password.
func (x *extension) change(ctx context.Context, s *Servers, backend *Proxy, in, out leg) (flowRun, error) {
	for _, p := range []*Proxy{backend, in.proxy, out.proxy} {
		p.Take()
	}
	x.nextID++
	id := fmt.Sprintf("flow-%d", x.nextID)
	next := randomPassword()
	account := benchAccount(*in.ep, *out.ep)
	req := map[string]any{
		"id": id, "type": "change", "accountId": "bench",
		"backend": map[string]any{"name": s.Backend, "url": s.BackendURL(backend.Addr())},
		"current": s.Password, "new": next,
	}
	start := time.Now()
	if err := x.send(req); err != nil {
		return flowRun{}, err
	}
	var changed, stored time.Time
	for {
		var msg message
		select {
		case m, ok := <-x.msgs:
			if !ok {
				return flowRun{}, errors.New("the host closed its output during a change")
			}
			msg = m
		case <-ctx.Done():
			return flowRun{}, fmt.Errorf("%s: change: %w", s.Name, ctx.Err())
		}
		m := msg.m
		switch {
		case m.Get("type").String() == "progress":
			if m.Get("step").String() == "changing" && m.Get("state").String() == "ok" {
				changed = msg.at
			}
		case m.Get("type").String() == "store" || m.Get("type").String() == "accounts":
			if m.Get("type").String() == "store" {
				stored = msg.at
			}
			if reply, ok := answerHost(m, account); ok {
				if err := x.send(reply); err != nil {
					return flowRun{}, err
				}
			}
		case m.Get("id").String() == id:
			if m.Get("status").String() != "ok" || !m.Get("result.stored").Bool() {
				return flowRun{}, fmt.Errorf("%s: change via the %s back-end failed: %s", s.Name, s.Backend, m.Raw)
			}
			s.Password = next
			end := msg.at
			if changed.IsZero() || stored.IsZero() {
				return flowRun{}, fmt.Errorf("%s: change succeeded without progress changing:ok or a store request", s.Name)
			}
			r := flowRun{wall: end.Sub(start), change: changed.Sub(start), verify: stored.Sub(changed),
				store: end.Sub(stored), completed: map[string]int{}}
			for key, p := range map[string]*Proxy{"backend": backend, in.kind.Key: in.proxy, out.kind.Key: out.proxy} {
				a, _, _, _, err := turns(p, end, 0)
				if err != nil {
					return flowRun{}, err
				}
				r.completed[key] = a
			}
			return r, nil
		}
	}
}
