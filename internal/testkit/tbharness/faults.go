//go:build !windows

package tbharness

// Fault injection and process inspection for the security tests
// (internal/e2e/faults_test.go, SECURITY.md).

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
)

// failWritesJS makes the credsync Experiment's login writes (add, modify)
// fail for some logins, by giving its global scope a Services whose logins
// object throws for them: Thunderbird's own login manager stays untouched.
// The logins are those whose origin starts with match.prefix, or the one
// of match.origin and match.username. Every write the Experiment attempts
// through it is recorded ("add|modify|remove origin ok|failed").
const failWritesJS = `
const [id, match] = arguments;
const refused = login => {
  const origin = String(login?.origin ?? "");
  if (match.prefix) return origin.startsWith(match.prefix);
  return origin == match.origin && String(login?.username ?? "") == match.username;
};
const ext = WebExtensionPolicy.getByID(id)?.extension;
for (let i = 0; i < 200 && !ext?.experimentAPIManager?.global?.writeLogins; i++) {
  await new Promise(r => setTimeout(r, 50));
}
const g = ext?.experimentAPIManager?.global;
if (!g || !g.writeLogins) throw new Error("the credsync Experiment is not loaded");
const real = g.__credsyncRealServices || g.Services;
g.__credsyncRealServices = real;
const logins = real.logins;
const calls = [];
g.__credsyncWriteCalls = calls;
const wrap = (name, kind) => {
  const f = logins[name];
  if (!f) return undefined;
  return function(login, ...rest) {
    const origin = String(login?.origin ?? "");
    if (refused(login) && kind != "remove") {
      calls.push(kind + " " + origin + " failed");
      throw new Error("credsync test: writing the " + origin + " login fails");
    }
    const r = f.call(logins, login, ...rest);
    calls.push(kind + " " + origin + " ok");
    return r;
  };
};
const writes = {
  addLoginAsync: wrap("addLoginAsync", "add"),
  modifyLoginAsync: wrap("modifyLoginAsync", "modify"),
  modifyLogin: wrap("modifyLogin", "modify"),
  removeLoginAsync: wrap("removeLoginAsync", "remove"),
  removeLogin: wrap("removeLogin", "remove"),
};
const failing = new Proxy({}, { get(_, p) {
  if (p in writes) return writes[p];
  const v = logins[p];
  return typeof v == "function" ? v.bind(logins) : v;
}});
g.Services = new Proxy({}, { get(_, p) { return p === "logins" ? failing : real[p]; } });`

// FailLoginWrites makes the credsync Experiment of add-on addonID fail to
// write any login whose origin starts with originPrefix (e.g.
// "smtp://"): a stand-in for a disk error or a login manager that refuses
// the second of the two writes a store makes. RestoreLoginWrites undoes it.
func (tb *TB) FailLoginWrites(ctx context.Context, addonID, originPrefix string) error {
	if originPrefix == "" {
		return errors.New("tbharness: FailLoginWrites: empty origin prefix")
	}
	return tb.Chrome(ctx, failWritesJS, []any{addonID, map[string]string{"prefix": originPrefix}}, nil)
}

// FailLoginWrite makes the credsync Experiment of add-on addonID fail to
// write (add or modify) the one login of origin and username, e.g. the
// login only a second account of a transaction has: the login manager
// refuses that write, the others go through (restores included).
// RestoreLoginWrites undoes it.
func (tb *TB) FailLoginWrite(ctx context.Context, addonID, origin, username string) error {
	return tb.Chrome(ctx, failWritesJS, []any{addonID, map[string]string{"origin": origin, "username": username}}, nil)
}

// RestoreLoginWrites gives the Experiment its own Services back and
// returns the writes it attempted meanwhile, in order.
func (tb *TB) RestoreLoginWrites(ctx context.Context, addonID string) ([]string, error) {
	var calls []string
	err := tb.Chrome(ctx, `
const [id] = arguments;
const g = WebExtensionPolicy.getByID(id).extension.experimentAPIManager.global;
if (g.__credsyncRealServices) g.Services = g.__credsyncRealServices;
delete g.__credsyncRealServices;
const calls = g.__credsyncWriteCalls || [];
delete g.__credsyncWriteCalls;
return calls;`, []any{addonID}, &calls)
	return calls, err
}

// consoleJS records every console message (nsIConsoleService: where
// Thunderbird copies each line a native host writes on stderr, "stderr
// output from native app …", and where extensions' console calls go).
const consoleJS = consoleStateJS + `
if (consoleRecorder()) return;
const seen = [];
const listener = {
  credsyncConsole: true,
  seen,
  QueryInterface: ChromeUtils.generateQI(["nsIConsoleListener", "nsIObserver"]),
  observe(m) { try { seen.push(String(m.message ?? m)); } catch (e) {} },
};
listener.wrappedJSObject = listener;
Services.console.registerListener(listener);
// Found again (consoleRecorder) among the observers of a topic of its own.
Services.obs.addObserver(listener, "credsync-console-recorder");`

// consoleStateJS finds the recorder consoleJS installed.
const consoleStateJS = `
function consoleRecorder() {
  for (const o of Services.obs.enumerateObservers("credsync-console-recorder")) {
    const w = o.wrappedJSObject;
    if (w && w.credsyncConsole) return w;
  }
  return null;
}
`

// RecordConsole starts recording Thunderbird's console messages; the
// messages logged before are kept too (ConsoleMessages).
func (tb *TB) RecordConsole(ctx context.Context) error {
	return tb.Chrome(ctx, consoleJS, nil, nil)
}

// ConsoleMessages returns the console's messages: those still in
// Thunderbird's buffer and all recorded since RecordConsole.
func (tb *TB) ConsoleMessages(ctx context.Context) ([]string, error) {
	var msgs []string
	err := tb.Chrome(ctx, consoleStateJS+`
const out = Services.console.getMessageArray().map(m => String(m.message ?? m));
const l = consoleRecorder();
return l ? out.concat(l.seen) : out;`, nil, &msgs)
	return msgs, err
}

// Processes returns the live processes of Thunderbird's process group:
// Thunderbird, its content processes and the native hosts it started.
func (tb *TB) Processes() []int { return groupMembers(tb.Pid()) }

// HostProcesses returns the processes of Thunderbird's group that run
// binary (an absolute path) as a native-messaging host: "binary MANIFEST
// EXTENSION-ID" (Linux; none elsewhere).
func (tb *TB) HostProcesses(binary string) []int {
	var out []int
	for _, pid := range tb.Processes() {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if err != nil {
			continue
		}
		args := bytes.Split(bytes.TrimSuffix(b, []byte{0}), []byte{0})
		if len(args) == 3 && string(args[0]) == binary && bytes.HasSuffix(args[1], []byte(".json")) {
			out = append(out, pid)
		}
	}
	return out
}

// SetPromptAutoCancel turns the prompt watcher's cancelling of dialogs on
// or off (on by default): off, a prompt stays open until the test acts.
func (tb *TB) SetPromptAutoCancel(ctx context.Context, on bool) error {
	return tb.Chrome(ctx, promptStateJS+`
const [on] = arguments;
const w = promptWatcher();
if (!w) throw new Error("prompt watcher not installed");
w.autoCancel = on;`, []any{on}, nil)
}
