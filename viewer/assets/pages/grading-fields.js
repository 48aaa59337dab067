// The inputs of the grading form, one block per field of a `readroom-form/1` definition. No
// state: each block reports picks through `onPick(field, eye, value)` and the form controller
// (grading-form.js) owns the values, the conditions and the saving.
//
// A field is a `<fieldset>`; choice, ordinal and yes/no fields are a matrix (options in rows,
// OD | OS in columns for per-eye fields) of radios, multiple choices of checkboxes. Every eye of
// every field is one Tab stop (roving tabindex: only the checked or first radio of a group is
// tabbable, and all OD inputs come before the OS inputs in the document), so Tab and Shift-Tab
// walk field by field and eye by eye. Grid positions are set through the CSSOM (the CSP forbids
// style attributes, not `element.style`).

import { h } from "../dom.js";
import { t } from "../i18n.js";
import { CANNOT_GRADE, EYES, cellKey, choices, definitions, digitFor, hasValue, text } from "./grading-rules.js";

let uid = 0;

/**
 * The field's schematic figure with its caption (null when it names none). The server accepts
 * only the names of the domain's `FIGURES`, each drawn in `viewer/assets/figures/` and captioned
 * (a server test checks both).
 */
function figureOf(field) {
  if (!field.figure) return null;
  const caption = t(`figure.${field.figure}`);
  return h("figure", { class: "gf-figure" },
    h("img", { src: new URL(`../figures/${field.figure}.svg`, import.meta.url).pathname, alt: caption, width: "360", loading: "lazy" }),
    h("figcaption", { text: caption }));
}

/**
 * The protocol's definitions of the field's levels or options and its schematic figure, folded
 * under the field (null when it has neither). The summary is not a Tab stop: Tab walks the form
 * field by field and eye by eye; D in the field (or a click) opens it.
 */
function definitionsOf(field, lang) {
  const items = definitions(field, lang);
  const figure = figureOf(field);
  if (!items.length && !figure) return null;
  return h("details", { class: "gf-defs" },
    h("summary", { tabindex: "-1", text: t("grading.definitions"), title: t("grading.key.definitions") }),
    items.length ? h("dl", {}, items.flatMap((item) => [h("dt", { text: item.label }), h("dd", { text: item.help })])) : null,
    figure);
}

/**
 * Builds the block of `field`. `ctx`: `{ lang, words: { yes, no, cannotGrade }, onPick(field, eye, value) }`.
 * Returns `{ element, cells }`; `cells` maps `key` / `key:EYE` to a cell:
 * `{ field, eye, focusTarget(), focus(), set(value), setAsked(bool), setReadOnly(bool),
 *    setProblem(text|null), setLocalProblem(text|null), localProblem }`.
 */
