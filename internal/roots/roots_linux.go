//go:build linux && !android

package roots

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
)

// The files and directories crypto/x509 reads on Linux (root_linux.go in
// the Go release; TestListsMatchGo compares them), and its environment
// variables, which replace them.
var (
	certFiles = []string{
		"/etc/ssl/certs/ca-certificates.crt",
		"/etc/pki/tls/certs/ca-bundle.crt",
		"/etc/ssl/ca-bundle.pem",
		"/etc/pki/tls/cacert.pem",
		"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
		"/etc/ssl/cert.pem",
	}
	certDirectories = []string{
		"/etc/ssl/certs",
		"/etc/pki/tls/certs",
	}
)

const (
	certFileEnv = "SSL_CERT_FILE"
	certDirEnv  = "SSL_CERT_DIR"
)

// load reads what crypto/x509 reads on Linux, in its order: the first
// bundle file that can be read (SSL_CERT_FILE instead of the list when
// set), then every file of every directory (SSL_CERT_DIR, colon-separated,
// instead of the list when set) except symbolic links to a file of the
// same directory (the hash links c_rehash makes). With no certificate found
// it is nil, and crypto/x509 does its own search, and its own error.
func load() *x509.CertPool {
	b := newBuilder()
	files := certFiles
	if f := os.Getenv(certFileEnv); f != "" {
		files = []string{f}
	}
	for _, name := range files {
		if data, err := b.readFile(name); err == nil {
			b.appendPEM(data)
			break
		}
	}
	dirs := certDirectories
	if d := os.Getenv(certDirEnv); d != "" {
		dirs = strings.Split(d, ":")
	}
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if sameDirSymlink(dir, e) {
				continue
			}
			if data, err := b.readFile(dir + "/" + e.Name()); err == nil {
				b.appendPEM(data)
			}
		}
	}
	b.buf = nil
	if b.added == 0 {
		return nil
	}
	return b.pool
}

// sameDirSymlink reports whether e is a symbolic link whose target names
// no directory, i.e. another file of dir.
func sameDirSymlink(dir string, e os.DirEntry) bool {
	if e.Type()&os.ModeSymlink == 0 {
		return false
	}
	target, err := os.Readlink(filepath.Join(dir, e.Name()))
	return err == nil && !strings.Contains(target, "/")
}
