//go:build !windows

package tbharness

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Page is a page (e.g. an extension's moz-extension:// page) open in a
// Thunderbird tab.
//
// Marionette's content context does not reach Thunderbird tabs (its
// TabManager only knows Firefox's tabbrowser), and extension pages run in the
// remote "extension" process, so a chrome script cannot read their DOM. Page
// therefore loads a message-manager frame script into the tab's <browser>;
// the frame script evaluates code in a sandbox with the page's own principal
// and the page's window as prototype (like Marionette's content scripts), so
// the code sees the page's DOM and its extension API (browser.*), and
// reports the JSON result back to the chrome side.
type Page struct {
	tb  *TB
	tag string
	URL string
	// OpenedAt is Thunderbird's clock (Date.now(), ms since the epoch)
	// just before the tab was opened: page timings (performance.timeOrigin
	// + a mark) minus OpenedAt are the time from opening.
	OpenedAt float64
}

const pageChromeJS = `
function pageBrowser(tag) {
  for (const w of Services.wm.getEnumerator(null)) {
    const b = w.document.querySelector('browser[data-credsync-page="' + tag + '"]');
    if (b) return b;
  }
  throw new Error("page " + tag + " is gone");
}
`

// pageFrameScript runs in the tab's content process.
const pageFrameScript = `(function(global) {
  if (global.__credsyncPageEval) return;
  global.__credsyncPageEval = true;
  addMessageListener("credsync-test:eval", msg => {
    const { id, code, args } = msg.data;
    const reply = r => sendAsyncMessage("credsync-test:result", Object.assign({ id }, r));
    let p;
    try {
      const sb = Cu.Sandbox(content, { sandboxPrototype: content, wantXrays: false, sandboxName: "credsync-test-page" });
      sb.__credsyncArgs = Cu.cloneInto(args, sb);
      p = Cu.evalInSandbox(
        "(async function() {\n" + code + "\n}).apply(null, __credsyncArgs)" +
        ".then(v => JSON.stringify(v === undefined ? null : v))", sb, "latest", "credsync-test-page.js", 1);
    } catch (e) {
      reply({ error: String(e) });
      return;
    }
    p.then(json => reply({ json }), e => reply({ error: String(e) + (e && e.stack ? "\n" + e.stack : "") }));
  });
})(this);`

// OpenPage opens url in a new Thunderbird tab, waits until its document has
// loaded, and prepares it for Eval.
func (tb *TB) OpenPage(ctx context.Context, url string) (*Page, error) {
	tag := fmt.Sprintf("p%d", tb.pageSeq.Add(1))
	var openedAt float64
	err := tb.Chrome(ctx, `
const [url, tag, frameScript] = arguments;
const w = mainWindow();
const tabmail = w.document.getElementById("tabmail");
const openedAt = Date.now();
const tab = tabmail.openTab("contentTab", { url, background: false });
const b = tab.browser || tab.linkedBrowser;
if (!b) throw new Error("tab has no browser");
b.setAttribute("data-credsync-page", tag);
for (let i = 0; i < 400; i++) {
  if (b.currentURI && b.currentURI.spec == url && !b.webProgress?.isLoadingDocument) break;
  await new Promise(r => setTimeout(r, 50));
}
if (!b.currentURI || b.currentURI.spec != url) throw new Error("tab shows " + (b.currentURI && b.currentURI.spec) + ", not " + url);
b.messageManager.loadFrameScript("data:application/javascript;charset=utf-8," + encodeURIComponent(frameScript), false);
return openedAt;`,
		[]any{url, tag, pageFrameScript}, &openedAt)
	if err != nil {
		return nil, err
	}
	p := &Page{tb: tb, tag: tag, URL: url, OpenedAt: openedAt}
	// Wait for the DOM (the tab may still be loading in its process).
	deadline := time.Now().Add(20 * time.Second)
	for {
		var state string
		err := p.Eval(ctx, `return document.readyState;`, nil, &state)
		if err == nil && state == "complete" {
			return p, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("tbharness: page %s not loaded (readyState %q, %v)", url, state, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// EvalError is an exception thrown by page code.
type EvalError struct{ Message string }

func (e *EvalError) Error() string { return "tbharness: page script: " + e.Message }

// Eval runs body (an async function body; arguments are args) in the page
// and decodes its JSON-serialisable result into out (may be nil).
func (p *Page) Eval(ctx context.Context, body string, args []any, out any) error {
	if args == nil {
		args = []any{}
	}
	// Stay below the Marionette script timeout Launch sets (120 s).
	timeout := 100 * time.Second
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	var r struct {
		JSON  *string `json:"json"`
		Error *string `json:"error"`
	}
	err := p.tb.Chrome(ctx, pageChromeJS+`
const [tag, code, args, timeoutMs] = arguments;
const b = pageBrowser(tag);
const mm = b.messageManager;
const id = String(Math.random()).slice(2) + Date.now();
return await new Promise(resolve => {
  const l = {
    receiveMessage(m) {
      if (m.data.id != id) return;
      mm.removeMessageListener("credsync-test:result", l);
      clearTimeout(timer);
      resolve(m.data);
    },
  };
  const timer = setTimeout(() => {
    mm.removeMessageListener("credsync-test:result", l);
    resolve({ error: "page script did not answer within " + timeoutMs + " ms" });
  }, timeoutMs);
  mm.addMessageListener("credsync-test:result", l);
  mm.sendAsyncMessage("credsync-test:eval", { id, code, args });
});`, []any{p.tag, body, args, timeout.Milliseconds()}, &r)
	if err != nil {
		return err
	}
	if r.Error != nil {
		return &EvalError{Message: *r.Error}
	}
	if out == nil || r.JSON == nil {
		return nil
	}
	if err := json.Unmarshal([]byte(*r.JSON), out); err != nil {
		return fmt.Errorf("tbharness: page result %q: %w", truncateStr(*r.JSON, 200), err)
	}
	return nil
}

// WaitFor evaluates body every interval until it returns a truthy JSON value
// (not null/false/""/0) or ctx ends; the last value is decoded into out.
func (p *Page) WaitFor(ctx context.Context, body string, args []any, interval time.Duration, out any) error {
	var last json.RawMessage
	var lastErr error
	for {
		lastErr = p.Eval(ctx, body, args, &last)
		if lastErr == nil {
			switch strings.TrimSpace(string(last)) {
			case "", "null", "false", `""`, "0":
			default:
				if out != nil {
					return json.Unmarshal(last, out)
				}
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("tbharness: waiting in page: %w (last value %s, last error %v)", ctx.Err(), truncateStr(string(last), 300), lastErr)
		case <-time.After(interval):
		}
	}
}

// Close closes the page's tab.
func (p *Page) Close(ctx context.Context) error {
	return p.tb.Chrome(ctx, pageChromeJS+`
const [tag] = arguments;
let b;
try { b = pageBrowser(tag); } catch (e) { return; }
const tabmail = b.ownerDocument.getElementById("tabmail");
const tab = tabmail.tabInfo.find(t => (t.browser || t.linkedBrowser) === b);
if (tab) tabmail.closeTab(tab);`, []any{p.tag}, nil)
}

func truncateStr(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func remarshal(in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}
