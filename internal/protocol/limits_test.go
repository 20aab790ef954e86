package protocol

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/credsync/credsync/internal/wire"
)

// limitsHost serves a Host on a pipe and returns the writer of frames to
// it and the reader of its frames.
func limitsHost(t *testing.T) (*wire.Writer, *wire.Reader) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&Host{Version: "test"}).Serve(ctx, inR, outW)
		outW.Close()
	}()
	t.Cleanup(func() {
		cancel()
		inW.Close()
		go io.Copy(io.Discard, outR)
		<-done
	})
	return wire.NewWriter(inW), wire.NewReader(outR, 0)
}

func readFrame(t *testing.T, r *wire.Reader) gjson.Result {
	t.Helper()
	body, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	return gjson.ParseBytes(body)
}

func TestFramesThatNestTooDeepAreRefusedByAScan(t *testing.T) {
	w, r := limitsHost(t)
	bomb := bytes.Repeat([]byte("["), 1<<20-16)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := checkShape(bomb); err == nil || !strings.Contains(err.Error(), "deeper than 64") {
		t.Fatalf("checkShape(1 MiB of [) = %v", err)
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("refusing a 1 MiB nesting bomb allocated %d bytes", grew)
	}
	if err := w.Write(bomb); err != nil {
		t.Fatal(err)
	}
	reply := readFrame(t, r)
	if reply.Get("code").String() != "invalid_json" || reply.Get("id").Type != gjson.Null {
		t.Fatalf("reply %s", reply.Raw)
	}
	// 64 levels are fine; 65 are not.
	ok := `{"id":"1","type":"hello","x":` + strings.Repeat("[", 62) + strings.Repeat("]", 62) + `}`
	if err := checkShape([]byte(ok)); err != nil {
		t.Errorf("64 levels: %v", err)
	}
	deep := `{"id":"1","type":"hello","x":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + `}`
	if err := checkShape([]byte(deep)); err == nil {
		t.Errorf("66 levels accepted")
	}
}

func TestFramesWithARepeatedKeyAreRefused(t *testing.T) {
	w, r := limitsHost(t)
	for _, frame := range []string{
		`{"id":"1","type":"hello","type":"verify"}`,
		`{"id":"2","type":"sync","accountId":"a","password":"x","password":"y"}`,
		`{"id":"3","type":"change","backend":{"name":"ldap","name":"aruba"}}`,
		`{"id":"4","type":"hello","list":[{"a":1},{"a":2,"b":{"c":1,"c":2}}]}`,
	} {
		if err := w.Write([]byte(frame)); err != nil {
			t.Fatal(err)
		}
		reply := readFrame(t, r)
		if reply.Get("code").String() != "invalid_json" || !strings.Contains(reply.Get("message").String(), "repeats the key") {
			t.Errorf("%s: reply %s", frame, reply.Raw)
		}
	}
	// The same key in sibling objects is no repetition.
	if err := w.Write([]byte(`{"id":"5","type":"hello","list":[{"a":1},{"a":2}]}`)); err != nil {
		t.Fatal(err)
	}
	if reply := readFrame(t, r); reply.Get("status").String() != "ok" {
		t.Errorf("hello with sibling keys: %s", reply.Raw)
	}
}

// TestRequestsInFlightAreCapped: requests beyond maxInFlight get busy at
// once; the ones running are unaffected.
func TestRequestsInFlightAreCapped(t *testing.T) {
	w, r := limitsHost(t)
	const sent = maxInFlight + 4
	go func() { // the pipe is synchronous: write while the replies are read
		for i := 1; i <= sent; i++ {
			// Each sync waits for the extension's accounts, which never come.
			w.Write([]byte(fmt.Sprintf(`{"id":"%d","type":"sync","accountId":"account1","password":"pw-%d"}`, i, i)))
		}
	}()
	var busy []string
	asked := 0
	for len(busy)+asked < sent {
		m := readFrame(t, r)
		switch {
		case m.Get("type").String() == "accounts":
			asked++
		case m.Get("code").String() == "busy":
			busy = append(busy, m.Get("id").String())
		default:
			t.Fatalf("unexpected %s", m.Raw)
		}
	}
	if asked != maxInFlight || strings.Join(busy, ",") != "17,18,19,20" {
		t.Fatalf("%d requests started, busy %v; want %d started and 17-20 busy", asked, busy, maxInFlight)
	}
}

// TestSocketOverItsCapSaysBusyBeforeReading: a connection over the cap is
// told, in a frame, that nothing of it was read.
func TestSocketOverItsCapSaysBusyBeforeReading(t *testing.T) {
	server, client := net.Pipe()
	go refuseBusy(server)
	client.SetDeadline(time.Now().Add(5 * time.Second))
	body, err := wire.NewReader(client, 0).Read()
	if err != nil {
		t.Fatal(err)
	}
	var reply struct {
		ID      *string `json:"id"`
		Status  string  `json:"status"`
		Code    string  `json:"code"`
		Message string  `json:"message"`
	}
	if err := json.Unmarshal(body, &reply); err != nil || reply.ID != nil || reply.Status != "error" || reply.Code != "busy" ||
		!strings.Contains(reply.Message, "nothing was read") {
		t.Fatalf("reply %s (%v)", body, err)
	}
}
