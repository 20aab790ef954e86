package policy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultBreachURL is the Pwned Passwords range API.
const DefaultBreachURL = "https://api.pwnedpasswords.com"

// maxRangeBody bounds a range answer (about 1,000 lines of 40 bytes with
// padding).
const maxRangeBody = 2 << 20

// Breach asks a k-anonymity range API whether a password appears in known
// breaches: GET <BaseURL>/range/<first 5 hex digits of its SHA-1> with the
// header "Add-Padding: true". Only those 5 characters leave the machine; the
// answer lists every known hash suffix with that prefix, and the match is
// made here.
type Breach struct {
	// BaseURL of the range API, without "/range"; "" means DefaultBreachURL.
	BaseURL string
	// Client sends the request; nil means a client with the system roots
	// and a 10-second timeout.
	Client *http.Client
}

// rangeLine is one "SUFFIX:COUNT" line.
type rangeLine struct {
	suffix string // 35 upper-case hex digits
	count  int
}

// Count returns how many times password appears in the breach corpus (0:
// not listed).
func (b *Breach) Count(ctx context.Context, password string) (int, error) {
	sum := sha1.Sum([]byte(password))
	hash := strings.ToUpper(hex.EncodeToString(sum[:]))
	prefix, suffix := hash[:5], hash[5:]

	base := b.BaseURL
	if base == "" {
		base = DefaultBreachURL
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/range/"+prefix, nil)
	if err != nil {
		return 0, fmt.Errorf("breach check: bad URL: %w", err)
	}
	req.Header.Set("Add-Padding", "true")
	req.Header.Set("User-Agent", "credsync")
	client := b.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("breach check: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("breach check: HTTP %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxRangeBody+1))
	if err != nil {
		return 0, fmt.Errorf("breach check: %w", err)
	}
	if len(body) > maxRangeBody {
		return 0, errors.New("breach check: the answer is too large")
	}
	lines, err := parseRange(body)
	if err != nil {
		return 0, err
	}
	for _, l := range lines {
		if l.suffix == suffix {
			return l.count, nil
		}
	}
	return 0, nil
}

// parseRange reads a range answer: lines "SUFFIX:COUNT" (35 hex digits, any
// case; CRLF or LF). Padding lines (count 0) are dropped. An answer without
// a single well-formed line is an error: an empty or garbled page must not
// pass for "not breached".
func parseRange(body []byte) ([]rangeLine, error) {
	var out []rangeLine
	wellFormed := 0
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 256), 4096)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		suffix, count, ok := strings.Cut(line, ":")
		if !ok || len(suffix) != 35 || !isHex(suffix) {
			return nil, errors.New("breach check: malformed answer")
		}
		n, err := strconv.Atoi(count)
		if err != nil || n < 0 {
			return nil, errors.New("breach check: malformed answer")
		}
		wellFormed++
		if n > 0 {
			out = append(out, rangeLine{strings.ToUpper(suffix), n})
		}
	}
	if sc.Err() != nil || wellFormed == 0 {
		return nil, errors.New("breach check: malformed answer")
	}
	return out, nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
