// lib/popupstate.js: the popup's logic without its DOM.

import assert from "node:assert/strict";
import { test } from "node:test";
import { fakeMessenger, imapAccount, settle } from "./fake.js";

globalThis.messenger = fakeMessenger();
const p = await import("../../extension/lib/popupstate.js");
const { backendTable } = await import("../../extension/lib/providers.js");

const backends = backendTable({
  backends: [{ name: "sandbox" }, { name: "roundcube", webPage: "url", rules: { minLength: 8 } }],
});
const account = { ...imapAccount("a1", { name: "A" }), passwordBased: true, backend: { name: "roundcube", url: "https://w/" }, siblings: ["a2"] };
const sibling = { ...imapAccount("a2", { name: "B" }), passwordBased: true, backend: null, siblings: ["a1"] };
const oauth = { ...imapAccount("a3", { name: "G", authMethod: 10 }), passwordBased: false, backend: null, siblings: [] };

test("viewOf: sync, change with a usable back-end, guided without one or after a failure", () => {
  assert.equal(p.viewOf({ mode: "sync", account }), "sync");
  assert.equal(p.viewOf({ mode: "change", account, backends }), "change");
  assert.equal(p.viewOf({ mode: "change", account, backends: null }), "change", "before hello, assumed usable");
  assert.equal(p.viewOf({ mode: "change", account: sibling, backends }), "guided");
  assert.equal(p.viewOf({ mode: "change", account: { ...account, backend: { name: "gone" } }, backends }), "guided");
  assert.equal(p.viewOf({ mode: "change", account, backends, forcedGuided: new Set(["a1"]) }), "guided");
  assert.equal(p.viewOf({ mode: "change", account: oauth, backends }), "change");
});

test("accountLabel and siblingsHint", () => {
  assert.equal(p.accountLabel(account), "A");
  assert.equal(p.accountLabel(oauth), "G (signs in with OAuth2: no password to change)");
  assert.equal(p.siblingsHint(account, [account, sibling]), "Mailboxes with the same login, updated too: “B”");
  assert.equal(p.siblingsHint(oauth, [account, sibling, oauth]), "");
});

test("localProblems: empty fields and mismatch on submit; only touched fields while typing", () => {
  const values = { current: "", new: "", repeat: "x", password: "" };
  const rules = list => list.map(([field, , rule]) => `${field}:${rule}`);
  assert.deepEqual(rules(p.localProblems({ view: "change", values, onlyTouched: false, account })), [
    "current:current_required",
    "new:empty",
    "repeat:mismatch",
  ]);
  assert.deepEqual(p.localProblems({ view: "change", values, onlyTouched: true, touched: new Set(["new"]), account }), []);
  assert.deepEqual(rules(p.localProblems({ view: "change", values, onlyTouched: true, touched: new Set(["repeat"]), account })), [
    "repeat:mismatch",
  ]);
  assert.deepEqual(rules(p.localProblems({ view: "sync", values, onlyTouched: false, account })), ["password:empty"]);
  assert.deepEqual(p.localProblems({ view: "guided", values, onlyTouched: false, account }), []);
  assert.deepEqual(rules(p.localProblems({ view: "change", values, onlyTouched: false, account: oauth })), ["account:undefined"]);
});

test("checkRequest: the back-end and current password in change mode, only the password in sync mode", () => {
  const values = { current: "old", new: "next", repeat: "", password: "typed" };
  assert.deepEqual(p.checkRequest({ view: "change", values, account }), { new: "next", backend: "roundcube", current: "old" });
  assert.deepEqual(p.checkRequest({ view: "sync", values, account }), { new: "typed" });
  assert.equal(p.checkRequest({ view: "change", values: { ...values, new: "" }, account }), null);
  assert.equal(p.checkRequest({ view: "change", values, account, touched: new Set(["current"]) }), null);
  assert.equal(p.checkRequest({ view: "guided", values, account }), null);
});

test("violationProblems: the host's violations as texts of the password field", () => {
  const found = p.violationProblems([{ rule: "too_short", minLength: 8 }, { rule: "needs_digit" }], { view: "change" });
  assert.deepEqual(found, [
    ["new", "Too short: the provider wants at least 8 characters.", "too_short"],
    ["new", "Needs a digit (0-9).", "needs_digit"],
  ]);
  assert.equal(p.violationProblems([{ rule: "empty" }], { view: "sync" })[0][0], "password");
});

test("stepsFor and stepUpdates: no provider step for a sync, no outgoing check without an outgoing password, siblings saved with saving", () => {
  const ids = list => list.map(([step]) => step);
  assert.deepEqual(ids(p.stepsFor(account, "change", [sibling])), [
    "policy",
    "changing",
    "checking_incoming",
    "checking_outgoing",
    "saving",
    "sibling:a2",
  ]);
  const noAuthSmtp = { ...account, outgoing: { ...account.outgoing, authMethod: 1 } };
  assert.deepEqual(ids(p.stepsFor(noAuthSmtp, "sync")), ["policy", "checking_incoming", "saving"]);
  assert.equal(p.stepsFor(account, "change", [sibling]).at(-1)[1], "Saving for “B” too");
  assert.deepEqual(p.stepUpdates("saving", "ok", [sibling]), [
    ["saving", "ok"],
    ["sibling:a2", "ok"],
  ]);
  assert.deepEqual(p.stepUpdates("policy", "ok", [sibling]), [["policy", "ok"]]);
});

