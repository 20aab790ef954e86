//go:build !windows

package bench

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards TCP connections from a port on 127.0.0.1 to one target and
// puts a modelled network link between them.
//
// The link has a round-trip time (SetRTT; taken when a connection is
// accepted) and unlimited bandwidth. Every chunk read from one side is
// written to the other side RTT/2 after it was read, in order; a chunk is
// never held back by the delay of an earlier one (each direction is a queue
// of timestamped chunks, not a sleep per read), so back-to-back or pipelined
// writes overlap in flight exactly as on a real link.
//
// TCP's own handshake is modelled too: the client's connect() returns at
// once on loopback, so the client's bytes are treated as sent no earlier
// than one RTT after the connection was accepted (when SYN-ACK would have
// arrived), and the proxy connects to the target only 1.5 RTT after accept
// (when the client's ACK would have reached the server). A server that
// greets first therefore greets the client after 2 RTT, as over a real link.
//
// Each connection is logged (ConnLog): its request/response turns and, for
// tracing, every flight with its size and a label that never shows the
// payload beyond a protocol verb.
type Proxy struct {
	target string
	ln     net.Listener
	rtt    atomic.Int64 // nanoseconds

	mu     sync.Mutex
	logs   []*ConnLog
	active map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Listen starts a proxy on 127.0.0.1 (an OS-chosen port) to target, which
// must be a loopback address.
func Listen(target string) (*Proxy, error) {
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		return nil, fmt.Errorf("proxy target %q: %w", target, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("proxy target %q is not a loopback address", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{target: target, ln: ln, active: map[net.Conn]struct{}{}}
	p.wg.Go(p.serve)
	return p, nil
}

// Addr is the proxy's address, 127.0.0.1:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Port is the proxy's port.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// Target is the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// SetRTT sets the round-trip time of connections accepted from now on.
func (p *Proxy) SetRTT(d time.Duration) { p.rtt.Store(int64(d)) }

// RTT is the current round-trip time.
func (p *Proxy) RTT() time.Duration { return time.Duration(p.rtt.Load()) }

// Take returns the logs of the connections accepted since the previous Take,
// in order of acceptance. Connections still open keep logging.
func (p *Proxy) Take() []*ConnLog {
	p.mu.Lock()
	defer p.mu.Unlock()
	logs := p.logs
	p.logs = nil
	return logs
}

// Close stops accepting, cuts every open connection and waits for the
// proxy's goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for c := range p.active {
		c.Close()
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			c.Close()
			return
		}
		p.wg.Go(func() { p.handle(c) })
	}
}

// track registers c for Close; false once the proxy is closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.active[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.active, c)
		c.Close()
	}
}

func (p *Proxy) handle(client net.Conn) {
	start := time.Now()
	rtt := p.RTT()
	log := &ConnLog{Start: start, RTT: rtt, done: make(chan struct{})}
	defer close(log.done)
	log.turns = append(log.turns, start.Add(rtt)) // the TCP handshake
	log.pending = true                            // the client's ACK
	p.mu.Lock()
	p.logs = append(p.logs, log)
	p.mu.Unlock()

	// The client's bytes leave no earlier than the virtual SYN-ACK.
	connected := start.Add(rtt)
	up := newQueue()
	var readers sync.WaitGroup
	readers.Go(func() {
		pump(client, up, func(now time.Time) time.Time {
			if now.Before(connected) {
				now = connected
			}
			return now.Add(rtt / 2)
		}, log.clientSent)
	})

	// The server accepts when the client's ACK arrives.
	sleepUntil(start.Add(rtt + rtt/2))
	var d net.Dialer
	server, err := d.Dial("tcp", p.target)
	if err != nil {
		log.setErr(err)
		p.untrack(client)
		readers.Wait()
		return
	}
	if !p.track(server) {
		server.Close()
		p.untrack(client)
		readers.Wait()
		return
	}
	down := newQueue()
	readers.Go(func() {
		pump(server, down, func(now time.Time) time.Time { return now.Add(rtt / 2) }, nil)
	})
	var writers sync.WaitGroup
	abort := func() { client.Close(); server.Close() }
	writers.Go(func() { drain(up, server, nil, abort) })
	writers.Go(func() { drain(down, client, log.delivered, abort) })
	writers.Wait()
	p.untrack(client, server)
	readers.Wait()
}

// chunk is data read from one side (or its end, eof) and when it is due on
// the other side.
type chunk struct {
	data []byte
	due  time.Time
	eof  bool
}

// queue is an unbounded FIFO of chunks: the reading side never waits for the
// writing side, as a link of unlimited bandwidth would not.
type queue struct {
	mu    sync.Mutex
	cond  *sync.Cond
	items []chunk
}

