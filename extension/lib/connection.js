// The one native-messaging connection to the credsync host (PROTOCOL.md),
// its hello (asked once per connection), and the handler of the requests
// the host sends. Importing this module opens nothing: connectHost() does,
// or the first request.

import { CredsyncError, NativeHost } from "./host.js";

export { CredsyncError };

export const HOST_NAME = "credsync";
const HELLO_TIMEOUT_MS = 15000;

let handler = async request => {
  throw new CredsyncError("unknown_type", `unknown request type "${String(request.type).slice(0, 64)}"`);
};

const host = new NativeHost({ name: HOST_NAME, onRequest: request => handler(request) });

/** Sets the function answering the host's requests (background.js). */
export function serve(onRequest) {
  handler = onRequest;
}

/** Sends a request to the host; see NativeHost.request. */
export function request(type, members, options) {
  return host.request(type, members, options);
}

/**
 * A number that changes whenever the port opens or closes: an answer of the
 * host holds while it stays the same.
 */
export function generation() {
  return host.generation;
}

let helloCache = null; // {generation, promise}

/**
 * The host's hello result (name, version, protocol, backends with rules,
 * hostSuffixes and webPage, passwordAuthMethods), asked once per
 * connection; a failed hello is asked again next time.
 */
export function hello() {
  if (helloCache && helloCache.generation === host.generation) {
    return helloCache.promise;
  }
  const promise = host.request("hello", {}, { timeoutMs: HELLO_TIMEOUT_MS });
  const entry = { generation: host.generation, promise };
  helloCache = entry;
  promise.catch(() => {
    if (helloCache === entry) {
      helloCache = null;
    }
  });
  return promise;
}

/**
 * Opens the native port now and keeps it open (reconnecting with backoff
 * when the host exits), so that the host listens on its local socket for
 * `credsync sync`. A hello on each connection notices a host that cannot
 * start, and fills the cache; then `warm` runs (the background page asks
 * for what the popup will need).
 *
 * @param {Function} [warm] called after each connection's hello answered
 */
export function connectHost(warm = () => {}) {
  host.keepOpen({
    onOpen: () =>
      hello().then(
        () => warm(),
        e => console.warn(`credsync: the native host did not answer hello (${e.code ?? "error"})`)
      ),
  });
}

/** A thrown value as {code, message, ...}, never carrying a password. */
export function errorJSON(e) {
  if (e instanceof CredsyncError) {
    return e.toJSON();
  }
  // Experiment errors carry "code: message".
  const [, code, message] = /^([a-z_]+): (.*)$/s.exec(e?.message ?? "") ?? [];
  return code ? { code, message } : { code: "internal_error", message: "the extension failed unexpectedly" };
}
