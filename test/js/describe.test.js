// lib/describe.js and _locales: every code has a text in both locales, and
// the texts built from results and errors.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { fakeMessenger, loadMessages } from "./fake.js";

globalThis.messenger = fakeMessenger();
const describe = await import("../../extension/lib/describe.js");

const ROOT = new URL("../../", import.meta.url);
const LOCALES = ["en", "it"];
const messages = Object.fromEntries(LOCALES.map(l => [l, loadMessages(l)]));

// PROTOCOL.md's error table and its list of the extension's own codes,
// plus the codes design-v2 adds (until PROTOCOL.md lists them).
function protocolCodes() {
  const text = readFileSync(new URL("PROTOCOL.md", ROOT), "utf8");
  const section = text.slice(text.indexOf("## Error codes"));
  const table = [...section.matchAll(/^\| `([a-z_]+)` \|/gm)].map(m => m[1]);
  const own = section.match(/Codes the extension produces itself[\s\S]*?\n\n/)?.[0] ?? "";
  const requests = new Set(["hello", "verify", "change", "sync", "store", "accounts", "login", "propagate", "check", "plan"]);
  const reserved = [...own.matchAll(/`([a-z_]+)`/g)].map(m => m[1]).filter(code => !requests.has(code));
  assert.ok(table.length >= 20, `PROTOCOL.md's table has ${table.length} codes`);
  return [...new Set([...table, ...reserved, "store_conflict", "no_login", "not_allowed"])];
}

test("every error code of PROTOCOL.md has a text in every locale", () => {
  for (const locale of LOCALES) {
    const missing = protocolCodes().filter(code => !messages[locale][`err_${code}`]);
    assert.deepEqual(missing, [], `${locale} lacks texts`);
  }
});

test("the locales have the same keys and the same placeholders", () => {
  const [en, it] = [messages.en, messages.it];
  assert.deepEqual(Object.keys(it).sort(), Object.keys(en).sort());
  const placeholders = s => [...s.matchAll(/\$\d/g)].map(m => m[0]).sort().join();
  for (const key of Object.keys(en)) {
    assert.equal(placeholders(it[key].message), placeholders(en[key].message), key);
  }
});

test("every message key the code names literally exists", () => {
  const files = [];
  const walk = dir => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = new URL(entry.name + (entry.isDirectory() ? "/" : ""), dir);
      if (entry.isDirectory() && entry.name !== "_locales" && entry.name !== "api") {
        walk(path);
      } else if (entry.name.endsWith(".js") || entry.name.endsWith(".html")) {
        files.push(path);
      }
    }
  };
  walk(new URL("extension/", ROOT));
  const keys = new Set();
  for (const file of files) {
    const text = readFileSync(file, "utf8").replace(/^\s*\/\/.*$/gm, ""); // not the comments
    for (const m of text.matchAll(/\bt\("([A-Za-z_]+)"|data-i18n(?:-[a-z-]+)?="([A-Za-z_]+)"|__MSG_([A-Za-z_]+)__/g)) {
      keys.add(m[1] ?? m[2] ?? m[3]);
    }
  }
  const manifest = readFileSync(new URL("extension/manifest.json", ROOT), "utf8");
  for (const m of manifest.matchAll(/__MSG_([A-Za-z_]+)__/g)) {
    keys.add(m[1]);
  }
  assert.ok(keys.size > 50);
  for (const locale of LOCALES) {
    assert.deepEqual([...keys].filter(k => !messages[locale][k]), [], locale);
  }
});

const servers = [
  { side: "outgoing", protocol: "smtp", host: "h", port: 465, username: "u", outcome: "ok", detail: "" },
  { side: "incoming", protocol: "imap", host: "h", port: 993, username: "u", outcome: "auth_failed", detail: "NO" },
];

test("describeSides: incoming first, one text per server; several servers of a side are named", () => {
  assert.equal(describe.describeSides(servers), "incoming mail: the server rejected the password; outgoing mail: works");
  const two = [...servers, { side: "incoming", protocol: "pop3", host: "p", outcome: "weird" }];
  assert.equal(
    describe.describeSides(two),
    "incoming mail (IMAP h): the server rejected the password; incoming mail (POP3 p): unknown result; outgoing mail: works"
  );
  assert.equal(describe.describeSides(undefined), "");
});