export function buildField(field, ctx) {
  const id = `gf-${field.key}-${++uid}`;
  const labelId = `${id}-label`;
  const problems = h("ul", { class: "gf-problems", id: `${id}-problems`, "aria-live": "polite" });
  const element = h("fieldset", {
    class: `gf-field gf-${field.type}${field.per_eye ? " gf-per-eye" : ""}`,
    dataset: { field: field.key, type: field.type },
    "aria-describedby": `${id}-problems`,
  },
  h("legend", { id: labelId, class: "gf-label" }, text(field.label, ctx.lang),
    field.required === false ? h("span", { class: "gf-optional", text: ` (${t("grading.optional")})` }) : null),
  field.help ? h("p", { class: "gf-help", text: text(field.help, ctx.lang) }) : null,
  definitionsOf(field, ctx.lang));

  let built;
  if (field.type === "number") built = numberInputs(field, id, labelId, ctx);
  else if (field.type === "text") built = textInputs(field, id, labelId, ctx);
  else built = matrix(field, id, ctx);
  element.append(built.body, problems);

  // Problems are listed under the field, one line per eye.
  const shown = new Map();
  const render = () => {
    problems.replaceChildren(...[...shown].map(([eye, message]) => h("li", { dataset: { eye: eye || "" } },
      eye ? h("strong", { text: `${eye}: ` }) : null, message)));
    element.classList.toggle("gf-invalid", shown.size > 0);
  };
  for (const cell of Object.values(built.cells)) {
    cell.setProblem = (message) => {
      const eye = cell.eye || "";
      if (message) shown.set(eye, message);
      else shown.delete(eye);
      render();
      cell.inputs.forEach((input) => input.setAttribute("aria-invalid", message ? "true" : "false"));
      cell.zone.forEach((el) => el.classList.toggle("gf-bad", !!message));
    };
    cell.setDisagree = (on) => cell.zone.forEach((el) => el.classList.toggle("gf-disagree", !!on));
    cell.focus = () => {
      const target = cell.focusTarget();
      if (target) target.focus({ preventScroll: false });
      return !!target;
    };
    cell.setAsked = (on) => {
      cell.asked = on;
      cell.zone.forEach((el) => el.classList.toggle("gf-off", !on));
      cell.applyDisabled();
    };
    cell.setReadOnly = (on) => {
      cell.readOnly = on;
      cell.applyDisabled();
    };
    cell.applyDisabled = () => {
      for (const input of cell.inputs) input.disabled = !cell.asked || cell.readOnly || !!(cell.blocked && cell.blocked(input));
    };
    cell.asked = true;
    cell.readOnly = false;
  }
  return { element, cells: built.cells };
}

/** Places `el` in a CSS grid cell (1-based row and column). */
function place(el, row, column) {
  el.style.gridRow = String(row);
  el.style.gridColumn = String(column);
  return el;
}

/** The OD | OS column headings of a per-eye matrix or input row. */
function eyeHeads(columnOffset, row = 1) {
  return EYES.map((eye, i) => place(h("span", { class: "gf-eye", title: t(`eye.${eye}`), text: eye }), row, i + columnOffset));
}

/** Radios (single choice, ordinal, yes/no) or checkboxes (multiple choice) in a matrix. */
function matrix(field, id, ctx) {
  const list = choices(field, ctx.lang, ctx.words);
  const multiple = field.type === "choice" && field.multiple;
  const eyes = field.per_eye ? EYES : [null];
  const body = h("div", { class: `gf-matrix${field.per_eye ? " two" : " one"}` });
  if (field.per_eye) body.append(...eyeHeads(2));
  const first = field.per_eye ? 2 : 1;
  const optionIds = list.map((_, i) => `${id}-o${i}`);
  const cellsOut = {};
  const groups = eyes.map((eye, column) => {
    const name = `${id}-${eye || "x"}`;
    const inputs = list.map((choice, i) => {
      const input = h("input", {
        type: multiple ? "checkbox" : "radio",
        name,
        id: `${name}-${i}`,
        value: String(i),
        tabindex: "-1",
        "aria-label": `${eye ? `${eye} · ` : ""}${choice.label}`,
        dataset: { cell: cellKey(field.key, eye), index: String(i) },
      });
      return input;
    });
    return { eye, column, inputs };
  });
  // Option labels first, then every OD input, then every OS input (the Tab order).
  list.forEach((choice, i) => {
    const key = digitFor(field, i);
    const label = h(field.per_eye ? "span" : "label", { class: choice.value === CANNOT_GRADE ? "gf-option gf-cannot" : "gf-option", id: optionIds[i], for: field.per_eye ? null : groups[0].inputs[i].id },
      key ? h("kbd", { text: key }) : null, h("span", { text: choice.label }));
    body.append(place(label, i + first, 1));
  });
  for (const group of groups) {
    const zone = [];
    group.inputs.forEach((input, i) => {
      const hit = h("label", { class: "gf-hit", title: list[i].label }, input);
      zone.push(hit);
      body.append(place(hit, i + first, field.per_eye ? group.column + 2 : 2));
    });
    if (field.per_eye) zone.push(body.children[group.column]);
    const cell = {
      field,
      eye: group.eye,
      inputs: group.inputs,
      zone,
      focused: 0,
      value: multiple ? [] : null,
      focusTarget() {
        if (!cell.asked || cell.readOnly) return null;
        return group.inputs.find((input) => input.tabIndex === 0) || group.inputs[0];
      },
      set(value) {
        cell.value = value;
        group.inputs.forEach((input, i) => {
          const v = list[i].value;
          input.checked = multiple ? Array.isArray(value) && value.includes(v) : hasValue(value) && value === v;
        });
        rove();
      },
    };
    // The tabbable input of the group: the checked one, else the last focused, else the first.
    const rove = () => {
      const checked = group.inputs.findIndex((input) => input.checked);
      const at = !multiple && checked >= 0 ? checked : Math.min(cell.focused, group.inputs.length - 1);
      group.inputs.forEach((input, i) => { input.tabIndex = i === at ? 0 : -1; });
    };
    group.inputs.forEach((input, i) => {
      input.addEventListener("focus", () => { cell.focused = i; if (multiple) rove(); });
      input.addEventListener("change", () => {
        if (multiple) {
          const chosen = list.filter((_, j) => group.inputs[j].checked).map((c) => c.value);
          ctx.onPick(field, group.eye, chosen.length ? chosen : null);
        } else if (input.checked) {
          ctx.onPick(field, group.eye, list[i].value);
        }
      });
    });
    rove();
    cellsOut[cellKey(field.key, group.eye)] = cell;
  }
  return { body, cells: cellsOut };
}

