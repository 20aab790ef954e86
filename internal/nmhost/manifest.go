package nmhost

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// MaxManifestSize bounds how much of a manifest file ReadManifest reads.
// credsync's own manifest is about 250 bytes.
const MaxManifestSize = 64 << 10

// Description is the "description" credsync writes into its manifest.
const Description = "credsync: changes mail passwords and keeps Thunderbird's saved logins in sync"

var (
	// ErrInvalidManifest wraps every reason ReadManifest and ParseManifest
	// reject a manifest for.
	ErrInvalidManifest = errors.New("invalid native-messaging manifest")
	// ErrManifestTooLarge is returned (wrapped, together with
	// ErrInvalidManifest) for a manifest above MaxManifestSize.
	ErrManifestTooLarge = errors.New("manifest too large")
	// ErrNotAllowed is returned by CheckCaller when the manifest does not
	// list the extension ID.
	ErrNotAllowed = errors.New("extension not allowed by the manifest")
)

// Manifest is a native-messaging host manifest (Gecko schema
// native_manifest.json, type "stdio").
type Manifest struct {
	Name              string   `json:"name"`
	Description       string   `json:"description"`
	Path              string   `json:"path"`
	Type              string   `json:"type"`
	AllowedExtensions []string `json:"allowed_extensions"`
}

// NewManifest returns credsync's manifest for the host binary at binary
// (an absolute path), allowing extensionIDs, or only ExtensionID when none
// are given. Duplicate and empty IDs are dropped.
func NewManifest(binary string, extensionIDs ...string) Manifest {
	ids := make([]string, 0, len(extensionIDs))
	for _, id := range extensionIDs {
		if id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		ids = append(ids, ExtensionID)
	}
	return Manifest{
		Name:              HostName,
		Description:       Description,
		Path:              binary,
		Type:              "stdio",
		AllowedExtensions: ids,
	}
}

// Allows reports whether extensionID is listed in allowed_extensions
// (exact, case-sensitive match as in Thunderbird). The empty ID is never
// allowed.
func (m Manifest) Allows(extensionID string) bool {
	return extensionID != "" && slices.Contains(m.AllowedExtensions, extensionID)
}

