package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
)

func frame(body string) []byte {
	b := binary.NativeEndian.AppendUint32(nil, uint32(len(body)))
	return append(b, body...)
}

func TestReadBackToBack(t *testing.T) {
	in := append(frame(`{"a":1}`), frame(`{"b":2}`)...)
	r := NewReader(bytes.NewReader(in), 0)
	for _, want := range []string{`{"a":1}`, `{"b":2}`} {
		got, err := r.Read()
		if err != nil || string(got) != want {
			t.Fatalf("Read() = %q, %v; want %q", got, err, want)
		}
	}
	if _, err := r.Read(); err != io.EOF {
		t.Fatalf("Read() at end = %v, want io.EOF", err)
	}
}

// A reader that hands out one byte at a time, as a pipe may.
type trickle struct{ r io.Reader }

func (t trickle) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return t.r.Read(p)
}

func TestReadShortReads(t *testing.T) {
	body := strings.Repeat("x", 5000)
	r := NewReader(trickle{bytes.NewReader(frame(body))}, 0)
	got, err := r.Read()
	if err != nil || string(got) != body {
		t.Fatalf("Read() = %d bytes, %v; want %d bytes", len(got), err, len(body))
	}
}

func TestReadTooLargeSkipsBody(t *testing.T) {
	in := append(frame(strings.Repeat("y", 100)), frame(`{"ok":true}`)...)
	r := NewReader(bytes.NewReader(in), 64)
	_, err := r.Read()
	var tooLarge *TooLargeError
	if !errors.As(err, &tooLarge) || tooLarge.Size != 100 || tooLarge.Limit != 64 {
		t.Fatalf("Read() error = %v, want TooLargeError{100, 64}", err)
	}
	got, err := r.Read()
	if err != nil || string(got) != `{"ok":true}` {
		t.Fatalf("Read() after oversize = %q, %v; want the next frame", got, err)
	}
}

// A header announcing 4 GiB must not allocate: the reader counts bytes
// while discarding and reports the truncated stream.
func TestReadHugeLengthDoesNotAllocate(t *testing.T) {
	in := []byte{0xff, 0xff, 0xff, 0xff, '{', '}'}
	r := NewReader(bytes.NewReader(in), 0)
	allocs := testing.AllocsPerRun(1, func() {
		r = NewReader(bytes.NewReader(in), 0)
		if _, err := r.Read(); err != io.ErrUnexpectedEOF {
			t.Fatalf("Read() = %v, want io.ErrUnexpectedEOF", err)
		}
	})
	if allocs > 20 {
		t.Fatalf("Read() of a 4 GiB header made %v allocations", allocs)
	}
}

func TestReadTruncated(t *testing.T) {
	for name, in := range map[string][]byte{
		"header": {1, 0},
		"body":   frame(`{"a":1}`)[:7],
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewReader(bytes.NewReader(in), 0).Read()
			if err != io.ErrUnexpectedEOF {
				t.Fatalf("Read() = %v, want io.ErrUnexpectedEOF", err)
			}
		})
	}
}

func TestReadEmptyFrame(t *testing.T) {
	got, err := NewReader(bytes.NewReader(frame("")), 0).Read()
	if err != nil || len(got) != 0 {
		t.Fatalf("Read() = %q, %v; want empty body", got, err)
	}
}

func TestWriteRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.Write([]byte(`{"id":"1"}`)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), frame(`{"id":"1"}`)) {
		t.Fatalf("Write() produced % x", buf.Bytes())
	}
}

func TestWriteRefusesOversize(t *testing.T) {
	var buf bytes.Buffer
	err := NewWriter(&buf).Write(make([]byte, MaxOutgoing+1))
	if !errors.Is(err, ErrOutgoingTooLarge) || buf.Len() != 0 {
		t.Fatalf("Write(1 MiB + 1) = %v with %d bytes written", err, buf.Len())
	}
	if err := NewWriter(&buf).Write(make([]byte, MaxOutgoing)); err != nil {
		t.Fatalf("Write(1 MiB) = %v, want success", err)
	}
}

// Frames written from many goroutines arrive whole.
func TestWriteConcurrent(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = w.Write([]byte(strings.Repeat(string(rune('a'+i%26)), 1000)))
		}()
	}
	wg.Wait()
	r := NewReader(&buf, 0)
	for range 50 {
		got, err := r.Read()
		if err != nil || len(got) != 1000 || strings.Count(string(got), string(got[0])) != 1000 {
			t.Fatalf("interleaved frame: %v", err)
		}
	}
}
