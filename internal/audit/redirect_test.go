package audit

import (
	"io/fs"
	"strings"
	"testing"
)

// The rules behind the refusals, on every system (the owner cannot be
// given away without root; redirect_unix_test.go tests the real files).

func TestCheckDirRule(t *testing.T) {
	for _, c := range []struct {
		uid  uint32
		perm fs.FileMode
		bad  string // "" = accepted
	}{
		{1000, 0o700, ""},
		{1000, 0o750, ""}, // readable by the group: no one can plant a file
		{1000, 0o770, "writable"},
		{1000, 0o777, "writable"},
		{1000, 0o702, "writable"},
		{0, 0o700, "owned by"},
		{1001, 0o700, "owned by"},
	} {
		err := checkDir(c.uid, 1000, c.perm)
		if c.bad == "" && err != nil || c.bad != "" && (err == nil || !strings.Contains(err.Error(), c.bad)) {
			t.Errorf("checkDir(uid %d, mode %04o) = %v, want %q", c.uid, c.perm, err, c.bad)
		}
	}
}

func TestCheckFileRule(t *testing.T) {
	for _, c := range []struct {
		mode  fs.FileMode
		uid   uint32
		links uint64
		bad   string
	}{
		{0o600, 1000, 1, ""},
		{0o644, 1000, 1, ""}, // made private again afterwards
		{0o600, 0, 1, "owned by"},
		{0o600, 1000, 2, "link"},
		{fs.ModeNamedPipe | 0o600, 1000, 1, "not a regular file"},
		{fs.ModeDevice | 0o600, 1000, 1, "not a regular file"},
	} {
		err := checkFile(c.mode, c.uid, 1000, c.links)
		if c.bad == "" && err != nil || c.bad != "" && (err == nil || !strings.Contains(err.Error(), c.bad)) {
			t.Errorf("checkFile(%v, uid %d, %d links) = %v, want %q", c.mode, c.uid, c.links, err, c.bad)
		}
	}
}
