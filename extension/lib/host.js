// The native-messaging connection to the credsync host (PROTOCOL.md):
// one port, opened on first use and kept open; requests in both directions.

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

export class NativeHost {
  #name;
  #connect;
  #onRequest;
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
   */
  constructor({ name, onRequest, connect }) {
    this.#name = name;
    this.#onRequest = onRequest;
    this.#connect = connect ?? (n => messenger.runtime.connectNative(n));
  }

  /**
   * Sends a request and resolves with its result.
   *
   * @param {string} type
   * @param {object} members the request's other members
   * @param {object} [options]
   * @param {Function} [options.onProgress] called with each progress event
   * @param {number} [options.timeoutMs] rejects with host_timeout after it
   */
  request(type, members = {}, { onProgress, timeoutMs } = {}) {
    return new Promise((resolve, reject) => {
      const id = String(this.#nextId++);
      const entry = { resolve, reject, onProgress };
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
      }
    });
  }

  #ensurePort() {
    if (!this.#port) {
      const port = this.#connect(this.#name);
      this.#port = port;
      this.#answered = false;
      port.onMessage.addListener(msg => this.#onMessage(port, msg));
      port.onDisconnect.addListener(p => this.#onDisconnect(port, p.error));
    }
    return this.#port;
  }

  #drop() {
    const port = this.#port;
    this.#port = null;
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
    for (const id of [...this.#pending.keys()]) {
      this.#settle(id, "reject", failure);
    }
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