test("describeError: verification with the servers; store failures say who kept the old password", () => {
  const v = describe.describeError({ code: "verification_failed", servers });
  assert.match(v, /^The new password did not work: incoming mail: the server rejected the password; outgoing mail: works\./);
  const accounts = [{ id: "a1", name: "A" }, { id: "a2", name: "B" }];
  const failed = describe.describeError({
    code: "store_failed",
    changed: true,
    accounts,
    logins: [{ state: "restored" }, { state: "unchanged" }],
  });
  assert.match(failed, /changed at the provider/);
  assert.match(failed, /could not save/);
  assert.match(failed, /Thunderbird still has the old password for “A”, “B”\./);
  const maybe = describe.describeError({ code: "store_failed", accounts, logins: [{ state: "restored" }, { state: "unknown" }] });
  assert.match(maybe, /may hold the new password/);
  assert.match(describe.describeError({ code: "store_conflict", changed: true }), /changed at the provider/);
  assert.match(describe.describeError({ code: "store_conflict" }), /changed while credsync was working/);
  assert.match(describe.describeError({ code: "store_cancelled", changed: true }), /primary password was not entered/);
  assert.match(describe.describeError({ code: "store_unconfirmed", changed: true }), /did not confirm/);
  assert.match(describe.describeError({ code: "host_disconnected" }, { changing: true }), /may or may not have changed/);
  assert.equal(describe.describeError({ code: "no_such_code" }), "Something went wrong (no_such_code).");
  assert.match(describe.describeError({ code: "policy_violation", rule: "too_short" }, { rules: { minLength: 8 } }), /at least 8/);
});

test("describeSuccess: the sides of the chosen account and the other accounts saved", () => {
  const result = {
    accounts: [
      { id: "a1", name: "A", sides: ["incoming", "outgoing"] },
      { id: "a2", name: "B", sides: ["incoming"] },
    ],
  };
  assert.equal(
    describe.describeSuccess(result, { accountId: "a1" }),
    "Done. The new password works for incoming and outgoing mail and is saved in Thunderbird: it will not ask you for it. Also saved for “B”."
  );
  assert.match(describe.describeSuccess(result, { accountId: "a2", sync: true }), /^Done\. The password works for incoming mail and/);
  assert.match(describe.describeSuccess({ servers: [servers[0]] }, { accountId: "x" }), /incoming and outgoing/);
});

test("describePropagation: nothing to say without results; stored lines; failed ones grouped", () => {
  assert.equal(describe.describePropagation({ side: "incoming", results: [] }), null);
  const error = { code: "verification_failed", servers: [servers[1]] };
  const n = describe.describePropagation({
    side: "outgoing",
    results: [
      { id: "a1", name: "A", sides: ["incoming"], stored: true },
      { id: "a2", name: "B", sides: ["incoming"], stored: false, error },
      { id: "a3", name: "C", sides: [], stored: false, error },
    ],
    auditFailed: true,
  });
  assert.equal(n.title, "Mail password not updated everywhere");
  assert.deepEqual(n.message.split("\n"), [
    "Thunderbird saved a new password for outgoing mail.",
    "“A”: checked and now saved for incoming mail too.",
    "Not saved for “B”, “C”. The servers answered: incoming mail: the server rejected the password.",
    messages.en.auditNote.message,
  ]);
});

test("Italian texts are used with an Italian locale", async () => {
  globalThis.messenger = fakeMessenger({ locale: "it" });
  assert.equal(describe.describeError({ code: "store_conflict" }), messages.it.err_store_conflict.message);
  globalThis.messenger = fakeMessenger();
});

// Issue 19: an error says what reached the provider (`sent`), never
// "sent nothing" when the current password or the change was sent.
test("describeError: page_not_recognised says what was sent", () => {
  for (const locale of LOCALES) {
    globalThis.messenger = fakeMessenger({ locale });
    const nothing = describe.describeError({ code: "page_not_recognised", sent: "nothing" });
    assert.equal(nothing, messages[locale].err_page_not_recognised.message);
    const saysSentNothing = { en: /sent nothing/, it: /non ha inviato nulla/ }[locale];
    assert.match(nothing, saysSentNothing);
    for (const sent of ["current", "change", undefined, "bogus"]) {
      const text = describe.describeError({ code: "page_not_recognised", sent });
      assert.doesNotMatch(text, saysSentNothing, `${locale}, sent ${sent}`);
    }
    assert.match(describe.describeError({ code: "page_not_recognised", sent: "current" }), { en: /current password/, it: /password attuale/ }[locale]);
    assert.match(describe.describeError({ code: "page_not_recognised", sent: "change" }), { en: /may or may not have changed/, it: /potrebbe essere cambiata oppure no/ }[locale]);
  }
  globalThis.messenger = fakeMessenger();
  // No other text an error with sent "current" or "change" can get says that nothing was sent.
  const claims = /sent nothing|nothing was sent|non ha inviato nulla|non è stato inviato nulla/i;
  for (const code of protocolCodes()) {
    for (const sent of ["current", "change"]) {
      assert.doesNotMatch(describe.describeError({ code, sent }), claims, `${code} with sent ${sent}`);
    }
  }
});

