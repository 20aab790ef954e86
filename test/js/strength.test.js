// lib/strength.js and popup/strength-worker.js: the meter's levels and
// words, the account's words, the refusal below the administrator's
// minimum, the estimator's scheduling, and the worker with the real
// zxcvbn-ts as the .xpi packs it (scripts/zxcvbn; `make test-js` installs
// it).

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import vm from "node:vm";
import { fakeMessenger, settle } from "./fake.js";

globalThis.messenger = fakeMessenger();
const s = await import("../../extension/lib/strength.js");

const ROOT = new URL("../../", import.meta.url);

test("the estimator's language follows the UI locale: Italian, else English", () => {
  for (const ui of ["it", "it-IT", "it_IT", "IT"]) {
    assert.equal(s.estimatorLanguage(ui), "it", ui);
  }
  for (const ui of ["en-US", "en", "de", "ita", "", undefined, null]) {
    assert.equal(s.estimatorLanguage(ui), "en", String(ui));
  }
});

test("score → level and word, in both languages", () => {
  assert.deepEqual(s.LEVELS, ["very_weak", "weak", "fair", "good", "strong"]);
  globalThis.messenger = fakeMessenger({ locale: "en" });
  assert.deepEqual([0, 1, 2, 3, 4].map(s.levelWord), ["very weak", "weak", "fair", "good", "strong"]);
  globalThis.messenger = fakeMessenger({ locale: "it" });
  assert.deepEqual([0, 1, 2, 3, 4].map(s.levelWord), ["molto debole", "debole", "discreta", "buona", "ottima"]);
  assert.equal(s.levelWord(5), "");
  assert.equal(s.levelWord(-1), "");
  assert.equal(s.levelWord("2"), "");
  globalThis.messenger = fakeMessenger();
});

test("the account's words: user names, address, identity name, account name, hosts; split and lower-cased", () => {
  const account = {
    name: "Posta ACLI",
    incoming: { username: "m.rossi@aclibresciane.it", host: "mail.aclibresciane.it" },
    outgoing: { username: "m.rossi@aclibresciane.it", host: "smtp.aclibresciane.it" },
    identity: { email: "m.rossi@aclibresciane.it", name: "Mario Niccolò Rossi" },
  };
  assert.deepEqual(s.accountWords(account), ["m", "rossi", "aclibresciane", "it", "mario", "niccolò", "posta", "acli", "mail", "smtp"]);
  assert.deepEqual(s.accountWords({ incoming: { username: "m.rossi@aclibresciane.it" } }), ["m", "rossi", "aclibresciane", "it"]);
  assert.deepEqual(s.accountWords({ incoming: { username: 7, host: null }, identity: {} }), []);
  assert.deepEqual(s.accountWords(null), []);
});

test("meterView: the estimator's feedback passes through as it is; the minimum and whether it is met", () => {
  const feedback = {
    score: 1,
    warning: "Non devono essere presenti dati personali o relativi alla pagina.",
    suggestions: ["Aggiungi un maggior numero di parole meno comuni.", ""],
  };
  const v = s.meterView(feedback, { minStrength: 3 });
  assert.equal(v.state, "ready");
  assert.equal(v.score, 1);
  assert.equal(v.level, "weak");
  assert.equal(v.word, "weak");
  assert.equal(v.warning, feedback.warning);
  assert.deepEqual(v.suggestions, ["Aggiungi un maggior numero di parole meno comuni."]);
  assert.equal(v.belowMinimum, true);
  assert.equal(v.minimum, "Your administrator requires at least “good”.");

  const strong = s.meterView({ score: 4, warning: null, suggestions: [] }, { minStrength: 3 });
  assert.deepEqual([strong.level, strong.belowMinimum, strong.warning], ["strong", false, ""]);
  assert.equal(s.meterView({ score: 3 }, { minStrength: 3 }).belowMinimum, false, "at the minimum is enough");
  assert.equal(s.meterView({ score: 0 }).minimum, "", "no minimum, no sentence");
  assert.equal(s.meterView({ score: 0 }).belowMinimum, false);

  assert.deepEqual(s.meterView(null, { minStrength: 2 }).state, "empty");
  const unavailable = s.meterView({ unavailable: true }, { minStrength: 2 });
  assert.deepEqual([unavailable.state, unavailable.word, unavailable.belowMinimum], ["unavailable", "The strength could not be estimated.", true]);
  assert.equal(s.meterView({ unavailable: true }).belowMinimum, false);
});

