// Fills the page from _locales: data-i18n="key" sets the text,
// data-i18n-title / data-i18n-aria-label / data-i18n-placeholder set
// attributes.

export function t(key, ...substitutions) {
  return messenger.i18n.getMessage(key, substitutions.map(String)) || key;
}

export function localizeDocument(root = document) {
  document.documentElement.lang = messenger.i18n.getUILanguage();
  for (const el of root.querySelectorAll("[data-i18n]")) {
    el.textContent = t(el.dataset.i18n);
  }
  for (const attr of ["title", "aria-label", "placeholder"]) {
    const data = `data-i18n-${attr}`;
    for (const el of root.querySelectorAll(`[${data}]`)) {
      el.setAttribute(attr, t(el.getAttribute(data)));
    }
  }
}