// JSON renders the manifest as indented JSON with a final newline, the form
// Install writes and "credsync install --print" prints.
func (m Manifest) JSON() ([]byte, error) {
	if m.AllowedExtensions == nil {
		m.AllowedExtensions = []string{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

var namePattern = regexp.MustCompile(`^\w+(\.\w+)*$`)

// Validate checks what Thunderbird checks beyond the JSON types, for a
// manifest meant for goos: name is HostName, type is "stdio", path is
// absolute (Thunderbird requires it except on Windows; credsync always
// writes an absolute path), and allowed_extensions names at least one
// non-empty ID. It returns all problems joined.
func (m Manifest) Validate(goos string) error {
	var errs []error
	if !namePattern.MatchString(m.Name) {
		errs = append(errs, fmt.Errorf("name %q is not a valid host name (letters, digits, _ and dots only)", m.Name))
	} else if m.Name != HostName {
		errs = append(errs, fmt.Errorf("name is %q, want %q", m.Name, HostName))
	}
	if m.Type != "stdio" {
		errs = append(errs, fmt.Errorf("type is %q, want \"stdio\"", m.Type))
	}
	if m.Path == "" {
		errs = append(errs, errors.New("path is empty"))
	} else if !IsAbs(goos, m.Path) {
		errs = append(errs, fmt.Errorf("path %q is not absolute", m.Path))
	}
	if len(m.AllowedExtensions) == 0 {
		errs = append(errs, errors.New("allowed_extensions is empty"))
	}
	if slices.Contains(m.AllowedExtensions, "") {
		errs = append(errs, errors.New("allowed_extensions contains an empty ID"))
	}
	return errors.Join(errs...)
}

// ReadManifest reads and parses the manifest file at path. It refuses
// anything but a regular file of at most MaxManifestSize bytes; see
// ParseManifest for the JSON rules.
func ReadManifest(path string) (Manifest, error) {
	// Stat before opening: opening a FIFO would block.
	fi, err := os.Stat(path)
	if err != nil {
		return Manifest{}, err
	}
	if !fi.Mode().IsRegular() {
		return Manifest{}, fmt.Errorf("%w: %s is not a regular file", ErrInvalidManifest, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return Manifest{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxManifestSize+1))
	if err != nil {
		return Manifest{}, err
	}
	// Reading one byte more than allowed lets ParseManifest see that the
	// file is too large.
	m, err := ParseManifest(data)
	if err != nil {
		return Manifest{}, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// ParseManifest parses a manifest strictly: one UTF-8 JSON object and
// nothing after it; exactly the five members of the schema, each present
// once, spelled exactly (Go's usual case-insensitive matching is not used);
// name, description, path and type JSON strings; allowed_extensions an
// array of strings. null is not a string. Semantic checks are Validate's.
// Every error wraps ErrInvalidManifest.
func ParseManifest(data []byte) (Manifest, error) {
	m, err := parseManifest(data)
	if err != nil {
		return Manifest{}, &invalidManifestError{reason: err}
	}
	return m, nil
}

// invalidManifestError is ParseManifest's error: it matches
// ErrInvalidManifest and wraps the reason.
type invalidManifestError struct{ reason error }

func (e *invalidManifestError) Error() string {
	return ErrInvalidManifest.Error() + ": " + e.reason.Error()
}
func (e *invalidManifestError) Is(target error) bool { return target == ErrInvalidManifest }
func (e *invalidManifestError) Unwrap() error        { return e.reason }

// invalidReason returns why a manifest is invalid, without the path and
// the "invalid native-messaging manifest" prefix, or err itself.
func invalidReason(err error) error {
	var ie *invalidManifestError
	if errors.As(err, &ie) {
		return ie.reason
	}
	return err
}

func parseManifest(data []byte) (Manifest, error) {
	if len(data) > MaxManifestSize {
		return Manifest{}, fmt.Errorf("%w (more than %d bytes)", ErrManifestTooLarge, MaxManifestSize)
	}
	if !utf8.Valid(data) {
		return Manifest{}, errors.New("not valid UTF-8")
	}
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return Manifest{}, errors.New("not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // the '{' checked above
		return Manifest{}, noEOF(err)
	}
	var m Manifest
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return Manifest{}, noEOF(err)
		}
		key, _ := tok.(string) // object keys are always strings
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return Manifest{}, fmt.Errorf("member %q: %w", key, noEOF(err))
		}
		if seen[key] {
			return Manifest{}, fmt.Errorf("member %q appears twice", key)
		}
		seen[key] = true
		switch key {
		case "name":
			err = decodeString(raw, &m.Name)
		case "description":
			err = decodeString(raw, &m.Description)
		case "path":
			err = decodeString(raw, &m.Path)
		case "type":
			err = decodeString(raw, &m.Type)
		case "allowed_extensions":
			m.AllowedExtensions, err = decodeStrings(raw)
		default:
			err = errors.New("unknown member (Thunderbird rejects it too)")
		}
		if err != nil {
			return Manifest{}, fmt.Errorf("member %q: %w", key, err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return Manifest{}, noEOF(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Manifest{}, errors.New("data after the JSON object")
	}
	var missing []string
	for _, k := range []string{"name", "description", "path", "type", "allowed_extensions"} {
		if !seen[k] {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return Manifest{}, fmt.Errorf("missing member(s): %s", strings.Join(missing, ", "))
	}
	return m, nil
}

// noEOF turns the decoder's io.EOF inside the object into
// io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func decodeString(raw json.RawMessage, dst *string) error {
	if len(raw) == 0 || raw[0] != '"' {
		return fmt.Errorf("want a string, got %s", jsonKind(raw))
	}
	return json.Unmarshal(raw, dst)
}

func decodeStrings(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || raw[0] != '[' {
		return nil, fmt.Errorf("want an array of strings, got %s", jsonKind(raw))
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, err
	}
	out := make([]string, len(elems))
	for i, e := range elems {
		if err := decodeString(e, &out[i]); err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
	}
	return out, nil
}

func jsonKind(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// CheckCaller is the host's start-up check: it reads the manifest
// Thunderbird passed as the first argument and returns ErrNotAllowed
// (wrapped) unless extensionID, the second argument, is in its
// allowed_extensions.
func CheckCaller(manifestPath, extensionID string) (Manifest, error) {
	m, err := ReadManifest(manifestPath)
	if err != nil {
		return Manifest{}, err
	}
	if !m.Allows(extensionID) {
		return m, fmt.Errorf("%w: %q is not in allowed_extensions of %s", ErrNotAllowed, extensionID, manifestPath)
	}
	return m, nil
}
