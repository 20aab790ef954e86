package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzRead: any byte stream yields frames, a TooLargeError, or an EOF
// error; never a panic, never a body above the cap.
func FuzzRead(f *testing.F) {
	f.Add(frame(`{"id":"1","type":"hello"}`))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{3, 0, 0, 0, 'a'})
	f.Add(append(frame(""), frame("{}")...))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in), 256)
		for range 64 {
			body, err := r.Read()
			var tooLarge *TooLargeError
			switch {
			case err == nil:
				if len(body) > 256 {
					t.Fatalf("body of %d bytes passed a 256-byte cap", len(body))
				}
			case errors.As(err, &tooLarge):
			case err == io.EOF || err == io.ErrUnexpectedEOF:
				return
			default:
				t.Fatalf("unexpected error %v", err)
			}
		}
	})
}
