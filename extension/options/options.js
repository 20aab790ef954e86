// Options: the password-change back-end (and optional URL) of each account,
// the provider's web page for guided mode, whether a password Thunderbird
// saves is copied to the other side (autoPropagate), and the checks of a
// new password (minimum strength, breach check), each of which the
// administrator may have set and locked (lib/settings.js).

import { describeError } from "../lib/describe.js";
import { localizeDocument, t } from "../lib/i18n.js";
import { isBackendUrl, isHttpUrl } from "../lib/providers.js";
import { DEFAULT_BREACH_URL, isBreachUrl } from "../lib/settings.js";

const $ = id => document.getElementById(id);

async function command(message) {
  const response = await messenger.runtime.sendMessage(message);
  if (!response?.ok) {
    throw response?.error ?? { code: "internal_error" };
  }
  return response.result;
}

// hello's backends are names; objects {name, description} are accepted too.
function backendNames(hello) {
  return (hello?.backends ?? [])
    .map(b => (typeof b === "string" ? b : b?.name))
    .filter(name => typeof name === "string" && name);
}

function renderAccount(account, index, names) {
  const form = $("account-template").content.firstElementChild.cloneNode(true);
  localizeDocument(form);
  const select = form.querySelector(".backend");
  const url = form.querySelector(".url");
  const page = form.querySelector(".page");
  const saved = form.querySelector(".saved");
  const local = account.backendSource === "local" ? account.backend : null;
  // A back-end implied by the server name is preselected (saved with Save).
  const preset = local ?? (account.backendSource === "detected" ? account.backend : null);

  select.id = `backend-${index}`;
  url.id = `url-${index}`;
  page.id = `page-${index}`;
  form.querySelector(".backend-label").htmlFor = select.id;
  form.querySelector(".url-label").htmlFor = url.id;
  form.querySelector(".page-label").htmlFor = page.id;
  form.querySelector(".name").textContent = account.name;
  form.querySelector(".server").textContent =
    `(${account.incoming.username} — ${account.incoming.host})`;

  select.append(new Option(t("optionsNotSet"), ""));
  const choices = new Set(names);
  if (preset) {
    choices.add(preset.name); // keep a saved choice the host no longer lists
  }
  for (const name of choices) {
    select.append(new Option(name, name));
  }
  select.value = preset?.name ?? "";
  url.value = local?.url ?? "";
  page.value = account.page?.source === "local" ? account.page.url : "";
  page.placeholder = account.page?.url ?? (account.pageSuggestions?.[0] || "https://");
  if (account.backendSource === "managed") {
    form.querySelector(".managed").textContent = t("optionsManaged", account.backend.name);
  } else if (account.backendSource === "detected") {
    form.querySelector(".managed").textContent = t("optionsDetected", account.backend.name);
  }

  form.addEventListener("submit", async event => {
    event.preventDefault();
    saved.className = "saved";
    const urlValue = url.value.trim();
    if (urlValue && !isBackendUrl(urlValue)) {
      saved.textContent = t("optionsUrlInvalid");
      saved.classList.add("error");
      url.focus();
      return;
    }
    const pageValue = page.value.trim();
    if (pageValue && !isHttpUrl(pageValue)) {
      saved.textContent = t("optionsPageInvalid");
      saved.classList.add("error");
      page.focus();
      return;
    }
    try {
      await command({ cmd: "setBackend", accountId: account.id, name: select.value, url: urlValue });
      await command({ cmd: "setPage", accountId: account.id, url: pageValue });
      saved.textContent = t("optionsSaved");
    } catch (error) {
      saved.textContent = describeError(error);
      saved.classList.add("error");
    }
  });
  for (const el of [select, url, page]) {
    el.addEventListener("input", () => (saved.textContent = ""));
  }
  return form;
}

