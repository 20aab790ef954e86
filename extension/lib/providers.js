// What the add-on knows about providers without asking the host: which
// back-end a server's host name implies, which back-ends talk to a web site
// (so that the user can be sent to it instead: guided mode), and where that
// site is. Pure functions, no extension API.

/**
 * Host-name suffixes and the only back-end that can serve them. Mirrors
 * detectSuffixes in internal/provider/detect.go (keep both in step): only
 * unambiguous cases, e.g. Aruba PEC's own servers (imaps.pec.aruba.it,
 * smtps.pec.aruba.it), managed at gestionemail.pec.it; not *.aruba.it in
 * general (Aruba's ordinary mail is managed elsewhere).
 */
const DETECT_SUFFIXES = [
  [".pec.aruba.it", "aruba"],
  [".arubapec.it", "aruba"],
];

/** Aruba PEC's GestioneMail panel (internal/provider/aruba.go arubaURL). */
export const ARUBA_PAGE = "https://gestionemail.pec.it/";

/**
 * Back-ends that change the password through the provider's web site: when
 * the host cannot get through (page_not_recognised, backend_unreachable)
 * the user can do it on that site. The value says which part of the
 * back-end's URL is the page a person opens: "url" as configured (the
 * webmail's or panel's address), "origin" for back-ends whose URL names an
 * API call (cPanel's UAPI, DirectAdmin's command).
 */
const WEB_BACKENDS = new Map([
  ["aruba", "url"],
  ["roundcube", "url"],
  ["zimbra", "url"],
  ["cpanel", "origin"],
  ["directadmin", "origin"],
]);


/** The back-end a server host name implies (detect.go's Detect), or null. */
export function detectBackend(host) {
  const h = String(host ?? "").trim().toLowerCase().replace(/\.$/, "");
  for (const [suffix, backend] of DETECT_SUFFIXES) {
    if (h.endsWith(suffix) && h.length > suffix.length) {
      return backend;
    }
  }
  return null;
}

/** Whether the back-end called name works through the provider's web site. */
export function isWebBackend(name) {
  return WEB_BACKENDS.has(name);
}

/**
 * Whether the account is an Aruba PEC mailbox: its back-end is aruba, or one
 * of its servers is Aruba PEC's.
 */
export function isArubaPec(account, backend) {
  return (
    backend?.name === "aruba" ||
    detectBackend(account?.incoming?.host) === "aruba" ||
    detectBackend(account?.outgoing?.host) === "aruba"
  );
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
 * host's to check (internal/provider); the add-on never opens it.
 */
export function isBackendUrl(value) {
  try {
    return /^[a-z][a-z0-9+.-]*:\/\/[^/?#\s]/i.test(value) && !!new URL(value).host;
  } catch {
    return false;
  }
}

/**
 * The provider's page for guided mode: {url, source}, or null.
 * source is "local" (typed by the user for this account), "managed" (the
 * administrator's, by mail domain), "backend" (the web back-end's address)
 * or "aruba" (Aruba PEC's panel).
 */
export function pageOf(account, backend, { local, managed } = {}) {
  if (isHttpUrl(local)) {
    return { url: local, source: "local" };
  }
  if (isHttpUrl(managed)) {
    return { url: managed, source: "managed" };
  }
  const part = backend && WEB_BACKENDS.get(backend.name);
  if (part && isHttpUrl(backend.url)) {
    return { url: part === "origin" ? `${new URL(backend.url).origin}/` : backend.url, source: "backend" };
  }
  if (isArubaPec(account, backend)) {
    return { url: ARUBA_PAGE, source: "aruba" };
  }
  return null;
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