test("outcome: success names the other accounts; errors focus the right field and offer guided mode", () => {
  const ok = p.outcome(
    { ok: true, result: { accounts: [{ id: "a1", name: "A", sides: ["incoming"] }, { id: "a2", name: "B", sides: ["incoming"] }], auditFailed: true } },
    { kind: "change", accountId: "a1", account, backends }
  );
  assert.equal(ok.kind, "success");
  assert.match(ok.text, /works for incoming mail .* Also saved for “B”\.$/);
  assert.match(ok.note, /could not write this to its log/);
  const wrong = p.outcome({ ok: false, error: { code: "wrong_current_password" } }, { kind: "change", accountId: "a1", account, backends });
  assert.equal(wrong.focus, "current");
  const page = p.outcome({ ok: false, error: { code: "page_not_recognised" } }, { kind: "change", accountId: "a1", account, backends });
  assert.equal(page.offerGuided, true);
  const unreachable = p.outcome({ ok: false, error: { code: "backend_unreachable" } }, { kind: "change", accountId: "a1", account, backends });
  assert.equal(unreachable.offerGuided, true, "roundcube works through a web site");
  const inSync = p.outcome({ ok: false, error: { code: "page_not_recognised" } }, { kind: "sync", accountId: "a1", account, backends });
  assert.equal(inSync.offerGuided, false);
  const store = p.outcome(
    { ok: false, error: { code: "store_failed", changed: true, accounts: [{ id: "a1", name: "A" }, { id: "a2", name: "B" }], logins: [] } },
    { kind: "change", accountId: "a1", account, backends }
  );
  assert.equal(store.kind, "error");
  assert.match(store.text, /changed at the provider.*Thunderbird still has the old password for “A”, “B”\./);
  assert.equal(p.outcome({ ok: false }, { kind: "sync" }).text, "credsync failed unexpectedly. Nothing was changed.");
});

test("createChecker: debounced; an answer a later request overtook is dropped; busy follows", async () => {
  const sent = [];
  const results = [];
  const busy = [];
  const answers = new Map();
  const checker = p.createChecker({
    delayMs: 5,
    send: req => {
      sent.push(req.new);
      return new Promise(resolve => answers.set(req.new, resolve));
    },
    onResult: violations => results.push(violations),
    onBusy: b => busy.push(b),
  });
  checker.schedule({ new: "a" });
  checker.schedule({ new: "ab" });
  await settle(15);
  assert.deepEqual(sent, ["ab"], "only the last of a quick burst is sent");
  const latest = checker.now({ new: "abc" });
  answers.get("abc")({ violations: [{ rule: "too_short" }] });
  answers.get("ab")({ violations: [{ rule: "stale" }] });
  assert.deepEqual(await latest, [{ rule: "too_short" }]);
  await settle();
  assert.deepEqual(results, [[{ rule: "too_short" }]], "the stale answer is dropped");
  assert.equal(busy.at(-1), false);

  const failing = p.createChecker({ send: async () => Promise.reject(new Error("host gone")), onResult: v => results.push(v) });
  assert.equal(await failing.now({ new: "x" }), null, "a failed check reports null");
  checker.schedule({ new: "later" });
  checker.cancel();
  await settle(15);
  assert.equal(sent.includes("later"), false);
});

test("outcome: a change's breach check is said under the status line, with the audit note", () => {
  const ok = p.outcome({ ok: true, result: { changed: true, stored: true, breachCheck: "unavailable", auditFailed: true, accounts: [] } }, { kind: "change", accountId: "a1" });
  assert.equal(ok.kind, "success");
  assert.match(ok.note, /^The new password could not be checked against known data breaches .*Note: credsync could not write/);
  const listed = p.outcome({ ok: false, error: { code: "policy_violation", rule: "breached", breaches: 3 } }, { kind: "change", accountId: "a1" });
  assert.deepEqual([listed.kind, listed.focus], ["error", "new"]);
  assert.match(listed.text, /appears 3 times in known data breaches/);
});

test("waitingLine: the next check's time and the failed logins of the budget", () => {
  const line = p.waitingLine({ nextCheck: "2026-12-07T09:15:00Z", checks: 1, failedLogins: 3, budget: 4 }, d => d.toISOString().slice(11, 16));
  assert.match(line, /Waiting for the mail servers/);
  assert.match(line, /09:15/);
  assert.match(line, /3 of 4 failed logins/);
  assert.match(p.waitingLine({ nextCheck: "soon" }), /Next check at \?/, "an unreadable time is not invented");
});

test("outcome: a change that waited for the servers says how the wait ended", () => {
  const stored = p.outcome(
    { ok: true, result: { changed: true, stored: true, accounts: [{ id: "a1", name: "A", sides: ["incoming"] }], waited: { end: "accepted", checks: 2 } } },
    { kind: "change", accountId: "a1", account, backends }
  );
  assert.equal(stored.kind, "success");
  assert.match(stored.note, /took a while/);
  for (const [end, words] of [
    ["schedule_over", /15 minutes/],
    ["budget_spent", /not to lock the account/],
    ["cancelled", /You stopped the wait/],
  ]) {
    const said = p.outcome(
      { ok: false, error: { code: "verification_failed", changed: true, message: "", waited: { end, checks: 2, failedLogins: 4, budget: 4 } } },
      { kind: "change", accountId: "a1", account, backends, changing: true }
    );
    assert.equal(said.kind, "error");
    assert.match(said.text, words, end);
    assert.match(said.text, /already changed it elsewhere/, `${end}: what to do next`);
    assert.equal(said.offerGuided, false);
  }
  assert.equal(p.describeWaited(undefined), "");
});