test("strengthProblem: a change below the minimum is refused (too_weak); at or above it, or without one, it is not", () => {
  assert.deepEqual(s.strengthProblem({ score: 1 }, { minStrength: 3 }), [
    "new",
    "Too easy to guess (“weak”): your administrator requires at least “good”. Choose a longer or less common password.",
    "too_weak",
  ]);
  assert.equal(s.strengthProblem({ score: 3 }, { minStrength: 3 }), null);
  assert.equal(s.strengthProblem({ score: 4 }, { minStrength: 3 }), null);
  assert.equal(s.strengthProblem({ score: 0 }, { minStrength: 0 }), null);
  assert.equal(s.strengthProblem({ score: 0 }, {}), null);
  assert.equal(s.strengthProblem({ score: 0 }, { minStrength: 9 }), null, "an invalid minimum is none");
  assert.deepEqual(s.strengthProblem({ score: 2 }, { minStrength: 4, byAdministrator: false }), [
    "new",
    "Too easy to guess (“fair”): your settings require at least “strong”. Choose a longer or less common password.",
    "too_weak",
  ], "a minimum the user set is the user's");
  assert.equal(s.meterView({ score: 2 }, { minStrength: 4, byAdministrator: false }).minimum, "Your settings require at least “strong”.");
  const [field, text, rule] = s.strengthProblem({ unavailable: true }, { minStrength: 1 });
  assert.deepEqual([field, rule], ["new", "too_weak"]);
  assert.match(text, /could not be estimated.*at least “weak”/);
  globalThis.messenger = fakeMessenger({ locale: "it" });
  assert.equal(
    s.strengthProblem({ score: 1 }, { minStrength: 3 })[1],
    "Troppo facile da indovinare (“debole”): il tuo amministratore richiede almeno “buona”. Scegli una password più lunga o meno comune."
  );
  globalThis.messenger = fakeMessenger();
});

// A worker the test answers by hand.
function fakeWorker() {
  const w = {
    started: 0,
    posted: [],
    terminated: false,
    onmessage: null,
    onerror: null,
    postMessage: msg => w.posted.push(structuredClone(msg)),
    terminate: () => (w.terminated = true),
    estimates: () => w.posted.filter(m => m.type === "estimate"),
    answer: (score, extra = {}) => {
      const job = w.estimates().at(-1);
      w.onmessage({ data: { id: job.id, score, warning: "", suggestions: [], ...extra } });
    },
  };
  return w;
}

function estimator(worker = fakeWorker()) {
  const results = [];
  const e = s.createEstimator({
    startWorker: () => {
      worker.started++;
      return worker;
    },
    language: "it",
    onResult: (estimate, at) => results.push({ estimate, at }),
  });
  return { e, worker, results };
}

test("the estimator starts its worker at the first password, not before; empty is no estimate", async () => {
  const { e, worker, results } = estimator();
  e.estimate("", ["m"], 1);
  assert.equal(worker.started, 0);
  assert.deepEqual(results, [{ estimate: null, at: 1 }]);
  e.estimate("a", ["m"], 2);
  assert.equal(worker.started, 1);
  assert.deepEqual(worker.posted, [
    { type: "init", language: "it" },
    { type: "estimate", id: 2, password: "a", userInputs: ["m"] },
  ]);
  worker.answer(0, { warning: "w", suggestions: ["s"] });
  assert.deepEqual(results.at(-1), { estimate: { score: 0, warning: "w", suggestions: ["s"] }, at: 2 });
  assert.deepEqual(await e.settled(), { score: 0, warning: "w", suggestions: ["s"] });
});

test("the estimator keeps one estimate running and only the latest waiting; an overtaken answer is dropped", async () => {
  const { e, worker, results } = estimator();
  e.estimate("a", [], 1);
  e.estimate("ab", [], 2);
  e.estimate("abc", [], 3);
  assert.deepEqual(worker.estimates().map(m => m.password), ["a"], "one at a time");
  const settled = e.settled();
  worker.answer(1); // for "a": overtaken
  assert.equal(results.length, 0);
  assert.deepEqual(worker.estimates().map(m => m.password), ["a", "abc"], "the latest, not every keystroke");
  worker.answer(3);
  assert.deepEqual(results, [{ estimate: { score: 3, warning: "", suggestions: [] }, at: 3 }]);
  assert.deepEqual(await settled, { score: 3, warning: "", suggestions: [] });
});

test("settled() waits for the latest value; clear() empties the meter and releases the wait", async () => {
  const { e, worker, results } = estimator();
  e.estimate("abc", [], 1);
  const waiting = e.settled();
  e.clear();
  assert.equal(await waiting, undefined);
  assert.deepEqual(results.at(-1), { estimate: null, at: null });
  worker.answer(2); // the cleared value's: dropped
  assert.equal(results.length, 1);
  assert.equal(await e.settled(), null);
});

