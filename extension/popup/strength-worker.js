// The popup's strength estimator, a worker the popup starts at the first
// keystroke in the new-password field (lib/strength.js, createEstimator),
// so that neither opening the popup nor typing waits for it. It runs
// zxcvbn-ts, whose prebuilt browser bundles the .xpi build packs as
// vendor/zxcvbn/*.js (scripts/zxcvbn/package.json, "xpi"); they are loaded,
// and the word lists ranked, at the first estimate.
//
// In: {type: "init", language: "it" | "en"}, then {type: "estimate", id,
// password, userInputs}. Out: {id, score, warning, suggestions} (warning
// and suggestions in the language given), or {failed: true} once the
// estimator cannot be loaded. The password lives in this message only:
// nothing here logs, stores or sends it.

"use strict";

// zxcvbn's work grows with the length. A password is estimated on its
// first 16 characters, then on its first 32, then on its first 64, and the
// first estimate at the top score (4) is the answer: characters added to a
// password cannot make it easier to guess, and zxcvbn gives no feedback at
// the top score. The characters after the 64th are not estimated: a
// password is at least as strong as its first 64 characters.
const PREFIXES = [16, 32, 64];
const TOP_SCORE = 4;
// zxcvbn-ts tries up to this many l33t readings of the whole password
// ("p4ssw0rd" → "password"), each costing a dictionary pass: 1 finds the
// same scores as its default of 100 on common l33t passwords, at a
// fraction of the time on long ones (docs/benchmarks.md, the meter).
const L33T_SUBSTITUTIONS = 1;

let language = "en";
let estimator = null;

function load() {
  importScripts(
    "../vendor/zxcvbn/core.js",
    "../vendor/zxcvbn/language-common.js",
    "../vendor/zxcvbn/language-en.js",
    "../vendor/zxcvbn/language-it.js"
  );
  const z = self.zxcvbnts;
  const common = z["language-common"];
  const en = z["language-en"];
  const it = z["language-it"];
  return new z.core.ZxcvbnFactory({
    // Italian users choose Italian passwords: every list, whatever the UI
    // language; only the feedback follows it.
    dictionary: { ...common.dictionary, ...en.dictionary, ...it.dictionary },
    graphs: common.adjacencyGraphs,
    translations: (language === "it" ? it : en).translations,
    l33tMaxSubstitutions: L33T_SUBSTITUTIONS,
    maxLength: PREFIXES.at(-1),
  });
}

// The estimate of password (PREFIXES above).
function estimate(password, userInputs) {
  let result;
  for (const length of PREFIXES) {
    result = estimator.check(password.slice(0, length), userInputs);
    if (result.score >= TOP_SCORE || password.length <= length) {
      break;
    }
  }
  return result;
}

self.onmessage = ({ data }) => {
  if (data?.type === "init") {
    language = data.language === "it" ? "it" : "en";
    return;
  }
  if (data?.type !== "estimate" || typeof data.password !== "string") {
    return;
  }
  let result;
  try {
    estimator ??= load();
    const inputs = Array.isArray(data.userInputs) ? data.userInputs.filter(w => typeof w === "string") : [];
    result = estimate(data.password, inputs);
  } catch {
    self.postMessage({ failed: true });
    return;
  }
  self.postMessage({
    id: data.id,
    score: result.score,
    warning: result.feedback?.warning ?? "",
    suggestions: Array.isArray(result.feedback?.suggestions) ? result.feedback.suggestions : [],
  });
};