/** Number inputs (one per eye) with the unit, range and step from the form. */
function numberInputs(field, id, labelId, ctx) {
  const body = h("div", { class: `gf-inputs${field.per_eye ? " two" : " one"}` });
  if (field.per_eye) body.append(...eyeHeads(1));
  const range = t("grading.range", { min: String(field.min), max: String(field.max) }) + (field.step ? ` · ${t("grading.step", { step: String(field.step) })}` : "");
  const hint = h("p", { class: "gf-help gf-range", id: `${id}-range`, text: field.unit ? `${range} · ${field.unit}` : range });
  const cellsOut = {};
  (field.per_eye ? EYES : [null]).forEach((eye, i) => {
    const input = h("input", {
      type: "number",
      id: `${id}-${eye || "x"}`,
      min: String(field.min),
      max: String(field.max),
      step: field.step ? String(field.step) : "any",
      inputmode: "decimal",
      autocomplete: "off",
      "aria-labelledby": eye ? null : labelId,
      "aria-label": eye ? `${text(field.label, ctx.lang)} ${eye}` : null,
      "aria-describedby": `${id}-range`,
      dataset: { cell: cellKey(field.key, eye) },
    });
    const wrap = h("span", { class: "gf-number" }, input, field.unit ? h("span", { class: "gf-unit", text: field.unit }) : null);
    body.append(place(wrap, field.per_eye ? 2 : 1, i + 1));
    // "Cannot grade" (the disc out of view): a box under the input that empties and locks it.
    const cannot = field.cannot_grade ? h("input", {
      type: "checkbox",
      id: `${id}-${eye || "x"}-cannot`,
      // Not a Tab stop (one stop per eye, as everywhere in the form): X or a click sets it.
      tabindex: "-1",
      "aria-label": `${text(field.label, ctx.lang)}${eye ? ` ${eye}` : ""} · ${ctx.words.cannotGrade}`,
      dataset: { cell: cellKey(field.key, eye), cannot: "1" },
    }) : null;
    const box = cannot ? h("label", { class: "gf-cannot-box" }, cannot, h("span", { text: ctx.words.cannotGrade })) : null;
    if (box) body.append(place(box, field.per_eye ? 3 : 2, i + 1));
    const cell = {
      field,
      eye,
      inputs: cannot ? [input, cannot] : [input],
      zone: box ? [wrap, box] : [wrap],
      localProblem: null,
      blocked: (el) => el === input && !!cannot && cannot.checked,
      focusTarget: () => (cell.asked && !cell.readOnly ? (cannot && cannot.checked ? cannot : input) : null),
      set(value) {
        if (cannot) {
          cannot.checked = value === CANNOT_GRADE;
          cell.applyDisabled();
          if (cannot.checked) {
            input.value = "";
            return;
          }
        }
        // What the grader is typing stays as typed ("0." on the way to "0.35").
        if (document.activeElement === input) return;
        const shownNumber = input.value === "" ? null : Number(input.value);
        if (!(hasValue(value) && shownNumber === value) && !(value === null && cell.localProblem)) {
          input.value = hasValue(value) ? String(value) : "";
        }
      },
    };
    const typed = () => {
      const problem = numberProblem(field, input);
      cell.localProblem = problem;
      cell.setProblem(problem);
      return problem || input.value === "" ? null : Number(input.value);
    };
    input.addEventListener("input", () => ctx.onPick(field, eye, typed()));
    if (cannot) {
      cannot.addEventListener("change", () => {
        if (cannot.checked) {
          input.value = "";
          cell.localProblem = null;
          cell.setProblem(null);
        }
        cell.applyDisabled();
        ctx.onPick(field, eye, cannot.checked ? CANNOT_GRADE : typed());
      });
    }
    cellsOut[cellKey(field.key, eye)] = cell;
  });
  const hintRow = (field.per_eye ? 3 : 2) + (field.cannot_grade ? 1 : 0);
  body.append(place(hint, hintRow, "1 / -1"));
  return { body, cells: cellsOut };
}

