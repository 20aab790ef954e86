// The settings, from the options page (storage.local) and the
// administrator's enterprise policies (storage.managed, the `3rdparty`
// policy; docs/admin). Two kinds:
//
//   - autoPropagate: the administrator presets a default; what the user
//     chose (storage.local) wins over it.
//   - the password checks (minStrength, breachCheck, breachUrl,
//     breachFailClosed): the administrator's value, when set, is in force
//     and locked (the options page shows it and cannot change it); else
//     the user's; else the default. Managed → local → default.
//
// A value of the wrong type or out of range is ignored wherever it comes
// from, as if it were not set.

import { CredsyncError } from "./host.js";

/** The Pwned Passwords range API, the breach check's default. */
export const DEFAULT_BREACH_URL = "https://api.pwnedpasswords.com";

/** The password checks: each one's validity test and default. */
const CHECKS = {
  // The popup refuses a new password whose estimated strength (0–4) is
  // below it; 0: no minimum.
  minStrength: { valid: v => Number.isInteger(v) && v >= 0 && v <= 4, fallback: 0 },
  // The host checks the new password against the range API before
  // anything is sent to the provider (the change's `breachCheck`).
  breachCheck: { valid: v => typeof v === "boolean", fallback: false },
  breachUrl: { valid: v => isBreachUrl(v), fallback: DEFAULT_BREACH_URL },
  // An unreachable range API stops the change (true) or lets it go on.
  breachFailClosed: { valid: v => typeof v === "boolean", fallback: false },
  // The expiry warnings (lib/expiry.js): whether the host is asked when
  // the saved password expires, and how many days ahead the notification
  // warns.
  expiryWarnings: { valid: v => typeof v === "boolean", fallback: true },
  expiryWarnDays: { valid: v => Number.isInteger(v) && v >= 1 && v <= 365, fallback: 14 },
};

export const CHECK_KEYS = Object.keys(CHECKS);

/** A value of storage.managed, or undefined (no managed storage). */
export async function managedValue(key) {
  return (await managedValues([key]))[key];
}

// The values of storage.managed for keys ({} without managed storage).
async function managedValues(keys) {
  try {
    return (await messenger.storage.managed.get(keys)) ?? {};
  } catch {
    return {}; // no managed storage for this add-on
  }
}

/** An object of storage.local ("backends", "pages" by account id), or {}. */
export async function localObject(key) {
  const value = (await messenger.storage.local.get(key))[key];
  return isObject(value) ? value : {};
}

/** An object of storage.managed ("backends", "pages" by mail domain), or {}. */
export async function managedObject(key) {
  const value = await managedValue(key);
  return isObject(value) ? value : {};
}

/**
 * The settings: `autoPropagate` (storage.local, else the administrator's
 * storage.managed value, else true) and `managed`, the administrator's
 * value or null; the password checks `minStrength`, `breachCheck`,
 * `breachUrl`, `breachFailClosed` (storage.managed, else storage.local,
 * else the default), and `locked`: for each of those, whether the
 * administrator set it.
 */
export async function settings() {
  const keys = ["autoPropagate", ...CHECK_KEYS];
  const [local, managed] = await Promise.all([messenger.storage.local.get(keys), managedValues(keys)]);
  const preset = typeof managed.autoPropagate === "boolean" ? managed.autoPropagate : null;
  const result = {
    autoPropagate: typeof local.autoPropagate === "boolean" ? local.autoPropagate : (preset ?? true),
    managed: preset,
    locked: {},
  };
  for (const [key, { valid, fallback }] of Object.entries(CHECKS)) {
    result.locked[key] = valid(managed[key]);
    result[key] = result.locked[key] ? managed[key] : valid(local[key]) ? local[key] : fallback;
  }
  return result;
}

/**
 * Saves the settings the options page changes (any of autoPropagate and
 * the password checks the administrator did not lock); resolves with
 * settings().
 */
export async function setSettings(values = {}) {
  const changes = {};
  if ("autoPropagate" in values) {
    if (typeof values.autoPropagate !== "boolean") {
      throw invalid("autoPropagate", "autoPropagate must be a boolean");
    }
    changes.autoPropagate = values.autoPropagate;
  }
  const checks = CHECK_KEYS.filter(key => key in values);
  if (checks.length) {
    const { locked } = await settings();
    for (const key of checks) {
      if (!CHECKS[key].valid(values[key])) {
        throw invalid(key, `${key} is not valid (minStrength 0–4, breachUrl https://…, expiryWarnDays 1–365, the others booleans)`);
      }
      if (locked[key]) {
        throw invalid(key, `${key} is set by the administrator`);
      }
      changes[key] = values[key];
    }
  }
  if (!Object.keys(changes).length) {
    throw invalid("settings", "no setting to save");
  }
  await messenger.storage.local.set(changes);
  return settings();
}

/**
 * The change request's `breachCheck` member (PROTOCOL.md, `change`) from
 * the settings: {url, failClosed} when the breach check is on, else null.
 */
export function breachCheckMember(s) {
  return s?.breachCheck === true ? { url: s.breachUrl, failClosed: s.breachFailClosed === true } : null;
}

/**
 * Whether url can be the range API's address: https, a host, no user, no
 * query or fragment (the host appends /range/<prefix>), at most 2048
 * characters.
 */
export function isBreachUrl(url) {
  if (typeof url !== "string" || !url || url.length > 2048) {
    return false;
  }
  try {
    const u = new URL(url);
    return u.protocol === "https:" && !!u.hostname && !u.username && !u.password && !/[?#]/.test(url);
  } catch {
    return false;
  }
}

function invalid(field, message) {
  return new CredsyncError("invalid_request", message, { field });
}

export function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
