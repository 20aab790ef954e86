// The new password's strength, for the popup's meter (issue 18). The
// estimator is zxcvbn-ts (an npm dependency the .xpi build packs as
// vendor/zxcvbn/*.js): it runs in a worker of the popup
// (popup/strength-worker.js), started at the first keystroke so that the
// popup opens as fast as before, and the estimate never leaves the popup:
// neither the password nor its score is sent to the background page or the
// host. This module is the meter's logic without the DOM: the levels and
// their words, the account's words counted as guessable, the refusal below
// the administrator's minimum, and a scheduler that keeps one estimate
// running and only the latest one waiting.

import { t } from "./i18n.js";

/** The levels, by zxcvbn score 0–4 (data-level, message strength_<score>). */
export const LEVELS = ["very_weak", "weak", "fair", "good", "strong"];

/** The highest score, and the highest minimum an administrator can set. */
export const MAX_SCORE = LEVELS.length - 1;

/**
 * The estimator's language: its feedback (warning and suggestions) in the
 * user's, by Thunderbird's UI locale; English for every locale but Italian.
 * The word lists are always the common, English and Italian ones.
 */
export function estimatorLanguage(uiLanguage) {
  return /^it(?:[-_]|$)/i.test(String(uiLanguage ?? "")) ? "it" : "en";
}

/** The level's word ("weak", "debole"). */
export function levelWord(score) {
  return Number.isInteger(score) && score >= 0 && score <= MAX_SCORE ? t(`strength_${score}`) : "";
}

/**
 * The words of the account a password must not lean on, for the estimator
 * (zxcvbn's user inputs): the user names, the identity's e-mail address and
 * name, the account's name and the mail hosts, each split into words at
 * every character that is neither a letter nor a digit and lower-cased
 * ("m.rossi@aclibresciane.it" gives m, rossi, aclibresciane, it).
 */
export function accountWords(account) {
  if (!account) {
    return [];
  }
  const sources = [
    account.incoming?.username,
    account.outgoing?.username,
    account.identity?.email,
    account.identity?.name,
    account.name,
    account.incoming?.host,
    account.outgoing?.host,
  ];
  const words = new Set();
  for (const source of sources) {
    if (typeof source !== "string") {
      continue;
    }
    for (const word of source.toLowerCase().split(/[^\p{L}\p{N}]+/u)) {
      if (word) {
        words.add(word);
      }
    }
  }
  return [...words];
}

/**
 * What the meter shows for an estimate ({score, warning, suggestions} from
 * the worker; null for an empty field; {unavailable: true} when the
 * estimator could not run), with the minimum strength in force (set by
 * the administrator when `byAdministrator`, else in the user's own
 * settings): {state: "empty" | "ready" | "unavailable", score, level, word,
 * warning, suggestions, belowMinimum, minimum (the sentence naming it, or
 * "")}.
 */
export function meterView(estimate, { minStrength = 0, byAdministrator = true } = {}) {
  const min = clampMinimum(minStrength);
  const minimum = min > 0 ? t(byAdministrator ? "strengthMinimum" : "strengthMinimumOwn", levelWord(min)) : "";
  if (!estimate) {
    return { state: "empty", score: null, level: "", word: "", warning: "", suggestions: [], belowMinimum: false, minimum };
  }
  if (estimate.unavailable || !Number.isInteger(estimate.score)) {
    return {
      state: "unavailable",
      score: null,
      level: "",
      word: t("strengthUnavailable"),
      warning: "",
      suggestions: [],
      belowMinimum: min > 0,
      minimum,
    };
  }
  const score = Math.min(Math.max(estimate.score, 0), MAX_SCORE);
  const suggestions = Array.isArray(estimate.suggestions) ? estimate.suggestions.filter(s => typeof s === "string" && s) : [];
  return {
    state: "ready",
    score,
    level: LEVELS[score],
    word: levelWord(score),
    warning: typeof estimate.warning === "string" ? estimate.warning : "",
    suggestions,
    belowMinimum: score < min,
    minimum,
  };
}

/** A minimum strength as a score 0–4 (anything else: 0, no minimum). */
export function clampMinimum(value) {
  return Number.isInteger(value) && value >= 0 && value <= MAX_SCORE ? value : 0;
}

