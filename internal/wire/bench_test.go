package wire

import (
	"bytes"
	"testing"
)

// BenchmarkRoundTrip: write then read one typical request frame.
func BenchmarkRoundTrip(b *testing.B) {
	body := []byte(`{"id":"1","type":"verify","password":"p","incoming":{"protocol":"imap","host":"mail.example.org","port":993,"socketType":3,"authMethod":3,"username":"alice@example.org"}}`)
	var buf bytes.Buffer
	w, r := NewWriter(&buf), NewReader(&buf, 0)
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Write(body); err != nil {
			b.Fatal(err)
		}
		if _, err := r.Read(); err != nil {
			b.Fatal(err)
		}
	}
}
