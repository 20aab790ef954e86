//go:build !windows

package tbharness

import (
	"context"
	"fmt"
	"time"
)

// Tab is one tab of Thunderbird's main window (tabmail).
type Tab struct {
	// Mode is the tab's mode: "mail3PaneTab", "contentTab", …
	Mode string `json:"mode"`
	// URL is the document the tab's browser shows ("" without a browser).
	URL string `json:"url"`
	// Selected is true for the tab in front.
	Selected bool `json:"selected"`
	// Loading is true while the tab's browser is loading a document.
	Loading bool `json:"loading"`
}

// Tabs lists the tabs of every Thunderbird window's tabmail.
func (tb *TB) Tabs(ctx context.Context) ([]Tab, error) {
	var tabs []Tab
	err := tb.Chrome(ctx, `
const out = [];
for (const w of Services.wm.getEnumerator("mail:3pane")) {
  const tabmail = w.document.getElementById("tabmail");
  if (!tabmail) continue;
  for (const tab of tabmail.tabInfo) {
    const b = tab.browser || tab.linkedBrowser || null;
    out.push({
      mode: tab.mode ? tab.mode.name : "",
      url: b && b.currentURI ? b.currentURI.spec : "",
      selected: tab === tabmail.currentTabInfo,
      loading: !!(b && b.webProgress && b.webProgress.isLoadingDocument),
    });
  }
}
return out;`, nil, &tabs)
	return tabs, err
}

// WaitTab waits until a tab of tabmail shows url (exactly) and has loaded
// it, and returns it.
func (tb *TB) WaitTab(ctx context.Context, url string, timeout time.Duration) (Tab, error) {
	deadline := time.Now().Add(timeout)
	for {
		tabs, err := tb.Tabs(ctx)
		if err != nil {
			return Tab{}, err
		}
		for _, t := range tabs {
			if t.URL == url && !t.Loading {
				return t, nil
			}
		}
		if time.Now().After(deadline) {
			return Tab{}, fmt.Errorf("tbharness: no tab shows %s after %s; tabs: %+v", url, timeout, tabs)
		}
		select {
		case <-ctx.Done():
			return Tab{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// CloseTabs closes every tabmail tab that shows url and returns how many.
func (tb *TB) CloseTabs(ctx context.Context, url string) (int, error) {
	var n int
	err := tb.Chrome(ctx, `
const [url] = arguments;
let n = 0;
for (const w of Services.wm.getEnumerator("mail:3pane")) {
  const tabmail = w.document.getElementById("tabmail");
  if (!tabmail) continue;
  for (const tab of [...tabmail.tabInfo]) {
    const b = tab.browser || tab.linkedBrowser || null;
    if (b && b.currentURI && b.currentURI.spec == url) {
      tabmail.closeTab(tab);
      n++;
    }
  }
}
return n;`, []any{url}, &n)
	return n, err
}
