//go:build linux

package security

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// peakRSS is a process's peak resident set (VmHWM), in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

// TestHostileFramesStayBounded: a nesting bomb, a flood of pipelined
// requests and frames with repeated keys get their error replies, and the
// real host's peak memory stays under 32 MB throughout (issue 19: today
// 175 MB and 204 MB).
func TestHostileFramesStayBounded(t *testing.T) {
	bin := credsyncBinary(t)
	root := t.TempDir()
	runtimeDir, err := os.MkdirTemp("", "limits")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(runtimeDir)
	h := startHost(t, bin, writeManifest(t, root, bin), envFor(root, runtimeDir, filepath.Join(root, "none.pem")))

	// A port nobody listens on: each verify fails at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	const flood = 20000
	replies := map[string]int{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 0; n < flood+3; n++ {
			select {
			case m, ok := <-h.msgs:
				if !ok {
					return
				}
				replies[m.Get("code").String()]++
			case <-time.After(60 * time.Second):
				return
			}
		}
	}()
	if err := h.w.Write(bytes.Repeat([]byte("["), 1<<20-64)); err != nil {
		t.Fatal(err)
	}
	for _, frame := range []string{
		`{"id":"d1","type":"hello","type":"verify"}`,
		`{"id":"d2","type":"verify","password":"a","password":"b","incoming":{}}`,
	} {
		if err := h.w.Write([]byte(frame)); err != nil {
			t.Fatal(err)
		}
	}
	var batch bytes.Buffer
	for i := 0; i < flood; i++ {
		batch.Reset()
		fmt.Fprintf(&batch, `{"id":"v%d","type":"verify","password":"pw","incoming":{"protocol":"imap","host":"127.0.0.1","port":%d,"socketType":3,"authMethod":3,"username":"u"}}`, i, dead)
		if err := h.w.Write(batch.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	peak := peakRSS(t, h.Pid())
	t.Logf("replies by code: %v; peak RSS %.1f MB", replies, float64(peak)/1e6)
	if replies["invalid_json"] != 3 {
		t.Errorf("%d invalid_json replies, want 3 (the bomb and the repeated keys)", replies["invalid_json"])
	}
	if replies["busy"] == 0 || replies["busy"]+replies[""] < flood {
		t.Errorf("replies %v: want every verify answered, the ones over the cap busy", replies)
	}
	if peak > 32e6 {
		t.Errorf("peak RSS %.1f MB, want under 32 MB", float64(peak)/1e6)
	}
}
