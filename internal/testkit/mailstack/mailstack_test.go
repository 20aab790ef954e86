package mailstack

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/testkit/wine"
)

// writeCA writes a self-signed CA certificate and returns its path.
func writeCA(t *testing.T, dir string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeEnv(t *testing.T, dir, body string) string {
	t.Helper()
	path := filepath.Join(dir, "env")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoad(t *testing.T) {
	dir := wine.TempDir(t)
	ca := writeCA(t, dir)
	s, err := Load(writeEnv(t, dir, "# scripts/mailstack\nMAILSTACK_HOST=127.0.0.1\nMAILSTACK_CA="+ca+
		"\n\nMAILSTACK_IMAPS_PORT=10993\nMAILSTACK_LDAP_PEOPLE='ou=people,dc=example,dc=test'\nMAILSTACK_PASSWORD_bob='b o b'\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr("IMAPS") != "127.0.0.1:10993" || s.Port("POP3") != 0 {
		t.Errorf("Addr(IMAPS) = %s, Port(POP3) = %d", s.Addr("IMAPS"), s.Port("POP3"))
	}
	if s.UserDN("bob") != "uid=bob,ou=people,dc=example,dc=test" || s.Password("bob") != "b o b" {
		t.Errorf("UserDN = %q, Password = %q", s.UserDN("bob"), s.Password("bob"))
	}
	if len(s.CAPEM) == 0 || s.Roots == nil {
		t.Error("the CA was not loaded")
	}
	if err := s.Up("POP3"); err == nil || !strings.Contains(err.Error(), "MAILSTACK_POP3_PORT") {
		t.Errorf("Up(POP3) without its port = %v", err)
	}
}

func TestLoadRefuses(t *testing.T) {
	dir := wine.TempDir(t)
	ca := writeCA(t, dir)
	if _, err := Load(filepath.Join(dir, "absent")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("absent file: %v, want os.ErrNotExist", err)
	}
	for name, body := range map[string]string{
		"a line without =":           "MAILSTACK_HOST=127.0.0.1\nMAILSTACK_CA=" + ca + "\nBROKEN\n",
		"another host":               "MAILSTACK_HOST=192.0.2.1\nMAILSTACK_CA=" + ca + "\n",
		"no host":                    "MAILSTACK_CA=" + ca + "\n",
		"a CA that is not there":     "MAILSTACK_HOST=127.0.0.1\nMAILSTACK_CA=" + filepath.Join(dir, "none.pem") + "\n",
		"a CA without a certificate": "MAILSTACK_HOST=::1\nMAILSTACK_CA=" + writeEnv(t, wine.TempDir(t), "not PEM") + "\n",
	} {
		if _, err := Load(writeEnv(t, wine.TempDir(t), body)); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}

func TestLogMarkSeesOnlyNewCompleteLines(t *testing.T) {
	path := filepath.Join(wine.TempDir(t), "log")
	if err := os.WriteFile(path, []byte("before\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := MarkLog(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString("one\ntwo\nthr")
	count := func(lines []string) int { return len(lines) }
	lines, err := m.Wait(2, time.Second, 0, count)
	if err != nil || strings.Join(lines, "|") != "one|two" {
		t.Errorf("Wait = %q, %v; want the two complete lines after the mark", lines, err)
	}
	if _, err := MarkLog(filepath.Join(wine.TempDir(t), "absent")); err == nil {
		t.Error("MarkLog of a missing file succeeded")
	}
}
