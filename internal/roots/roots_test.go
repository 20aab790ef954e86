package roots

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/testkit/wine"
)

// newCA is a self-signed CA certificate and its key.
func newCA(t testing.TB, name string) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// reference is the pool crypto/x509 builds from the same inputs.
func reference(inputs ...[]byte) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, in := range inputs {
		pool.AppendCertsFromPEM(in)
	}
	return pool
}

func built(inputs ...[]byte) *builder {
	b := newBuilder()
	for _, in := range inputs {
		b.appendPEM(in)
	}
	return b
}

// pemInputs are files as a certificate directory may hold them: the same
// root in a bundle and on its own, blocks crypto/x509 skips, junk, and
// blocks that do not parse.
func pemInputs(t testing.TB) map[string][][]byte {
	a, _ := newCA(t, "A")
	b, _ := newCA(t, "B")
	c, _ := newCA(t, "C")
	pa, pb, pc := pemCert(a), pemCert(b), pemCert(c)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	withHeader := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: c})
	otherType := pem.EncodeToMemory(&pem.Block{Type: "TRUSTED CERTIFICATE", Bytes: c})
	notDER := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not a certificate")})
	trailing := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: append(bytes.Clone(c), 0)})
	unterminated := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n")
	badBase64 := []byte("-----BEGIN CERTIFICATE-----\n-----BEGIN x\n-----END CERTIFICATE-----\n")
	rewrapped := bytes.ReplaceAll(pa, []byte("\n"), []byte("\r\n"))
	return map[string][][]byte{
		"empty":                        {nil},
		"one":                          {pa},
		"bundle then the same files":   {cat(pa, pb), pa, pb},
		"the bundle twice":             {cat(pa, pb, pc), cat(pa, pb, pc)},
		"duplicate within a file":      {cat(pa, pa, pb)},
		"comments and junk":            {cat([]byte("# Mozilla root\n"), pa, []byte("junk\n"), pb, []byte("trailer"))},
		"header then plain":            {withHeader, pc},
		"plain then header":            {pc, withHeader},
		"other type then plain":        {otherType, pc},
		"not DER then the same again":  {notDER, notDER, pa},
		"trailing data then plain":     {trailing, pc},
		"unterminated before a block":  {cat(unterminated, pb)},
		"bad base64 before a block":    {cat(badBase64, pb), pb},
		"CRLF line ends, then LF":      {rewrapped, pa},
		"no newline at the end":        {bytes.TrimSuffix(pa, []byte("\n")), pb},
		"everything":                   {cat(pa, withHeader, otherType, notDER, trailing, pb), pa, pb, pc, cat(pc, pa)},
		"only blocks the pool refuses": {cat(withHeader, otherType, notDER, trailing)},
	}
}

func TestAppendPEMBuildsTheSamePool(t *testing.T) {
	for name, inputs := range pemInputs(t) {
		t.Run(name, func(t *testing.T) {
			b := built(inputs...)
			if !b.pool.Equal(reference(inputs...)) {
				t.Error("the pool differs from AppendCertsFromPEM's")
			}
			want := reference(inputs...)
			if (b.added > 0) != !want.Equal(x509.NewCertPool()) {
				t.Errorf("added %d certificates; crypto/x509's pool is empty: %v", b.added, want.Equal(x509.NewCertPool()))
			}
		})
	}
}

// TestAppendPEMParsesEachCertificateOnce is the point of the package: a
// root in the bundle and in its own file is parsed once.
func TestAppendPEMParsesEachCertificateOnce(t *testing.T) {
	a, _ := newCA(t, "A")
	b, _ := newCA(t, "B")
	pa, pb := pemCert(a), pemCert(b)
	bundle := append(bytes.Clone(pa), pb...)
	allocs := func(inputs ...[]byte) float64 {
		return testing.AllocsPerRun(20, func() { built(inputs...) })
	}
	once, twice := allocs(bundle), allocs(bundle, pa, pb, bundle)
	// The 4 duplicates cost their PEM decoding (4 allocations each) and
	// nothing of a parse (about 40 per certificate).
	if perDup := (twice - once) / 4; perDup > 8 {
		t.Errorf("%v allocations for the bundle, %v with its files and itself again: duplicates are parsed", once, twice)
	}
}

// TestPoolKeepsNoInput: the builder reuses one buffer for every file, so
// the pool must keep nothing of the text it was given. A certificate is
// parsed again when first used (AppendCertsFromPEM is lazy), so a pool that
// kept the text would now verify against garbage.
func TestPoolKeepsNoInput(t *testing.T) {
	der, key := newCA(t, "root")
	b := newBuilder()
	buf := pemCert(der)
	b.appendPEM(buf)
	other, _ := newCA(t, "other")
	copy(buf, pemCert(other))
	for i := range buf {
		buf[i] ^= 0xff
	}
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: []string{"mail.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, root, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(leafDER)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: b.pool, DNSName: "mail.example"}); err != nil {
		t.Fatalf("verify after the input was overwritten: %v", err)
	}
}

func TestReadFileReusesItsBuffer(t *testing.T) {
	dir := wine.TempDir(t)
	big := bytes.Repeat([]byte("x"), 100_000)
	small := []byte("small")
	for name, data := range map[string][]byte{"big": big, "small": small, "empty": nil} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b := newBuilder()
	for _, name := range []string{"big", "small", "empty", "big"} {
		got, err := b.readFile(filepath.Join(dir, name))
		want, _ := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %d bytes, %v; want %d", name, len(got), err, len(want))
		}
	}
	if _, err := b.readFile(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Errorf("missing file: %v", err)
	}
	if n := testing.AllocsPerRun(10, func() { b.readFile(filepath.Join(dir, "big")) }); n > 5 {
		t.Errorf("%v allocations to read a file again", n)
	}
}

func TestOr(t *testing.T) {
	own := x509.NewCertPool()
	if Or(own) != own {
		t.Error("Or replaced a pool the caller gave")
	}
	if Or(nil) != System() {
		t.Error("Or(nil) is not System()")
	}
}

func FuzzAppendPEM(f *testing.F) {
	for _, inputs := range pemInputs(f) {
		f.Add(bytes.Join(inputs, nil), len(inputs[0]))
	}
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		// Two files: data[:split] and data[split:], and data again.
		split = min(max(split, 0), len(data))
		inputs := [][]byte{data[:split], data[split:], data}
		if !built(inputs...).pool.Equal(reference(inputs...)) {
			t.Error("the pool differs from AppendCertsFromPEM's")
		}
	})
}
