// Package roots loads the system's root certificates once, for every TLS
// connection of the process, with less garbage than crypto/x509's own
// loader where that loader parses the same certificate more than once.
//
// On Linux crypto/x509 reads a bundle file (/etc/ssl/certs/ca-certificates.crt
// on Debian and Ubuntu) and then every file of the certificate directories
// (/etc/ssl/certs), and parses every certificate it finds before the pool
// drops the duplicates. On Debian and Ubuntu the directory holds each root
// as its own file and the bundle itself as well, so each root is parsed two
// or three times; the parses are garbage, and they are most of what the
// host allocates for a verify (docs/benchmarks.md, "Issue 18"). System
// reads the same files in the same order and hands each certificate to the
// pool once: a certificate whose DER bytes were already handed to it is
// skipped, which is what the pool does with it anyway. The pool is the one
// crypto/x509 would build (CertPool.Equal; roots_linux_test.go compares the
// two, and the file lists with the Go release's).
//
// Elsewhere System is nil, which tells crypto/tls to use crypto/x509's
// system roots as before: on Windows and macOS those are the operating
// system's verifier, which a CertPool cannot replace.
package roots

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"sync"
)

// System is the system's root certificates, loaded on first use, or nil:
// crypto/x509's system roots (tls.Config.RootCAs nil). It is nil on
// systems other than Linux, and on Linux when no certificate was found
// (then crypto/x509 looks for itself and reports what it finds).
func System() *x509.CertPool { return system() }

var system = sync.OnceValue(load)

// Or is pool, or System() when pool is nil: what a tls.Config's RootCAs
// should be for a caller whose nil means "the system roots".
func Or(pool *x509.CertPool) *x509.CertPool {
	if pool != nil {
		return pool
	}
	return System()
}

// builder fills a pool from PEM files, each certificate once.
type builder struct {
	pool *x509.CertPool
	// seen holds the SHA-224 of every certificate's DER handed to pool
	// (the sum the pool itself tells duplicates by).
	seen map[[sha256.Size224]byte]bool
	// added counts the certificates the pool accepted.
	added int
	// buf is reused for every file read: the pool keeps nothing of the
	// PEM text it is given (pem.Decode decodes into new memory), which
	// TestPoolKeepsNoInput checks.
	buf []byte
}

func newBuilder() *builder {
	return &builder{pool: x509.NewCertPool(), seen: map[[sha256.Size224]byte]bool{}}
}

var pemBegin = []byte("-----BEGIN ")

// appendPEM does what pool.AppendCertsFromPEM(data) does, except that a
// certificate already handed to the pool is not parsed again.
func (b *builder) appendPEM(data []byte) {
	for len(data) > 0 {
		block, rest := pem.Decode(data)
		if block == nil {
			return
		}
		consumed := data[:len(data)-len(rest)]
		data = rest
		// The blocks AppendCertsFromPEM skips.
		if block.Type != "CERTIFICATE" || len(block.Headers) != 0 {
			continue
		}
		sum := sha256.Sum224(block.Bytes)
		if b.seen[sum] {
			// Parsed before: the pool either holds it already or
			// refused it, and would do the same again.
			continue
		}
		b.seen[sum] = true
		// The block's own text: its BEGIN line is the last in what
		// pem.Decode consumed (base64 has no '-', and a block with
		// headers was skipped above), anything before it is text
		// pem.Decode skipped.
		i := bytes.LastIndex(consumed, pemBegin)
		if i < 0 {
			continue // cannot happen: pem.Decode found a BEGIN line
		}
		if b.pool.AppendCertsFromPEM(consumed[i:]) {
			b.added++
		}
	}
}

// readFile is os.ReadFile into b.buf.
func (b *builder) readFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Room for the whole file at once, as os.ReadFile makes: a bundle is
	// a few hundred kilobytes, which growing by appends would copy over
	// and over.
	if fi, err := f.Stat(); err == nil && fi.Size() < 64<<20 && int(fi.Size())+512 > cap(b.buf) {
		b.buf = make([]byte, 0, int(fi.Size())+512)
	}
	b.buf = b.buf[:0]
	for {
		if len(b.buf) == cap(b.buf) {
			b.buf = append(b.buf, 0)[:len(b.buf)]
		}
		n, err := f.Read(b.buf[len(b.buf):cap(b.buf)])
		b.buf = b.buf[:len(b.buf)+n]
		if err == io.EOF {
			return b.buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
