// Package security holds credsync's cross-cutting security tests (see
// SECURITY.md) and the canary scanner they share with the integration and
// end-to-end suites: a fixed password, Canary, runs through every flow, and
// Scan then looks for it, in every encoding it could take, in the files,
// logs and process listings that must never hold it.
package security

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

// Canary is the password the hygiene tests run through every flow. It is
// printable ASCII (scripts/canary-scan requires that) and long enough that
// each of its encodings is unmistakable.
const Canary = "Canary-7f3a-credsync"

// Form is one encoding of a canary to look for.
type Form struct {
	Name  string
	Bytes []byte
}

// Forms returns the encodings of canary that Scan looks for: as is, UTF-16LE
// (Windows APIs, some log writers), hex (a %x in a log line) and base64 in both alphabets at each of
// the three byte alignments (the canary inside a larger encoded block, such
// as SASL PLAIN's "\0user\0password": the part of the encoding that depends
// on the canary alone). A base64 form is fine on the wire (TLS-protected);
// in a file it is a leak.
func Forms(canary string) []Form {
	forms := []Form{{Name: "plain", Bytes: []byte(canary)}}
	var le []byte
	for _, u := range utf16.Encode([]rune(canary)) {
		le = append(le, byte(u), byte(u>>8))
	}
	forms = append(forms, Form{Name: "utf-16le", Bytes: le},
		Form{Name: "hex", Bytes: []byte(hex.EncodeToString([]byte(canary)))},
		Form{Name: "HEX", Bytes: []byte(strings.ToUpper(hex.EncodeToString([]byte(canary))))})
	for k := 0; k < 3; k++ {
		if frag := Base64Fragment(canary, k); frag != "" {
			forms = append(forms, Form{Name: "base64/" + strconv.Itoa(k), Bytes: []byte(frag)})
			if url := strings.NewReplacer("+", "-", "/", "_").Replace(frag); url != frag {
				forms = append(forms, Form{Name: "base64url/" + strconv.Itoa(k), Bytes: []byte(url)})
			}
		}
	}
	return forms
}

// Base64Fragment is the part of the standard base64 encoding of
// k (0, 1 or 2) arbitrary bytes followed by canary and arbitrary bytes that
// depends only on canary: the 4-character groups whose 3 input bytes all
// belong to it.
func Base64Fragment(canary string, k int) string {
	enc := base64.StdEncoding.EncodeToString(append(make([]byte, k), canary...))
	first := (k + 2) / 3          // first group made of canary bytes only
	last := (k + len(canary)) / 3 // groups [first, last) are whole and inside
	if last <= first {
		return ""
	}
	return enc[4*first : 4*last]
}

// Finding is one place where a form of the canary was found.
type Finding struct {
	Where string // a file path, or the name given to ScanBytes
	Form  string
}

func (f Finding) String() string { return f.Where + ": " + f.Form }

// ScanBytes reports the forms of canary that b contains, naming them where.
func ScanBytes(where string, b []byte, canary string) []Finding {
	var out []Finding
	for _, f := range Forms(canary) {
		if bytes.Contains(b, f.Bytes) {
			out = append(out, Finding{Where: where, Form: f.Name})
		}
	}
	return out
}

// ScanOptions tunes Scan.
type ScanOptions struct {
	// Skip, when it returns true for a path, leaves that file (or
	// directory) out: a file where the canary is legitimately kept, such as
	// Thunderbird's logins.json and key4.db (encrypted).
	Skip func(path string, d fs.DirEntry) bool
	// Since, when not zero, scans only files modified at or after it.
	Since time.Time
	// MaxSize skips larger files (default 64 MiB).
	MaxSize int64
}

// Scan walks roots (files or directories; symbolic links are not followed)
// and reports every regular file holding a form of canary. Files that
// vanish during the walk are ignored; other errors are returned with the
// findings so far.
func Scan(roots []string, canary string, o ScanOptions) ([]Finding, error) {
	if o.MaxSize == 0 {
		o.MaxSize = 64 << 20
	}
	var out []Finding
	var errs []error
	for _, root := range roots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				errs = append(errs, err)
				return nil
			}
			if o.Skip != nil && o.Skip(path, d) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return nil // vanished
			}
			if fi.Size() > o.MaxSize || !o.Since.IsZero() && fi.ModTime().Before(o.Since) {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				if !errors.Is(err, fs.ErrNotExist) {
					errs = append(errs, err)
				}
				return nil
			}
			out = append(out, ScanBytes(path, b, canary)...)
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, errors.Join(errs...)
}

// ScanProcess reports the forms of canary in the command line and initial
// environment of process pid (/proc, Linux only). A process that has
// exited is reported as an error wrapping fs.ErrNotExist.
func ScanProcess(pid int, canary string) ([]Finding, error) {
	var out []Finding
	for _, name := range []string{"cmdline", "environ"} {
		path := fmt.Sprintf("/proc/%d/%s", pid, name)
		b, err := os.ReadFile(path)
		if err != nil {
			return out, err
		}
		out = append(out, ScanBytes(path, b, canary)...)
	}
	return out, nil
}

// ThunderbirdSecretStores are the profile files where Thunderbird keeps
// saved passwords, encrypted: the only files a canary password may reach.
var ThunderbirdSecretStores = map[string]bool{
	"logins.json":        true,
	"logins-backup.json": true,
	"key4.db":            true,
}

// SkipSecretStores is a ScanOptions.Skip that leaves out
// ThunderbirdSecretStores (by base name) and the Go tool's build
// directories (a test binary holds the canary as a constant).
func SkipSecretStores(path string, d fs.DirEntry) bool {
	name := d.Name()
	if d.IsDir() {
		return strings.HasPrefix(name, "go-build")
	}
	return ThunderbirdSecretStores[name]
}
