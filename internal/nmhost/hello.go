package nmhost

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/credsync/credsync/internal/wire"
)

// HelloTimeout bounds RunHello: start, request, reply.
const HelloTimeout = 5 * time.Second

// maxReply is Thunderbird's limit for a frame from the host (1 MiB).
const maxReply = 1 << 20

// helloRequest is what RunHello sends.
const helloRequest = `{"id":"doctor","type":"hello"}`

// HelloReply is the result of a successful hello.
type HelloReply struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Protocol int    `json:"protocol"`
}

// HelloFunc starts the host at binary as Thunderbird would and asks it
// "hello". Doctor takes one so tests can fake it; RunHello is the real one.
type HelloFunc func(ctx context.Context, binary, manifestPath, extensionID string) (HelloReply, error)

// RunHello runs binary as Thunderbird does (arguments manifestPath and
// extensionID, working directory the binary's directory), sends the
// native-messaging frame {"id":"doctor","type":"hello"} (32-bit native-endian
// length + JSON), and reads reply frames until the one with id "doctor".
// A reply with "status":"ok" is success; anything else (error reply, bad
// frame, exit, no answer within HelloTimeout) is an error that includes the
// last line the host wrote to stderr.
func RunHello(ctx context.Context, binary, manifestPath, extensionID string) (HelloReply, error) {
	ctx, cancel := context.WithTimeout(ctx, HelloTimeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, binary, manifestPath, extensionID)
	cmd.Dir = filepath.Dir(binary)
	cmd.WaitDelay = time.Second
	stderr := &tailBuffer{max: 4096}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return HelloReply{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return HelloReply{}, err
	}
	if err := cmd.Start(); err != nil {
		return HelloReply{}, fmt.Errorf("cannot start it: %w", err)
	}

	type result struct {
		reply HelloReply
		err   error
	}
	done := make(chan result, 1)
	go func() {
		r, err := exchangeHello(stdin, stdout)
		done <- result{r, err}
	}()

	var res result
	timedOut := false
	select {
	case res = <-done:
	case <-ctx.Done():
		timedOut = true
	}
	if timedOut || (res.err != nil && ctx.Err() != nil) {
		res = result{err: errors.New("no answer in time")}
	}
	// Closing stdin is how Thunderbird tells the host to go; the context
	// kills it if it does not.
	stdin.Close()
	waitErr := cmd.Wait()
	if res.err == nil {
		return res.reply, nil
	}
	var detail []string
	if waitErr != nil && ctx.Err() == nil {
		detail = append(detail, waitErr.Error())
	}
	if line := stderr.lastLine(); line != "" {
		detail = append(detail, "stderr: "+line)
	}
	if len(detail) > 0 {
		return HelloReply{}, fmt.Errorf("%w (%s)", res.err, strings.Join(detail, "; "))
	}
	return HelloReply{}, res.err
}

func exchangeHello(w io.Writer, r io.Reader) (HelloReply, error) {
	if err := wire.NewWriter(w).Write([]byte(helloRequest)); err != nil {
		return HelloReply{}, fmt.Errorf("cannot send hello: %w", err)
	}
	frames := wire.NewReader(r, maxReply)
	// Skip up to a few unrelated frames (events) before the reply.
	for range 8 {
		body, err := frames.Read()
		var tooLarge *wire.TooLargeError
		switch {
		case errors.As(err, &tooLarge):
			return HelloReply{}, fmt.Errorf("it sent a frame of %d bytes, above Thunderbird's limit of %d", tooLarge.Size, maxReply)
		case errors.Is(err, io.EOF):
			return HelloReply{}, errors.New("it exited without answering")
		case errors.Is(err, io.ErrUnexpectedEOF):
			return HelloReply{}, errors.New("it sent a truncated frame and exited")
		case err != nil:
			return HelloReply{}, err
		}
		var msg struct {
			ID      *string         `json:"id"`
			Status  string          `json:"status"`
			Code    string          `json:"code"`
			Message string          `json:"message"`
			Result  json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal(body, &msg); err != nil {
			return HelloReply{}, fmt.Errorf("it answered with invalid JSON: %w", err)
		}
		if msg.ID == nil || *msg.ID != "doctor" {
			continue
		}
		if msg.Status != "ok" {
			return HelloReply{}, fmt.Errorf("it answered %q: %s %s", msg.Status, msg.Code, msg.Message)
		}
		var hr HelloReply
		if len(msg.Result) > 0 {
			// The details are informative; a result of another shape is
			// still a healthy host.
			_ = json.Unmarshal(msg.Result, &hr)
		}
		return hr, nil
	}
	return HelloReply{}, errors.New("it sent frames but no reply to hello")
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) lastLine() string {
	s := strings.TrimSpace(string(bytes.ToValidUTF8(t.buf, []byte("?"))))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[i+1:])
	}
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "…"
	}
	return s
}
