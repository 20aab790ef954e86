// Lint for the Thunderbird add-on. Run from the repository root:
//   npm ci --prefix scripts/eslint
//   scripts/eslint/node_modules/.bin/eslint -c scripts/eslint/eslint.config.mjs extension/ test/js/

import js from "@eslint/js";
import globals from "globals";

// What Thunderbird puts into an Experiment's parent-side sandbox
// (ExtensionCommon.sys.mjs _createExtGlobal).
const experimentParentGlobals = {
  Cc: "readonly",
  Ci: "readonly",
  Cr: "readonly",
  Cu: "readonly",
  ChromeUtils: "readonly",
  Services: "readonly",
  ExtensionAPI: "readonly",
  ExtensionAPIPersistent: "readonly",
  ExtensionCommon: "readonly",
  ExtensionUtils: "readonly",
  IOUtils: "readonly",
  PathUtils: "readonly",
  XPCOMUtils: "readonly",
  console: "readonly",
};

const strictRules = {
  "no-unused-vars": ["error", { caughtErrors: "none" }],
  "no-var": "error",
  "prefer-const": "error",
  eqeqeq: ["error", "smart"],
  "no-console": ["error", { allow: ["warn", "error"] }],
  "no-eval": "error",
  "no-implied-eval": "error",
  "no-new-func": "error",
};

export default [
  js.configs.recommended,
  {
    files: ["**/*.js"],
    ignores: ["**/api/**"],
    languageOptions: {
      ecmaVersion: "latest",
      sourceType: "module",
      globals: { ...globals.browser, ...globals.webextensions, messenger: "readonly" },
    },
    rules: strictRules,
  },
  {
    // The popup's strength estimator: a classic worker (importScripts).
    files: ["**/*-worker.js"],
    languageOptions: {
      sourceType: "script",
      globals: { ...globals.worker },
    },
  },
  {
    // The extension's unit tests run in node (test/js, `make test-js`).
    files: ["test/js/**/*.js"],
    languageOptions: {
      ecmaVersion: "latest",
      sourceType: "module",
      globals: { ...globals.node },
    },
    rules: { ...strictRules, "no-console": "off" },
  },
  {
    files: ["**/api/**/*.js"],
    languageOptions: {
      ecmaVersion: "latest",
      sourceType: "script",
      globals: experimentParentGlobals,
    },
    rules: {
      ...strictRules,
      // The parent script must define its API class (and imports) as
      // global variables of its sandbox.
      "no-var": "off",
      "no-unused-vars": ["error", { caughtErrors: "none", varsIgnorePattern: "^credsync$" }],
    },
  },
];