test("an estimator that cannot load is unavailable from then on, and its worker is stopped", async () => {
  const { e, worker, results } = estimator();
  e.estimate("abc", [], 1);
  worker.onmessage({ data: { failed: true } });
  assert.equal(worker.terminated, true);
  assert.deepEqual(results.at(-1).estimate, { unavailable: true });
  e.estimate("abcd", [], 2);
  assert.deepEqual(results.at(-1).estimate, { unavailable: true });
  assert.equal(worker.started, 1, "not started again");

  const broken = s.createEstimator({
    startWorker: () => {
      throw new Error("no worker");
    },
    language: "en",
    onResult: estimate => results.push({ estimate }),
  });
  broken.estimate("x");
  assert.deepEqual(results.at(-1).estimate, { unavailable: true });
  assert.deepEqual(await broken.settled(), { unavailable: true });
});

test("a worker error (the estimator's files missing) is unavailable too", () => {
  const { e, worker, results } = estimator();
  e.estimate("abc", [], 1);
  let prevented = false;
  worker.onerror({ preventDefault: () => (prevented = true) });
  assert.equal(prevented, true);
  assert.deepEqual(results.at(-1).estimate, { unavailable: true });
});

// ---- the worker, with the real estimator ------------------------------------

const NPM = new URL("scripts/zxcvbn/", ROOT);
const installed = existsSync(new URL("node_modules/@zxcvbn-ts/core/package.json", NPM));
const skip = installed ? false : "zxcvbn-ts is not installed: npm ci --prefix scripts/zxcvbn (make test-js does)";

// Runs popup/strength-worker.js as Thunderbird does, its importScripts
// served from scripts/zxcvbn/node_modules through package.json's "xpi" map
// (the files the .xpi build packs).
function startWorker(language) {
  const map = JSON.parse(readFileSync(new URL("package.json", NPM), "utf8")).xpi;
  const out = [];
  const global = {};
  global.self = global;
  global.postMessage = msg => out.push(structuredClone(msg));
  global.importScripts = (...paths) => {
    for (const p of paths) {
      const inXpi = new URL(p, "moz-extension://credsync/popup/strength-worker.js").pathname.slice(1);
      assert.ok(map[inXpi], `the worker loads ${inXpi}, which the .xpi does not pack`);
      vm.runInContext(readFileSync(new URL(`node_modules/${map[inXpi]}`, NPM), "utf8"), global);
    }
  };
  vm.createContext(global);
  vm.runInContext(readFileSync(new URL("extension/popup/strength-worker.js", ROOT), "utf8"), global);
  global.onmessage({ data: { type: "init", language } });
  let id = 0;
  return (password, userInputs = []) => {
    global.onmessage({ data: { type: "estimate", id: ++id, password, userInputs } });
    const answer = out.pop();
    assert.equal(answer.id, id);
    return answer;
  };
}

test("the worker: Italian lists and feedback; the account's words count", { skip }, () => {
  const it = startWorker("it");
  const lombardia = it("Lombardia2024");
  assert.equal(lombardia.score, 1, "with the Italian lists");
  assert.ok(lombardia.suggestions.includes("Aggiungi un maggior numero di parole meno comuni."), lombardia.suggestions);

  const words = s.accountWords({ incoming: { username: "m.rossi@aclibresciane.it" } });
  const personal = it("Aclibresciane1!", words);
  assert.ok(personal.score <= 1, `score ${personal.score}`);
  assert.equal(personal.warning, "Non devono essere presenti dati personali o relativi alla pagina.");
  assert.equal(it("Aclibresciane1!").score, 4, "without the account's words");
  assert.equal(it("Aclibresciane1!", ["aclibresciane.it"]).score, 4, "unsplit, the address does not count");

  const long = it("Lombardia2024Primavera2025Ciao1234!Aclibresciane1!xxxxxxxxxxxxxx", words);
  assert.equal(long.score, 4);
  assert.equal(it("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").score < 2, true, "a long repetition stays weak");
  assert.equal(it("").score, 0);
});

test("the worker: English feedback for an English UI, with the Italian lists still counted", { skip }, () => {
  const en = startWorker("en");
  const lombardia = en("Lombardia2024");
  assert.equal(lombardia.score, 1);
  assert.ok(lombardia.suggestions.includes("Add more words that are less common."), lombardia.suggestions);
  const personal = en("Aclibresciane1!", ["m", "rossi", "aclibresciane", "it"]);
  assert.match(personal.warning, /personal/i);
  assert.equal(en("P4$$w0rd").score, 0, "l33t readings are still found");
});

test("the worker answers failed when the estimator cannot be loaded", async () => {
  const out = [];
  const global = { postMessage: msg => out.push(structuredClone(msg)) };
  global.self = global;
  global.importScripts = () => {
    throw new Error("NetworkError: no such file");
  };
  vm.createContext(global);
  vm.runInContext(readFileSync(new URL("extension/popup/strength-worker.js", ROOT), "utf8"), global);
  global.onmessage({ data: { type: "estimate", id: 1, password: "secret-pw", userInputs: [] } });
  await settle();
  assert.deepEqual(out, [{ failed: true }]);
  assert.ok(!JSON.stringify(out).includes("secret-pw"));
});