func newQueue() *queue {
	q := &queue{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *queue) push(c chunk) {
	q.mu.Lock()
	q.items = append(q.items, c)
	q.mu.Unlock()
	q.cond.Signal()
}

func (q *queue) pop() chunk {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 {
		q.cond.Wait()
	}
	c := q.items[0]
	q.items[0] = chunk{}
	q.items = q.items[1:]
	return c
}

// pump reads src until it fails, queueing each chunk with its due time and
// finally an end marker.
func pump(src net.Conn, q *queue, due func(time.Time) time.Time, onRead func(time.Time, []byte)) {
	for {
		buf := make([]byte, 32<<10)
		n, err := src.Read(buf)
		now := time.Now()
		if n > 0 {
			if onRead != nil {
				onRead(now, buf[:n])
			}
			q.push(chunk{data: buf[:n], due: due(now)})
		}
		if err != nil {
			if onRead != nil {
				onRead(now, nil)
			}
			q.push(chunk{eof: true, due: due(now)})
			return
		}
	}
}

// drain writes each chunk to dst when it is due; at the end marker it
// half-closes dst. A failed write cuts both connections (abort).
func drain(q *queue, dst net.Conn, onWrite func(time.Time, []byte), abort func()) {
	for {
		c := q.pop()
		sleepUntil(c.due)
		if c.eof {
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			} else {
				dst.Close()
			}
			return
		}
		// Logged before the write: the other side may answer as soon as
		// the bytes are written.
		if onWrite != nil {
			onWrite(time.Now(), c.data)
		}
		if _, err := dst.Write(c.data); err != nil {
			abort()
			for !q.pop().eof {
			}
			return
		}
	}
}

func sleepUntil(t time.Time) {
	if d := time.Until(t); d > 0 {
		time.Sleep(d)
	}
}

// ConnLog is what the proxy saw of one connection, on the client's
// timeline: when the client sent (a chunk was read from it) and when it
// received (a chunk was written to it).
type ConnLog struct {
	Start time.Time
	RTT   time.Duration

	mu        sync.Mutex
	turns     []time.Time
	pending   bool // the client sent something since it last received
	clientEOF bool
	flights   []Flight
	err       error
	done      chan struct{}
}

// Wait waits until the connection is closed on both sides or until
// timeout, and reports whether it was.
func (l *ConnLog) Wait(timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-l.done:
		return true
	case <-t.C:
		return false
	}
}

// Flight is one chunk as the client sent or received it.
type Flight struct {
	At    time.Duration // since the connection was accepted
	Up    bool          // client → server
	Bytes int
	Label string
}

// A turn is counted when data reaches the client after the client sent
// something since it last received: a client flight that got a server
// answer. The TCP handshake is the first turn; the client's ACK counts as
// its first flight, so a server greeting is a turn of its own.
func (l *ConnLog) clientSent(now time.Time, data []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if data == nil {
		l.clientEOF = true
		l.flights = append(l.flights, Flight{At: now.Sub(l.Start), Up: true, Label: "close"})
		return
	}
	l.pending = true
	l.flights = append(l.flights, Flight{At: now.Sub(l.Start), Up: true, Bytes: len(data), Label: label(data)})
}

func (l *ConnLog) delivered(now time.Time, data []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending && !l.clientEOF {
		l.turns = append(l.turns, now)
		l.pending = false
	}
	l.flights = append(l.flights, Flight{At: now.Sub(l.Start), Bytes: len(data), Label: label(data)})
}

func (l *ConnLog) setErr(err error) {
	l.mu.Lock()
	l.err = err
	l.mu.Unlock()
}

// Err is the error connecting to the target, if any.
func (l *ConnLog) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Turns is the number of request/response turns so far, the TCP handshake
// included.
func (l *ConnLog) Turns() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.turns)
}

// TurnsBefore counts the turns whose answer reached the client by t: the
// round trips a caller that returned at t waited for.
func (l *ConnLog) TurnsBefore(t time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, at := range l.turns {
		if !at.After(t) {
			n++
		}
	}
	return n
}

// Flights returns the connection's flights so far.
func (l *ConnLog) Flights() []Flight {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Flight(nil), l.flights...)
}

// label names a chunk without revealing its content: the TLS record type,
// or up to two leading words made only of capitals, digits and * + - (a
// command verb, an IMAP tag and verb, a reply code), or "text"/"binary".
func label(b []byte) string {
	if len(b) >= 3 && b[1] == 3 && b[2] <= 4 {
		switch b[0] {
		case 20:
			return "TLS change_cipher_spec"
		case 21:
			return "TLS alert"
		case 22:
			return "TLS handshake"
		case 23:
			return "TLS application_data"
		}
	}
	var words []string
	rest := b
	for len(words) < 2 {
		n := 0
		for n < len(rest) && n <= 10 && isVerbByte(rest[n]) {
			n++
		}
		if n == 0 || n > 10 || (n < len(rest) && rest[n] != ' ' && rest[n] != '\r') {
			break
		}
		words = append(words, string(rest[:n]))
		if n == len(rest) || rest[n] != ' ' {
			break
		}
		rest = rest[n+1:]
	}
	if len(words) > 0 {
		return strings.Join(words, " ")
	}
	for _, c := range b {
		if c >= 0x80 || (c < 0x20 && c != '\r' && c != '\n' && c != '\t') {
			return "binary"
		}
	}
	return "text"
}

func isVerbByte(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '*' || c == '+' || c == '-'
}

// errProxy reports a proxy that could not reach its target.
var errProxy = errors.New("the proxy could not connect to its target")

// checkLogs returns errProxy (with the cause) if any connection failed to
// reach its target.
func checkLogs(logs []*ConnLog) error {
	for _, l := range logs {
		if err := l.Err(); err != nil {
			return fmt.Errorf("%w: %v", errProxy, err)
		}
	}
	return nil
}
