// Draws the expiry notification credsync shows, as scripts/screenshots/run
// renders it: the background's own expiry check (lib/expiry.js runExpiry,
// with the dependencies background.js gives it) runs against shim.js,
// whose host says account2's password expires in 5 days; the notification
// that check creates (messenger.notifications.create: title, message and
// icon from the locale's messages.json) is drawn in #notice.

import { runExpiry } from "/lib/expiry.js";
import { backendTable } from "/lib/providers.js";

const shim = globalThis.credsyncShim;

async function command(cmd) {
  const response = await messenger.runtime.sendMessage({ cmd });
  if (!response?.ok) {
    throw new Error(`credsync-shim: ${cmd} failed`);
  }
  return response.result;
}

const deps = {
  accounts: async () => (await command("accounts")).accounts,
  hello: () => command("hello"),
  backends: backendTable,
  request: async type => {
    if (type !== "expiry") {
      throw new Error(`credsync-shim: host request ${type} not handled`);
    }
    return structuredClone(shim.expiryResult);
  },
  settings: () => command("settings"),
  now: () => Date.now(),
  failures: async () => ({}), // no saved password failed
  locale: messenger.i18n.getUILanguage(),
};

async function main() {
  document.documentElement.lang = messenger.i18n.getUILanguage();
  const { notified } = await runExpiry(deps);
  const notice = shim.notifications.find(n => notified.length && n.id.endsWith(notified[0]));
  if (!notice) {
    shim.markFailed("the expiry check showed no notification");
    return;
  }
  document.getElementById("notice-icon").src = `/${notice.iconUrl}`;
  document.getElementById("notice-title").textContent = notice.title;
  document.getElementById("notice-message").textContent = notice.message;
  const box = document.getElementById("notice");
  box.hidden = false;
  await document.getElementById("notice-icon").decode();
  const { width, height } = document.body.getBoundingClientRect();
  shim.markReady(width, height);
}

main().catch(error => shim.markFailed(String(error)));