/** What is wrong with a number as typed (null when it is fine or empty). */
function numberProblem(field, input) {
  if (input.validity.badInput) return t("grading.problem.not_a_number");
  if (input.value === "") return null;
  const value = Number(input.value);
  if (!Number.isFinite(value)) return t("grading.problem.not_a_number");
  if (value < field.min - 1e-9 || value > field.max + 1e-9) return t("grading.problem.out_of_range_number", { min: String(field.min), max: String(field.max) });
  if (field.step) {
    const k = (value - field.min) / field.step;
    if (Math.abs(k - Math.round(k)) > 1e-6) return t("grading.problem.step_local", { step: String(field.step), min: String(field.min) });
  }
  return null;
}

/** Free text: a line for short texts, a box for long ones (Enter in a box is a new line). */
function textInputs(field, id, labelId, ctx) {
  const max = field.max_len || 1000;
  const body = h("div", { class: `gf-inputs${field.per_eye ? " two" : " one"}` });
  if (field.per_eye) body.append(...eyeHeads(1));
  const cellsOut = {};
  (field.per_eye ? EYES : [null]).forEach((eye, i) => {
    const long = max > 200;
    const input = h(long ? "textarea" : "input", {
      type: long ? null : "text",
      id: `${id}-${eye || "x"}`,
      maxlength: String(max),
      rows: long ? "2" : null,
      autocomplete: "off",
      "aria-labelledby": eye ? null : labelId,
      "aria-label": eye ? `${text(field.label, ctx.lang)} ${eye}` : null,
      dataset: { cell: cellKey(field.key, eye) },
    });
    body.append(place(input, field.per_eye ? 2 : 1, i + 1));
    const cell = {
      field,
      eye,
      inputs: [input],
      zone: [input],
      focusTarget: () => (cell.asked && !cell.readOnly ? input : null),
      set(value) {
        if (document.activeElement === input) return;
        const wanted = hasValue(value) ? String(value) : "";
        if (input.value.trim() !== wanted.trim()) input.value = wanted;
      },
    };
    input.addEventListener("input", () => ctx.onPick(field, eye, input.value === "" ? null : input.value));
    cellsOut[cellKey(field.key, eye)] = cell;
  });
  return { body, cells: cellsOut };
}
