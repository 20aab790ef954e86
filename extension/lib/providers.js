// Which back-end an account uses and where its provider's web page is,
// from the host's tables (hello: each back-end's hostSuffixes and webPage)
// and what the user or the administrator chose. Pure functions, no
// extension API.

/**
 * hello's back-ends as a Map name -> back-end object (names alone are
 * accepted too); an empty Map without hello.
 */
export function backendTable(hello) {
  const list = Array.isArray(hello?.backends) ? hello.backends : [];
  return new Map(
    list
      .map(b => (typeof b === "string" ? { name: b } : b))
      .filter(b => typeof b?.name === "string" && b.name)
      .map(b => [b.name, b])
  );
}

/**
 * The back-end whose hostSuffixes a server's host name ends with (longer
 * than the suffix), or null.
 */
export function detectBackend(host, backends) {
  const h = String(host ?? "").trim().toLowerCase().replace(/\.$/, "");
  for (const backend of backends.values()) {
    for (const suffix of Array.isArray(backend.hostSuffixes) ? backend.hostSuffixes : []) {
      const s = String(suffix).toLowerCase();
      if (s && h.endsWith(s) && h.length > s.length) {
        return backend.name;
      }
    }
  }
  return null;
}

/** A choice saved in storage, as {name, url?}, or null. */
export function validBackend(value) {
  if (value === null || typeof value !== "object" || typeof value.name !== "string" || !value.name) {
    return null;
  }
  return typeof value.url === "string" && value.url ? { name: value.name, url: value.url } : { name: value.name };
}

/**
 * The account's back-end: chosen in the options (local, by account id),
 * else the administrator's for the mail domain (managed), else the one its
 * servers' host names imply (detected). {backend, backendSource}.
 */
export function chooseBackend(account, domain, { local = {}, managed = {}, backends = new Map() } = {}) {
  const chosen = validBackend(local[account.id]);
  if (chosen) {
    return { backend: chosen, backendSource: "local" };
  }
  const preset = domain ? validBackend(managed[domain]) : null;
  if (preset) {
    return { backend: preset, backendSource: "managed" };
  }
  const detected = detectBackend(account.incoming?.host, backends) ?? detectBackend(account.outgoing?.host, backends);
  return detected ? { backend: { name: detected }, backendSource: "detected" } : { backend: null, backendSource: null };
}

/** Whether the back-end called name works through the provider's web site (hello's webPage). */
export function isWebBackend(name, backends) {
  return !!backends.get(name)?.webPage;
}

/**
 * The page a person opens for a back-end (hello's webPage): "url", its
 * configured URL; "origin", that URL's origin + "/"; an absolute URL, the
 * provider's fixed page, unless the back-end is configured with an http(s)
 * URL (a test or self-hosted panel). null when none.
 */
export function backendPage(backend, backends) {
  const webPage = backend && backends.get(backend.name)?.webPage;
  if (!webPage) {
    return null;
  }
  const configured = isHttpUrl(backend.url) ? backend.url : null;
  if (webPage === "origin") {
    return configured && `${new URL(configured).origin}/`;
  }
  if (webPage === "url") {
    return configured;
  }
  return configured ?? (isHttpUrl(webPage) ? webPage : null);
}

/**
 * The provider's page for guided mode: {url, source}, or null. source is
 * "local" (typed by the user for this account), "managed" (the
 * administrator's, by mail domain) or "backend" (backendPage).
 */
export function pageOf(backend, backends, { local, managed } = {}) {
  if (isHttpUrl(local)) {
    return { url: local, source: "local" };
  }
  if (isHttpUrl(managed)) {
    return { url: managed, source: "managed" };
  }
  const url = backendPage(backend, backends);
  return url ? { url, source: "backend" } : null;
}

/**
 * Addresses to offer when the user must type the provider's page: the
 * webmail names providers commonly use for the mail domain and the incoming
 * server's host. Only suggestions: nothing is fetched.
 */
export function pageSuggestions(account, domain) {
  const hosts = [];
  if (domain) {
    hosts.push(`webmail.${domain}`, `mail.${domain}`);
  }
  const host = account?.incoming?.host;
  if (host && !/^[\d.]+$|:/.test(host)) {
    hosts.push(host);
  }
  return [...new Set(hosts)].map(h => `https://${h}/`);
}

export function isHttpUrl(value) {
  try {
    return ["http:", "https:"].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}

/**
 * Whether value can be a back-end's URL: scheme://host… (https://, ldap://,
 * ldaps://, kpasswd://, poppassd://, …). Each back-end's own form is the
 * host's to check; the add-on never opens it.
 */
export function isBackendUrl(value) {
  try {
    return /^[a-z][a-z0-9+.-]*:\/\/[^/?#\s]/i.test(value) && !!new URL(value).host;
  } catch {
    return false;
  }
}

/**
 * Whether the account is an Aruba PEC mailbox (the popup's hint about the
 * "password per programmi di posta"): its back-end is aruba, or one of its
 * server names implies it.
 */
export function isArubaPec(account, backend, backends) {
  return [backend?.name, ...[account?.incoming, account?.outgoing].map(ep => detectBackend(ep?.host, backends))].includes(
    "aruba"
  );
}
