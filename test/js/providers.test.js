// lib/providers.js: back-end detection and the provider's page, from
// hello's hostSuffixes and webPage.

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  backendPage,
  backendTable,
  chooseBackend,
  detectBackend,
  isArubaPec,
  isWebBackend,
  pageOf,
  pageSuggestions,
} from "../../extension/lib/providers.js";
import { imapAccount } from "./fake.js";

const backends = backendTable({
  backends: [
    "plain",
    { name: "aruba", hostSuffixes: [".pec.aruba.it", ".ArubaPEC.it"], webPage: "https://gestionemail.pec.it/" },
    { name: "roundcube", webPage: "url" },
    { name: "cpanel", webPage: "origin" },
    { name: "ldap" },
    { nameless: true },
  ],
});

test("backendTable: names and objects; nothing without hello", () => {
  assert.deepEqual([...backends.keys()], ["plain", "aruba", "roundcube", "cpanel", "ldap"]);
  assert.equal(backendTable(null).size, 0);
});

test("detectBackend: a suffix of hello's hostSuffixes, case-insensitive, not the bare suffix", () => {
  assert.equal(detectBackend("imaps.pec.aruba.it", backends), "aruba");
  assert.equal(detectBackend("SMTPS.PEC.ARUBA.IT.", backends), "aruba");
  assert.equal(detectBackend("mail.arubapec.it", backends), "aruba");
  assert.equal(detectBackend("pec.aruba.it", backends), null);
  assert.equal(detectBackend(".pec.aruba.it", backends), null);
  assert.equal(detectBackend("imap.aruba.it", backends), null);
  assert.equal(detectBackend("imaps.pec.aruba.it", new Map()), null, "nothing is known without hello");
});

test("chooseBackend: local, then managed by mail domain, then detected", () => {
  const account = imapAccount("a1", { host: "imaps.pec.aruba.it" });
  const local = { a1: { name: "ldap", url: "ldaps://dc" } };
  const managed = { "example.it": { name: "roundcube", url: "https://webmail.example.it/" } };
  assert.deepEqual(chooseBackend(account, "example.it", { local, managed, backends }), {
    backend: { name: "ldap", url: "ldaps://dc" },
    backendSource: "local",
  });
  assert.deepEqual(chooseBackend(account, "example.it", { managed, backends }).backendSource, "managed");
  assert.deepEqual(chooseBackend(account, "other.it", { managed, backends }), { backend: { name: "aruba" }, backendSource: "detected" });
  assert.deepEqual(chooseBackend(imapAccount("a2"), null, { backends, local: { a2: { url: "x" } } }), {
    backend: null,
    backendSource: null,
  });
});

test("backendPage from webPage: url, origin, a fixed page (a configured http URL wins), none", () => {
  assert.equal(backendPage({ name: "roundcube", url: "https://webmail.example.org/roundcube/" }, backends), "https://webmail.example.org/roundcube/");
  assert.equal(backendPage({ name: "roundcube" }, backends), null);
  assert.equal(backendPage({ name: "cpanel", url: "https://host.example.org:2083/execute/Email/passwd_pop" }, backends), "https://host.example.org:2083/");
  assert.equal(backendPage({ name: "aruba" }, backends), "https://gestionemail.pec.it/");
  assert.equal(backendPage({ name: "aruba", url: "https://127.0.0.1:4443/panel" }, backends), "https://127.0.0.1:4443/panel");
  assert.equal(backendPage({ name: "ldap", url: "https://x/" }, backends), null);
  assert.equal(backendPage(null, backends), null);
  assert.equal(isWebBackend("cpanel", backends), true);
  assert.equal(isWebBackend("ldap", backends), false);
});

test("pageOf: typed by the user, then the administrator's, then the back-end's", () => {
  const aruba = { name: "aruba" };
  assert.deepEqual(pageOf(aruba, backends, { local: "https://mine/", managed: "https://admin/" }), { url: "https://mine/", source: "local" });
  assert.deepEqual(pageOf(aruba, backends, { local: "javascript:x", managed: "https://admin/" }), { url: "https://admin/", source: "managed" });
  assert.deepEqual(pageOf(aruba, backends), { url: "https://gestionemail.pec.it/", source: "backend" });
  assert.equal(pageOf(null, backends), null);
});

test("isArubaPec and pageSuggestions", () => {
  assert.equal(isArubaPec(imapAccount("a", { host: "imaps.pec.aruba.it" }), null, backends), true);
  assert.equal(isArubaPec(imapAccount("a"), { name: "aruba" }, backends), true);
  assert.equal(isArubaPec(imapAccount("a"), { name: "plain" }, backends), false);
  assert.deepEqual(pageSuggestions(imapAccount("a"), "example.org"), [
    "https://webmail.example.org/",
    "https://mail.example.org/",
  ]);
  assert.deepEqual(pageSuggestions(imapAccount("a", { host: "127.0.0.1" }), null), []);
});
