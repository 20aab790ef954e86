// What the user chose (storage.local) over what the administrator preset
// (storage.managed, from enterprise policies) over the default.

import { CredsyncError } from "./host.js";

/** A value of storage.managed, or undefined (no managed storage). */
export async function managedValue(key) {
  try {
    return (await messenger.storage.managed.get(key))[key];
  } catch {
    return undefined; // no managed storage for this add-on
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
 * value or null.
 */
export async function settings() {
  const [{ autoPropagate: local }, managed] = await Promise.all([
    messenger.storage.local.get("autoPropagate"),
    managedValue("autoPropagate"),
  ]);
  const preset = typeof managed === "boolean" ? managed : null;
  return {
    autoPropagate: typeof local === "boolean" ? local : (preset ?? true),
    managed: preset,
  };
}

/** Saves the settings the options page changes; resolves with settings(). */
export async function setSettings({ autoPropagate } = {}) {
  if (typeof autoPropagate !== "boolean") {
    throw new CredsyncError("invalid_request", "autoPropagate must be a boolean", { field: "autoPropagate" });
  }
  await messenger.storage.local.set({ autoPropagate });
  return settings();
}

export function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
