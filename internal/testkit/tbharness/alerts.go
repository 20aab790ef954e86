//go:build !windows

package tbharness

import "context"

// Alert is a desktop notification Thunderbird was asked to show (for
// example by an add-on's notifications.create).
type Alert struct {
	Title string `json:"title"`
	Text  string `json:"text"`
	Name  string `json:"name"`
}

// alertStateJS finds the recorder's state, kept on an observer (as the
// prompt watcher's) so it does not depend on a window.
const alertStateJS = `
function alertRecorder() {
  for (const o of Services.obs.enumerateObservers("credsync-harness-alerts")) {
    const w = o.wrappedJSObject;
    if (w && w.credsyncAlertRecorder) return w;
  }
  return null;
}
`

// RecordAlerts replaces Thunderbird's alerts service (nsIAlertsService,
// which a headless Thunderbird cannot show) with a recorder: every alert is
// kept for Alerts and reported shown, then finished, to its listener. Call
// it once per Thunderbird; later calls do nothing.
func (tb *TB) RecordAlerts(ctx context.Context) error {
	return tb.Chrome(ctx, alertStateJS+`
if (alertRecorder()) return;
const seen = [];
const listeners = new Map(); // cookie -> listener, for ClickAlert
const finish = (listener, name) => {
  if (!listener) return;
  setTimeout(() => {
    try { listener.observe(null, "alertshow", name); } catch (e) {}
    try { listener.observe(null, "alertfinished", name); } catch (e) {}
  }, 0);
};
const service = {
  QueryInterface: ChromeUtils.generateQI(["nsIAlertsService"]),
  // 153: showAlert(nsIAlertNotification, nsIObserver)
  showAlert(alert, listener) {
    seen.push({ title: String(alert.title || ""), text: String(alert.text || ""), name: String(alert.name || "") });
    if (listener) listeners.set(String(alert.name || ""), { listener, cookie: alert.cookie || alert.name });
    finish(listener, alert.cookie || alert.name);
  },
  // 140: showAlertNotification(imageUrl, title, text, clickable, cookie, listener, name, …)
  showAlertNotification(imageUrl, title, text, clickable, cookie, listener, name) {
    seen.push({ title: String(title || ""), text: String(text || ""), name: String(name || "") });
    if (listener) listeners.set(String(name || ""), { listener, cookie });
    finish(listener, cookie);
  },
  closeAlert() {},
};
const factory = {
  QueryInterface: ChromeUtils.generateQI(["nsIFactory"]),
  createInstance(iid) { return service.QueryInterface(iid); },
};
const registrar = Components.manager.QueryInterface(Ci.nsIComponentRegistrar);
const cid = Services.uuid.generateUUID();
registrar.registerFactory(cid, "credsync harness alerts", "@mozilla.org/alerts-service;1", factory);
const recorder = { credsyncAlertRecorder: true, seen, listeners, observe() {},
  QueryInterface: ChromeUtils.generateQI(["nsIObserver"]) };
recorder.wrappedJSObject = recorder;
Services.obs.addObserver(recorder, "credsync-harness-alerts");`, nil, nil)
}

// Alerts returns the alerts recorded since RecordAlerts (or ClearAlerts).
func (tb *TB) Alerts(ctx context.Context) ([]Alert, error) {
	var as []Alert
	err := tb.Chrome(ctx, alertStateJS+`
const r = alertRecorder();
if (!r) throw new Error("alert recorder not installed (RecordAlerts)");
return r.seen.map(a => Object.assign({}, a));`, nil, &as)
	return as, err
}

// ClearAlerts forgets the recorded alerts.
func (tb *TB) ClearAlerts(ctx context.Context) error {
	return tb.Chrome(ctx, alertStateJS+`
const r = alertRecorder();
if (r) r.seen.length = 0;`, nil, nil)
}

// ClickAlert clicks the recorded alert of this name (for an add-on's
// notification, its id) as a user would: its listener gets the
// "alertclickcallback" Thunderbird's alert window sends, so the add-on's
// notifications.onClicked fires. A headless Thunderbird shows no alert to
// click; this is the same call the alert's click makes.
func (tb *TB) ClickAlert(ctx context.Context, name string) error {
	return tb.Chrome(ctx, alertStateJS+`
const r = alertRecorder();
if (!r) throw new Error("alert recorder not installed (RecordAlerts)");
const entry = r.listeners.get(arguments[0]);
if (!entry) throw new Error("no clickable alert named " + arguments[0]);
entry.listener.observe(null, "alertclickcallback", entry.cookie);`, []any{name}, nil)
}
