// Small DOM helpers: build elements without innerHTML (no markup injection, CSP-friendly).

/**
 * Creates an element. `props`: `class`, `text`, `dataset`, `on<event>` handlers, boolean DOM
 * properties (`hidden`, `disabled`, `checked`, `required`; `true` for other names sets an empty
 * attribute, e.g. `novalidate`, `readonly`), anything else as an attribute.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (typeof value === "boolean") {
      if (key in el) el[key] = value;
      else el.setAttribute(key, "");
    }
    else el.setAttribute(key, String(value));
  }
  el.append(...children.flat(Infinity).filter((child) => child !== null && child !== undefined && child !== false));
  return el;
}

/** A labelled form field: `<div class="field"><label for>…</label><input id>…</div>`. */
export function field(id, label, inputProps = {}, hint = null) {
  const hintId = hint ? `${id}-hint` : null;
  const input = h(inputProps.tag || "input", { id, name: id, ...withoutTag(inputProps), "aria-describedby": hintId });
  return h("div", { class: "field" },
    h("label", { for: id, text: label }),
    input,
    hint ? h("small", { id: hintId, class: "hint", text: hint }) : null);
}

function withoutTag(props) {
  const { tag: _tag, ...rest } = props;
  return rest;
}

/** A status line read out by screen readers; `show(kind, text)` with kind `info`, `ok` or `error`. */
export function statusLine(extraClass = "") {
  const el = h("p", { class: `status ${extraClass}`.trim(), role: "status", "aria-live": "polite", hidden: true });
  el.show = (kind, text) => {
    el.dataset.kind = kind;
    el.textContent = text;
    el.hidden = !text;
  };
  el.clear = () => el.show("info", "");
  return el;
}

/** A table with a header row of the given labels and an empty body. */
export function table(className, headers) {
  return h("table", { class: className },
    h("thead", {}, h("tr", {}, headers.map((label) => h("th", { scope: "col", text: label })))),
    h("tbody"));
}

/** A description list from `[label, value]` pairs (value: text or node). */
export function dl(pairs, className = "meta") {
  return h("dl", { class: className },
    pairs.flatMap(([label, value]) => [h("dt", { text: label }), h("dd", {}, value ?? "—")]));
}

/** Disables a form's controls while `work` runs. */
export async function busy(form, work) {
  const controls = [...form.querySelectorAll("button, input, select, textarea")].filter((c) => !c.disabled);
  form.setAttribute("aria-busy", "true");
  for (const control of controls) control.disabled = true;
  try {
    return await work();
  } finally {
    for (const control of controls) control.disabled = false;
    form.removeAttribute("aria-busy");
  }
}

/**
 * Copies text to the clipboard; where the clipboard API is refused, selects `shown` (an input or
 * any element showing the text) so the user can copy it, and returns false.
 */
export async function copyText(text, shown) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (shown instanceof HTMLInputElement) {
      shown.focus();
      shown.select();
    } else if (shown) {
      const range = document.createRange();
      range.selectNodeContents(shown);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
    }
    return false;
  }
}

/**
 * Asks before something that cannot simply be taken back: a modal dialog with `title`, `text`
 * and two buttons, Cancel focused (Enter or Esc on it keeps things as they are). Resolves true
 * only when `confirmLabel` is chosen. The focus returns where it was.
 */
export function confirmDialog({ title, text, confirmLabel, cancelLabel, danger = true, id = "confirm-dialog" }) {
  return new Promise((resolve) => {
    const returnTo = document.activeElement;
    const cancel = h("button", { type: "button", id: `${id}-cancel`, text: cancelLabel });
    const confirm = h("button", { type: "button", id: `${id}-confirm`, class: danger ? "danger" : "primary", text: confirmLabel });
    const dialog = h("dialog", { id, class: "confirm", "aria-labelledby": `${id}-title`, "aria-describedby": `${id}-text` },
      h("h2", { id: `${id}-title`, text: title }),
      h("p", { id: `${id}-text`, text }),
      h("p", { class: "confirm-buttons" }, cancel, confirm));
    let answer = false;
    cancel.addEventListener("click", () => dialog.close());
    confirm.addEventListener("click", () => {
      answer = true;
      dialog.close();
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      if (returnTo && returnTo.isConnected && typeof returnTo.focus === "function") returnTo.focus({ preventScroll: true });
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}
