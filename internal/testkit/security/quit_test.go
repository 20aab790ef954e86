//go:build linux

package security

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/audit"
	"github.com/credsync/credsync/internal/testkit/sandbox"
)

// TestHostOutlivesThunderbird: Thunderbird quits (or crashes) while the
// host waits for its answer to store: both ends of the port close. The
// host ends the flow as store_unconfirmed, records it in the audit log
// with the provider changed — the only trace that the provider has the
// new password — and exits normally, not killed by the broken pipe.
func TestHostOutlivesThunderbird(t *testing.T) {
	bin := credsyncBinary(t)
	const old, next = "Old-Passw0rd-1", "New-Passw0rd-2"
	sb, err := sandbox.Start(sandbox.Options{Users: map[string]string{hygieneUser: old}})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	root := t.TempDir()
	caFile := filepath.Join(root, "ca.pem")
	if err := sb.WriteCA(caFile); err != nil {
		t.Fatal(err)
	}
	runtimeDir, err := os.MkdirTemp("", "quit")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(runtimeDir)
	h := startHost(t, bin, writeManifest(t, root, bin), envFor(root, runtimeDir, caFile))
	h.HoldStore = make(chan gjson.Result, 1)
	h.Accounts = []any{map[string]any{"id": "account1", "name": "Alice", "incoming": endpointJSON(t, "imap", sb.IMAPS), "outgoing": endpointJSON(t, "smtp", sb.SMTPS)}}
	h.send(map[string]any{"id": "c", "type": "change", "accountId": "account1",
		"backend": map[string]any{"name": "sandbox", "url": sb.ChangeURL}, "current": old, "new": next})
	select {
	case <-h.HoldStore:
	case <-time.After(30 * time.Second):
		t.Fatalf("no store request; stderr:\n%s", h.Stderr.Bytes())
	}
	// Thunderbird is gone: its end of both pipes closes.
	h.out.Close()
	h.in.Close()
	select {
	case <-h.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the host did not exit")
	}
	if h.waitErr != nil {
		t.Errorf("the host exited with %v; stderr:\n%s", h.waitErr, h.Stderr.Bytes())
	}
	f, err := os.Open(filepath.Join(root, "state", "credsync", "audit.log"))
	if err != nil {
		t.Fatalf("no audit log: %v; stderr:\n%s", err, h.Stderr.Bytes())
	}
	defer f.Close()
	recs, _, err := audit.Tail(f, 0)
	if err != nil || len(recs) != 1 || recs[0].Outcome != "store_unconfirmed" || !recs[0].Changed {
		t.Fatalf("audit %+v, %v; want one store_unconfirmed record, changed", recs, err)
	}
}
