// The native-messaging connection to the credsync host (PROTOCOL.md):
// one port, kept open (keepOpen: from startup, reopened with backoff when
// the host exits) or opened on first use; requests in both directions.

/** An error with a stable code (PROTOCOL.md's table or an extension code). */
export class CredsyncError extends Error {
  constructor(code, message, extra = {}) {
    super(message);
    this.code = code;
    this.extra = extra;
  }

  toJSON() {
    return { ...this.extra, code: this.code, message: this.message };
  }
}

// Reconnection after the host exits: 1 s, 2 s, 4 s … up to 20 s (an event
// page with no open port is suspended after 30 s idle, which would drop a
// longer timer), at most RECONNECT_TRIES times in a row; the next request
// or the next start of the background page tries again.
const RECONNECT_FIRST_MS = 1000;
const RECONNECT_MAX_MS = 20000;
const RECONNECT_TRIES = 10;

export class NativeHost {
  #name;
  #connect;
  #onRequest;
  #firstMs;
  #maxMs;
  #generation = 0; // changes when a port opens or closes
  #onOpen = null;
  #keepOpen = false;
  #tries = 0; // reconnections since the host last answered
  #timer = null;
  #port = null;
  #answered = false; // the current port has delivered at least one message
  #nextId = 1;
  #pending = new Map(); // id -> {resolve, reject, onProgress, timer}

  /**
   * @param {object} options
   * @param {string} options.name native application name
   * @param {Function} options.onRequest async (request) => result, for
   *   requests the host sends; throw a CredsyncError to answer an error
   * @param {Function} [options.connect] name => Port (tests may replace it)
   * @param {number[]} [options.reconnectMs] first and longest reconnection delay
   */
  constructor({ name, onRequest, connect, reconnectMs = [RECONNECT_FIRST_MS, RECONNECT_MAX_MS] }) {
    this.#name = name;
    this.#onRequest = onRequest;
    this.#connect = connect ?? (n => messenger.runtime.connectNative(n));
    [this.#firstMs, this.#maxMs] = reconnectMs;
  }

  /**
   * A number that changes whenever a port opens or closes: what was learnt
   * from the host (hello) holds while it stays the same.
   */
  get generation() {
    return this.#generation;
  }

  /**
   * Sends a request and resolves with its result.
   *
   * @param {string} type
   * @param {object} members the request's other members
   * @param {object} [options]
   * @param {Function} [options.onProgress] called with each progress event
   * @param {Function} [options.onWaiting] called with each waiting event
   *   ({nextCheck, checks, failedLogins, budget}: a change waiting for
   *   servers that lag behind the provider)
   * @param {number} [options.timeoutMs] rejects with host_timeout after it
   */
  request(type, members = {}, { onProgress, onWaiting, timeoutMs } = {}) {
    return new Promise((resolve, reject) => {
      const id = String(this.#nextId++);
      const entry = { resolve, reject, onProgress, onWaiting };
      if (timeoutMs) {
        entry.timer = setTimeout(() => {
          this.#pending.delete(id);
          reject(new CredsyncError("host_timeout", `no answer to ${type}`));
        }, timeoutMs);
      }
      this.#pending.set(id, entry);
      try {
        this.#ensurePort().postMessage({ ...members, id, type });
      } catch (e) {
        this.#settle(id, "reject", this.#connectionError(e));
        this.#drop();
        this.#scheduleReconnect();
      }
    });
  }

  /**
   * Opens the port now and keeps it open while the background page lives:
   * the host then listens on its local socket (PROTOCOL.md). After the host
   * exits, reconnects with backoff.
   *
   * @param {object} [options]
   * @param {Function} [options.onOpen] called after each (re)connection,
   *   e.g. to send hello so that a host that cannot start is noticed
   */
  keepOpen({ onOpen } = {}) {
    this.#keepOpen = true;
    this.#onOpen = onOpen ?? null;
    this.#open();
  }

  #open() {
    clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#port) {
      return;
    }
    try {
      this.#ensurePort();
    } catch (e) {
      this.#scheduleReconnect();
      return;
    }
    this.#onOpen?.();
  }

  #scheduleReconnect() {
    if (!this.#keepOpen || this.#timer || this.#tries >= RECONNECT_TRIES) {
      return;
    }
    const delay = Math.min(this.#firstMs * 2 ** this.#tries, this.#maxMs);
    this.#tries++;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#open();
    }, delay);
  }

  #ensurePort() {
    if (!this.#port) {
      const port = this.#connect(this.#name);
      this.#port = port;
      this.#generation++;
      this.#answered = false;
      port.onMessage.addListener(msg => this.#onMessage(port, msg));
      port.onDisconnect.addListener(p => this.#onDisconnect(port, p.error));
    }
    return this.#port;
  }

  #drop() {
    const port = this.#port;
    this.#port = null;
    this.#generation++;
    try {
      port?.disconnect();
    } catch {
      // already gone
    }
  }

  #connectionError(error) {
    const text = String(error?.message ?? error ?? "");
    if (/No such native application/i.test(text)) {
      return new CredsyncError(
        "host_not_installed",
        `the credsync program is not installed (no native application "${this.#name}")`
      );
    }
    if (!this.#answered) {
      return new CredsyncError(
        "host_not_installed",
        `the credsync program could not be started${text ? `: ${text}` : ""}`
      );
    }
    return new CredsyncError(
      "host_disconnected",
      `the credsync program stopped${text ? `: ${text}` : ""}`
    );
  }

  #onDisconnect(port, error) {
    if (port !== this.#port) {
      return;
    }
    const failure = this.#connectionError(error);
    this.#port = null;
    this.#generation++;
    for (const id of [...this.#pending.keys()]) {
      this.#settle(id, "reject", failure);
    }
    console.warn(`credsync: the native host connection closed (${failure.code})`);
    this.#scheduleReconnect();
  }

  #settle(id, how, value) {
    const entry = this.#pending.get(id);
    if (!entry) {
      return;
    }
    this.#pending.delete(id);
    clearTimeout(entry.timer);
    entry[how](value);
  }

  #onMessage(port, msg) {
    this.#answered = true;
    this.#tries = 0;
    if (!msg || typeof msg !== "object") {
      return;
    }
    if ("status" in msg) {
      if (!this.#pending.has(msg.id)) {
        console.warn(`credsync: host reply for no pending request (${msg.code ?? msg.status})`);
        return;
      }
      if (msg.status === "ok") {
        this.#settle(msg.id, "resolve", msg.result ?? {});
      } else {
        const { id, status, code, message, ...extra } = msg;
        this.#settle(
          id,
          "reject",
          new CredsyncError(code || "internal_error", message || status, extra)
        );
      }
    } else if (typeof msg.id === "string" && typeof msg.type === "string") {
      this.#answer(port, msg);
    } else if (msg.type === "progress") {
      const { step, state } = msg;
      this.#pending.get(msg.request)?.onProgress?.({ step, state });
    } else if (msg.type === "waiting") {
      const { nextCheck, checks, failedLogins, budget } = msg;
      this.#pending.get(msg.request)?.onWaiting?.({ nextCheck, checks, failedLogins, budget });
    }
  }

  async #answer(port, request) {
    let reply;
    try {
      const result = await this.#onRequest(request);
      reply = { id: request.id, status: "ok", result };
    } catch (e) {
      const error =
        e instanceof CredsyncError
          ? e
          : new CredsyncError("internal_error", "the extension failed unexpectedly");
      reply = { id: request.id, status: "error", ...error.toJSON() };
    }
    try {
      port.postMessage(reply);
    } catch {
      console.warn("credsync: the host went away before the reply");
    }
  }
}
