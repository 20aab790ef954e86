// Package wire reads and writes native-messaging frames as Thunderbird
// speaks them: a 32-bit length in native byte order, then that many bytes.
// It knows nothing of the JSON inside.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

const (
	// DefaultMaxIncoming caps a frame from Thunderbird. credsync's requests
	// are a few hundred bytes; the cap is checked before allocating.
	DefaultMaxIncoming = 1 << 20
	// MaxOutgoing is Thunderbird's limit for a frame from the host
	// (NativeMessaging.sys.mjs MAX_READ); above it Thunderbird closes the port.
	MaxOutgoing = 1 << 20
)

// TooLargeError reports an incoming frame above the cap. Its body has been
// skipped, so the next Read starts at the next frame.
type TooLargeError struct {
	Size, Limit uint32
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("frame of %d bytes exceeds the limit of %d bytes", e.Size, e.Limit)
}

// ErrOutgoingTooLarge is returned by Write for a frame Thunderbird would refuse.
var ErrOutgoingTooLarge = errors.New("wire: outgoing frame exceeds 1 MiB")

// Reader reads frames from one stream.
type Reader struct {
	r   io.Reader
	max uint32
}

// NewReader returns a Reader refusing frames above max bytes
// (DefaultMaxIncoming when max is 0).
func NewReader(r io.Reader, max uint32) *Reader {
	if max == 0 {
		max = DefaultMaxIncoming
	}
	return &Reader{r: r, max: max}
}

// Read returns the next frame's body. io.EOF means the stream ended cleanly
// between frames (Thunderbird closed the port); io.ErrUnexpectedEOF means
// it ended inside a frame.
func (r *Reader) Read() ([]byte, error) {
	var header [4]byte
	if _, err := io.ReadFull(r.r, header[:]); err != nil {
		return nil, err
	}
	size := binary.NativeEndian.Uint32(header[:])
	if size > r.max {
		if _, err := io.CopyN(io.Discard, r.r, int64(size)); err != nil {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, &TooLargeError{Size: size, Limit: r.max}
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(r.r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return body, nil
}

// Writer writes whole frames; it is safe for concurrent use, so replies and
// events from several goroutines never interleave.
type Writer struct {
	mu sync.Mutex
	w  io.Writer
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write sends body as one frame, in a single Write call.
func (w *Writer) Write(body []byte) error {
	if len(body) > MaxOutgoing {
		return ErrOutgoingTooLarge
	}
	frame := binary.NativeEndian.AppendUint32(make([]byte, 0, 4+len(body)), uint32(len(body)))
	frame = append(frame, body...)
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err := w.w.Write(frame)
	return err
}