async function initSettings() {
  const box = $("auto-propagate");
  const saved = $("auto-saved");
  try {
    const current = await command({ cmd: "settings" });
    box.checked = current.autoPropagate;
    if (current.managed !== null) {
      $("auto-managed").textContent = t(current.managed ? "optionsAutoManagedOn" : "optionsAutoManagedOff");
    }
  } catch (error) {
    saved.textContent = describeError(error);
    saved.className = "saved error";
  }
  box.addEventListener("change", async () => {
    saved.className = "saved";
    try {
      const now = await command({ cmd: "setSettings", autoPropagate: box.checked });
      box.checked = now.autoPropagate;
      saved.textContent = t("optionsSaved");
    } catch (error) {
      saved.textContent = describeError(error);
      saved.classList.add("error");
    }
  });
}

// The checks of a new password: each control saves its own key; one the
// administrator set is shown disabled, with a line saying so.
async function initChecks() {
  const saved = $("checks-saved");
  const controls = {
    minStrength: { el: $("min-strength"), read: el => Number(el.value), write: (el, v) => (el.value = String(v)) },
    breachCheck: { el: $("breach-check"), read: el => el.checked, write: (el, v) => (el.checked = v) },
    // Emptied: the default range API.
    breachUrl: { el: $("breach-url"), read: el => el.value.trim() || DEFAULT_BREACH_URL, write: (el, v) => (el.value = v) },
    breachFailClosed: { el: $("breach-fail-closed"), read: el => el.checked, write: (el, v) => (el.checked = v) },
    expiryWarnings: { el: $("expiry-warnings"), read: el => el.checked, write: (el, v) => (el.checked = v), saved: $("expiry-saved") },
    expiryWarnDays: { el: $("expiry-warn-days"), read: el => Number(el.value), write: (el, v) => (el.value = String(v)), saved: $("expiry-saved") },
  };
  const show = current => {
    for (const [key, c] of Object.entries(controls)) {
      c.write(c.el, current[key]);
      c.el.disabled = current.locked[key];
      $(`${c.el.id}-locked`).textContent = current.locked[key] ? t("optionsLocked") : "";
    }
    // The address and fail-closed matter only with the check on.
    for (const key of ["breachUrl", "breachFailClosed"]) {
      controls[key].el.disabled ||= !current.breachCheck;
    }
    controls.expiryWarnDays.el.disabled ||= !current.expiryWarnings;
  };
  try {
    show(await command({ cmd: "settings" }));
  } catch (error) {
    saved.textContent = describeError(error);
    saved.className = "saved error";
    return;
  }
  for (const [key, c] of Object.entries(controls)) {
    const status = c.saved ?? saved;
    c.el.addEventListener("change", async () => {
      status.className = "saved";
      const value = c.read(c.el);
      if (key === "breachUrl" && !isBreachUrl(value)) {
        status.textContent = t("optionsBreachUrlInvalid");
        status.classList.add("error");
        c.el.focus();
        return;
      }
      try {
        show(await command({ cmd: "setSettings", [key]: value }));
        status.textContent = t("optionsSaved");
      } catch (error) {
        status.textContent = describeError(error);
        status.classList.add("error");
      }
    });
  }
}

async function init() {
  localizeDocument();
  await initSettings();
  await initChecks();
  const hostStatus = $("host-status");
  let names = [];
  try {
    const hello = await command({ cmd: "hello" });
    names = backendNames(hello);
    hostStatus.textContent = t("optionsHostVersion", hello.version ?? "?");
  } catch (error) {
    hostStatus.textContent = describeError(error);
    hostStatus.className = "error";
  }
  let accounts = [];
  try {
    accounts = (await command({ cmd: "accounts" })).accounts.filter(a => a.passwordBased);
  } catch (error) {
    hostStatus.textContent = describeError(error);
    hostStatus.className = "error";
  }
  const container = $("accounts");
  if (!accounts.length) {
    const p = document.createElement("p");
    p.textContent = t("optionsNoAccounts");
    container.append(p);
  }
  accounts.forEach((account, index) => container.append(renderAccount(account, index, names)));
}

init();