/**
 * The refusal of a new password below the administrator's minimum, as a
 * problem of the "new" field ([field, text, rule]), or null (byAdministrator
 * as for meterView). The rule is
 * too_weak (PROTOCOL.md: a strength below a configured minimum); an
 * estimate that could not be made is refused too while a minimum is set.
 */
export function strengthProblem(estimate, { minStrength = 0, byAdministrator = true } = {}) {
  const min = clampMinimum(minStrength);
  if (min === 0) {
    return null;
  }
  const view = meterView(estimate, { minStrength: min });
  if (view.state === "unavailable") {
    return ["new", t("errStrengthUnavailable", levelWord(min)), "too_weak"];
  }
  if (view.state === "ready" && view.belowMinimum) {
    return ["new", t(byAdministrator ? "errStrengthBelow" : "errStrengthBelowOwn", view.word, levelWord(min)), "too_weak"];
  }
  return null;
}

/**
 * Estimates one password at a time in a worker, latest first: estimate()
 * while the worker is busy replaces the waiting password (a keystroke
 * makes the one before it moot), so the meter is never more than one
 * estimate behind the field. The worker starts at the first estimate.
 *
 * @param {object} o
 * @param {Function} o.startWorker () => a Worker (popup: new Worker(...))
 * @param {string} o.language the estimator's language ("it" or "en")
 * @param {Function} o.onResult (estimate, at) for the field's latest value:
 *   null for an empty one, {unavailable: true} when the estimator failed;
 *   at is the input's time (performance.now() clock) given to estimate()
 */
export function createEstimator({ startWorker, language, onResult }) {
  let worker = null;
  let failed = false;
  let running = null; // {id, at} posted to the worker
  let waiting = null; // {id, password, userInputs, at}
  let latest = 0;
  let last = { id: 0, estimate: null }; // the latest value's estimate, once known
  const settled = []; // [{id, resolve}] waiting for an estimate of id

  const deliver = (id, estimate, at) => {
    if (id !== latest) {
      return; // overtaken by typing
    }
    last = { id, estimate };
    onResult(estimate, at);
    for (const w of settled.splice(0)) {
      w.resolve(w.id === id ? estimate : undefined);
    }
  };
  const fail = () => {
    failed = true;
    const ids = [running, waiting].filter(Boolean);
    running = waiting = null;
    worker?.terminate();
    worker = null;
    for (const job of ids) {
      deliver(job.id, { unavailable: true }, job.at);
    }
  };
  const start = () => {
    worker = startWorker();
    worker.onmessage = ({ data }) => {
      if (data?.failed) {
        fail();
        return;
      }
      const done = running;
      running = null;
      if (done && data?.id === done.id) {
        deliver(done.id, { score: data.score, warning: data.warning, suggestions: data.suggestions }, done.at);
      }
      pump();
    };
    worker.onerror = event => {
      event?.preventDefault?.();
      fail();
    };
    worker.postMessage({ type: "init", language });
  };
  const pump = () => {
    if (running || !waiting) {
      return;
    }
    const { id, password, userInputs, at } = waiting;
    waiting = null;
    running = { id, at };
    try {
      if (!worker) {
        start();
      }
      worker.postMessage({ type: "estimate", id, password, userInputs });
    } catch {
      fail();
    }
  };

  return {
    /** Estimates password (with the account's words); at: the input's time. */
    estimate(password, userInputs = [], at = null) {
      const id = ++latest;
      if (!password) {
        waiting = null;
        deliver(id, null, at);
        return;
      }
      if (failed) {
        deliver(id, { unavailable: true }, at);
        return;
      }
      waiting = { id, password, userInputs, at };
      pump();
    },
    /**
     * The estimate of the latest value, once it is known (undefined if a
     * later estimate() overtook it).
     */
    settled() {
      if (last.id === latest) {
        return Promise.resolve(last.estimate);
      }
      const id = latest;
      return new Promise(resolve => settled.push({ id, resolve }));
    },
    /** Forgets the field's value (a new form): nothing waits, the meter empties. */
    clear() {
      this.estimate("");
    },
  };
}
