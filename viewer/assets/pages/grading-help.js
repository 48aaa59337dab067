// The keyboard help of the case page (`?`): the grading form's keys, how the keyboard moves
// between the form and the image, and the image viewer's own shortcuts, in one modal dialog.

import { h } from "../dom.js";
import { t } from "../i18n.js";
import { SHORTCUTS } from "../stream/input.js";

/** Keys of the grading form: [keys, message key]. */
const FORM_KEYS = [
  ["0–9", "grading.key.digit"],
  ["Tab / Shift+Tab", "grading.key.tab"],
  ["Space", "grading.key.space"],
  ["Delete", "grading.key.clear"],
  ["X", "grading.key.cannot_grade"],
  ["D", "grading.key.definitions"],
  ["Enter", "grading.key.enter"],
  ["Ctrl+Enter", "grading.key.ctrl_enter"],
];

/** Keys that hand the keyboard between the form and the image. */
const FOCUS_KEYS = [
  ["Esc", "grading.key.to_image"],
  ["F", "grading.key.to_form"],
  ["↑ ↓ ← → + − R I W L M [ ]", "grading.key.forwarded"],
  ["?", "grading.key.help"],
];

function list(rows) {
  return h("dl", { class: "keys" }, rows.flatMap(([keys, label]) => [h("dt", {}, h("kbd", { text: keys })), h("dd", { text: t(label) })]));
}

/**
 * Builds the dialog (not yet shown): `{ element, open(), isOpen() }`; closing it returns focus
 * where it was.
 */
export function shortcutsDialog() {
  const close = h("button", { type: "button", class: "primary", text: t("grading.help.close") });
  const dialog = h("dialog", { id: "grading-help", class: "shortcuts", "aria-labelledby": "grading-help-title" },
    h("h2", { id: "grading-help-title", text: t("grading.help.title") }),
    h("div", { class: "shortcuts-cols" },
      h("section", {}, h("h3", { text: t("grading.help.form") }), list(FORM_KEYS),
        h("h3", { text: t("grading.help.focus") }), list(FOCUS_KEYS)),
      h("section", {}, h("h3", { text: t("grading.help.image") }), list(SHORTCUTS))),
    h("p", { class: "shortcuts-close" }, close));
  let returnTo = null;
  close.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {
    if (returnTo && returnTo.isConnected) returnTo.focus({ preventScroll: true });
    returnTo = null;
  });
  return {
    element: dialog,
    open() {
      if (dialog.open) return;
      returnTo = document.activeElement;
      dialog.showModal();
      close.focus();
    },
    isOpen: () => dialog.open,
  };
}
