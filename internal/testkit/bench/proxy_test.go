//go:build !windows

package bench

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

const testRTT = 40 * time.Millisecond

// slack is how late an event may be on a busy machine (the race detector
// included); nothing may be early.
const slack = 60 * time.Millisecond

// listen runs handle for each connection on a loopback listener.
func listen(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				handle(c)
			})
		}
	})
	return ln.Addr().String()
}

func echo(c net.Conn) { _, _ = io.Copy(c, c) }

func startProxy(t *testing.T, target string, rtt time.Duration) *Proxy {
	t.Helper()
	p, err := Listen(target)
	if err != nil {
		t.Fatal(err)
	}
	p.SetRTT(rtt)
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func within(t *testing.T, what string, got, want time.Duration) {
	t.Helper()
	if got < want-2*time.Millisecond || got > want+slack {
		t.Errorf("%s took %v, want %v (+%v)", what, got, want, slack)
	}
}

func exchange(t *testing.T, c net.Conn, r *bufio.Reader, line string) time.Duration {
	t.Helper()
	start := time.Now()
	if _, err := io.WriteString(c, line); err != nil {
		t.Fatal(err)
	}
	got, err := r.ReadString('\n')
	if err != nil || got != line {
		t.Fatalf("read %q, %v; want %q", got, err, line)
	}
	return time.Since(start)
}

// The first exchange pays for the TCP handshake too; later ones one RTT.
func TestProxyRoundTrip(t *testing.T) {
	p := startProxy(t, listen(t, echo), testRTT)
	c := dial(t, p.Addr())
	r := bufio.NewReader(c)
	within(t, "the first exchange", exchange(t, c, r, "one\n"), 2*testRTT)
	within(t, "the second exchange", exchange(t, c, r, "two\n"), testRTT)
	within(t, "the third exchange", exchange(t, c, r, "three\n"), testRTT)
}

// A server that speaks first is heard after the handshake's RTT and the
// greeting's RTT.
func TestProxyGreeting(t *testing.T) {
	p := startProxy(t, listen(t, func(c net.Conn) {
		io.WriteString(c, "220 hello\r\n")
		echo(c)
	}), testRTT)
	start := time.Now()
	c := dial(t, p.Addr())
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "220 hello\r\n" {
		t.Fatalf("greeting %q, %v", line, err)
	}
	within(t, "the greeting", time.Since(start), 2*testRTT)
}

// Chunks written RTT/4 apart arrive RTT/4 apart, each RTT/2 after it was
// written: the delays overlap instead of adding up. (A proxy that slept
// RTT/2 per chunk would deliver the third chunk RTT/2 = 200 ms late.)
func TestProxyDoesNotSerialiseChunks(t *testing.T) {
	const rtt = 400 * time.Millisecond
	type arrival struct {
		line string
		at   time.Time
	}
	arrivals := make(chan arrival, 8)
	p := startProxy(t, listen(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			arrivals <- arrival{line, time.Now()}
			if line == "sync\n" {
				io.WriteString(c, "ok\n")
			}
		}
	}), rtt)
	c := dial(t, p.Addr())
	if _, err := io.WriteString(c, "sync\n"); err != nil {
		t.Fatal(err)
	}
	<-arrivals
	if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	var sent []time.Time
	for i, line := range []string{"a\n", "b\n", "c\n"} {
		if i > 0 {
			time.Sleep(rtt / 4)
		}
		sent = append(sent, time.Now())
		if _, err := io.WriteString(c, line); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range []string{"a\n", "b\n", "c\n"} {
		a := <-arrivals
		if a.line != want {
			t.Fatalf("arrival %d is %q, want %q: order not kept", i, a.line, want)
		}
		within(t, "chunk "+strings.TrimSpace(want), a.at.Sub(sent[i]), rtt/2)
	}
}

func TestProxyKeepsBytesInOrder(t *testing.T) {
	p := startProxy(t, listen(t, echo), 5*time.Millisecond)
	c := dial(t, p.Addr())
	data := make([]byte, 4<<20)
	rand.Read(data)
	go func() {
		c.Write(data)
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("echoed %d bytes, differing from the %d sent", len(got), len(data))
	}
}

// Turns: the handshake, the greeting, one per exchange the client waited
// for, one for a pipelined pair, none for a command sent just before
// closing.
func TestProxyCountsTurns(t *testing.T) {
	p := startProxy(t, listen(t, func(c net.Conn) {
		io.WriteString(c, "220 hello\r\n")
		r := bufio.NewReader(c)
		w := bufio.NewWriter(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			w.WriteString("250 " + line)
			// Pipelined commands get their replies in one write, as one
			// flight, however the scheduler interleaves the two loops.
			if r.Buffered() == 0 {
				w.Flush()
			}
		}
	}), testRTT)
	c := dial(t, p.Addr())
	r := bufio.NewReader(c)
	read := func(want string) {
		t.Helper()
		if got, err := r.ReadString('\n'); err != nil || got != want {
			t.Fatalf("read %q, %v; want %q", got, err, want)
		}
	}
	read("220 hello\r\n")
	io.WriteString(c, "EHLO x\r\n")
	read("250 EHLO x\r\n")
	io.WriteString(c, "MAIL\r\nRCPT\r\n")
	read("250 MAIL\r\n")
	read("250 RCPT\r\n")
	returned := time.Now()
	io.WriteString(c, "QUIT\r\n")
	c.Close()
	time.Sleep(2 * testRTT)

	logs := p.Take()
	if len(logs) != 1 {
		t.Fatalf("%d connection logs, want 1", len(logs))
	}
	if got := logs[0].Turns(); got != 4 {
		t.Errorf("Turns() = %d, want 4; flights %+v", got, logs[0].Flights())
	}
	if got := logs[0].TurnsBefore(returned); got != 4 {
		t.Errorf("TurnsBefore() = %d, want 4", got)
	}
	if got := p.Take(); len(got) != 0 {
		t.Errorf("a second Take() returned %d logs", len(got))
	}
	var labels []string
	for _, f := range logs[0].Flights() {
		labels = append(labels, f.Label)
	}
	if got, want := strings.Join(labels, ","), "220,EHLO,250 EHLO,MAIL,250 MAIL,QUIT,close"; !strings.HasPrefix(got, want) {
		t.Errorf("labels %s, want %s…", got, want)
	}
}

func TestProxyLoopbackOnly(t *testing.T) {
	for _, target := range []string{"192.0.2.1:25", "example.org:25", "nonsense"} {
		if p, err := Listen(target); err == nil {
			p.Close()
			t.Errorf("Listen(%q) succeeded", target)
		}
	}
}

func TestLabel(t *testing.T) {
	for in, want := range map[string]string{
		"\x16\x03\x01\x00\x05hello":    "TLS handshake",
		"\x17\x03\x03\x00\x05xxxxx":    "TLS application_data",
		"EHLO localhost\r\n":           "EHLO",
		"220 mail.example.org ESMTP\r": "220",
		"T1 LOGIN alice secret\r\n":    "T1 LOGIN",
		"* OK [CAPABILITY IMAP4rev1]":  "* OK",
		"dXNlcg==\r\n":                 "text",
		"\x30\x0c\x02\x01\x01":         "binary",
	} {
		if got := label([]byte(in)); got != want {
			t.Errorf("label(%q) = %q, want %q", in, got, want)
		}
	}
}