test("describeError: the provider's own words, quoted and labelled as the provider's", () => {
  const error = { code: "backend_rejected", sent: "change", providerWords: "La  password\tdeve contenere un simbolo" };
  assert.equal(
    describe.describeError(error),
    "The provider refused the change. Nothing was changed. Your provider's message: “La password deve contenere un simbolo”"
  );
  assert.equal(describe.describeError({ code: "backend_rejected", providerWords: "  " }), messages.en.err_backend_rejected.message);
  const long = describe.describeError({ code: "page_not_recognised", sent: "current", providerWords: "x".repeat(500) });
  assert.ok(long.length < 700 && long.includes("…”"), "cut");
  globalThis.messenger = fakeMessenger({ locale: "it" });
  assert.match(describe.describeError(error), /Messaggio del provider: “La password deve contenere un simbolo”$/);
  globalThis.messenger = fakeMessenger();
});

test("describeError: outcome_unknown after a lost answer says the outcome is unknown and what to do", () => {
  const refusing = [
    { side: "incoming", protocol: "imap", host: "h", outcome: "auth_failed" },
    { side: "outgoing", protocol: "smtp", host: "h", outcome: "auth_failed" },
  ];
  const text = describe.describeError({ code: "outcome_unknown", sent: "change", servers: refusing });
  assert.match(text, /cannot tell whether the password changed/);
  assert.match(text, /incoming mail: the server rejected the password; outgoing mail: the server rejected the password/);
  assert.match(text, /In a few minutes, log in to your webmail with the new password: if it works, save it here with “I already changed it elsewhere”/);
  assert.doesNotMatch(text, /nothing was changed|Nothing was changed/);
  assert.match(describe.describeError({ code: "outcome_unknown" }), /cannot tell whether the password changed.*webmail/);
  globalThis.messenger = fakeMessenger({ locale: "it" });
  const it = describe.describeError({ code: "outcome_unknown", servers: refusing });
  assert.match(it, /non può sapere se la password è cambiata/);
  assert.match(it, /accedi alla webmail con la nuova password: se funziona, salvala qui con “già cambiata altrove”/);
  globalThis.messenger = fakeMessenger();
});

test("the breach check: found N times (choose another), unavailable and fail-closed (nothing sent), unavailable and fail-open (said)", () => {
  const found = describe.describeError({ code: "policy_violation", rule: "breached", breaches: 12345 });
  assert.equal(found, "The new password was not accepted. This password appears 12,345 times in known data breaches: choose another one. Nothing was changed.");
  assert.match(describe.describeError({ code: "policy_violation", rule: "breached" }), /appears in known data breaches: choose another one/);
  const closed = describe.describeError({ code: "policy_violation", rule: "breach_check_unavailable" });
  assert.match(closed, /could not be checked against known data breaches/);
  assert.match(closed, /nothing was sent to your provider/);
  assert.equal(describe.describeBreachCheck({ breachCheck: "unavailable" }), messages.en.breachUnavailable.message);
  assert.match(messages.en.breachUnavailable.message, /could not be checked/);
  assert.equal(describe.describeBreachCheck({ breachCheck: "not_listed" }), messages.en.breachNotListed.message);
  assert.equal(describe.describeBreachCheck({}), "");
  globalThis.messenger = fakeMessenger({ locale: "it" });
  assert.match(describe.describeError({ code: "policy_violation", rule: "breached", breaches: 12345 }), /compare 12\.345 volte in violazioni di dati note: scegline un'altra/);
  assert.match(describe.describeError({ code: "policy_violation", rule: "breach_check_unavailable" }), /non è stato inviato nulla al provider/);
  globalThis.messenger = fakeMessenger();
});
