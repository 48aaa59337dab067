// The rules of a `readroom-form/1` definition the browser needs (docs/grading-forms.md): what
// counts as a value, which fields are asked given the values so far, which values to send, what
// a digit key picks and how a value reads. Pure: no DOM, no network. The server checks every
// grade again; these rules only keep the form honest while the grader works.

/** The eyes of a per-eye field, in display order (OD before OS, as in the exports). */
export const EYES = ["OD", "OS"];

/** `null`, an empty (or blank) text and an empty list count as "no value". */
export function hasValue(value) {
  if (value === null || value === undefined) return false;
  if (typeof value === "string") return value.trim() !== "";
  if (Array.isArray(value)) return value.length > 0;
  return true;
}

function same(a, b) {
  if (typeof a === "number" && typeof b === "number") return Math.abs(a - b) < 1e-9;
  return a === b;
}

/** Whether a value (a list for a multiple choice) meets a condition's `equals` / `any_of`. */
function meets(when, value) {
  const wanted = Object.prototype.hasOwnProperty.call(when, "equals") ? [when.equals] : when.any_of || [];
  const chosen = Array.isArray(value) ? value : [value];
  return chosen.some((c) => wanted.some((w) => same(c, w)));
}

/** The value of `field` in `values` for `eye` (null for person-level fields). */
export function valueOf(values, field, eye) {
  const stored = values[field.key];
  if (!field.per_eye) return stored ?? null;
  return stored && typeof stored === "object" && !Array.isArray(stored) ? stored[eye] ?? null : null;
}

/** `values` with `field` (and `eye`) set to `value` (null removes it); a new object. */
export function withValue(values, field, eye, value) {
  const next = { ...values };
  if (!field.per_eye) {
    if (hasValue(value)) next[field.key] = value;
    else delete next[field.key];
    return next;
  }
  const eyes = { ...(next[field.key] || {}) };
  if (hasValue(value)) eyes[eye] = value;
  else delete eyes[eye];
  if (Object.keys(eyes).length) next[field.key] = eyes;
  else delete next[field.key];
  return next;
}

/** The cells of a form in display order: `{ field, eye }` (eye null for person-level fields). */
export function cells(form) {
  return form.fields.flatMap((field) => (field.per_eye ? EYES.map((eye) => ({ field, eye })) : [{ field, eye: null }]));
}

/**
 * Whether each cell is asked, in `mode` `draft` or `submit`: a Map from `key` or `key:EYE` to
 * `yes`, `no` or `undecided`, and the values that stand (`kept`).
 *
 * A condition names an earlier field. It holds when that field's value matches; with no value it
 * is undecided in a draft (a value given is kept, nothing is required) and false in a submitted
 * grade. A per-eye field on a per-eye field is judged eye by eye; on a person-level field, for
 * both eyes at once. A value that does not stand (its field is not asked) does not count for the
 * conditions after it, so a whole chain of dependent fields disappears together.
 */
export function asked(form, values, mode = "draft") {
  const state = new Map();
  let kept = {};
  const byKey = new Map(form.fields.map((f) => [f.key, f]));
  for (const { field, eye } of cells(form)) {
    let verdict = "yes";
    const when = field.when;
    if (when) {
      const source = byKey.get(when.field);
      const sourceValue = source ? valueOf(kept, source, source.per_eye ? eye || "OD" : null) : null;
      if (!source || !hasValue(sourceValue)) verdict = mode === "submit" ? "no" : "undecided";
      else verdict = meets(when, sourceValue) ? "yes" : "no";
    }
    state.set(cellKey(field.key, eye), verdict);
    const value = valueOf(values, field, eye);
    if (verdict !== "no" && hasValue(value)) kept = withValue(kept, field, eye, value);
  }
  return { state, kept };
}

/** `dr_grade:OD`, or the key alone for a person-level field. */
export function cellKey(key, eye) {
  return eye ? `${key}:${eye}` : key;
}

/**
 * The values to send: in a draft, everything but values of fields whose condition is false
 * (the server refuses those as `not_applicable`); in a submission, only asked fields.
 */
export function payload(form, values, mode) {
  return asked(form, values, mode).kept;
}

/** Whether every value of an ordinal scale is a single digit, so a key can name it directly. */
export function digitLevels(field) {
  return field.type === "ordinal" && field.levels.every((level) => Number.isInteger(level.value) && level.value >= 0 && level.value <= 9);
}

/** The value a field marked `cannot_grade` takes when the grader cannot judge it. */
export const CANNOT_GRADE = "cannot_grade";

/** Whether `field` offers "cannot grade" as a row of its choices (not numbers: they have a box). */
function cannotGradeRow(field) {
  return !!field.cannot_grade && (field.type === "ordinal" || field.type === "boolean" || (field.type === "choice" && !field.multiple));
}

/**
 * The choices of a choice/ordinal/boolean field as `[{ value, label }]` (labels localized), with
 * "cannot grade" last when the field allows it. `words`: `{ yes, no, cannotGrade }`.
 */
export function choices(field, lang, words) {
  let list = [];
  if (field.type === "choice") list = field.options.map((o) => ({ value: o.value, label: text(o.label, lang) }));
  else if (field.type === "ordinal") list = field.levels.map((l) => ({ value: l.value, label: text(l.label, lang) }));
  else if (field.type === "boolean") list = [{ value: true, label: words.yes }, { value: false, label: words.no }];
  if (cannotGradeRow(field)) list.push({ value: CANNOT_GRADE, label: words.cannotGrade });
  return list;
}

/**
 * The protocol's definitions of a choice or ordinal field's options / levels that have one:
 * `[{ value, label, help }]` in display order (empty when none has a `help`).
 */
export function definitions(field, lang) {
  const list = field.type === "choice" ? field.options : field.type === "ordinal" ? field.levels : [];
  return (list || []).filter((item) => item.help).map((item) => ({
    value: item.value, label: text(item.label, lang), help: text(item.help, lang),
  }));
}

/**
 * What digit `digit` (0–9) picks in a field: an ordinal scale whose levels are all 0–9 takes the
 * level of that value; otherwise (and for choices and yes/no) the 1-based position. Undefined
 * when the digit picks nothing, so the key can go to the image viewer instead (0 fits the image).
 */
export function digitPick(field, digit) {
  if (field.type === "ordinal" && digitLevels(field)) {
    const level = field.levels.find((l) => l.value === digit);
    return level ? level.value : undefined;
  }
  const values = ownValues(field);
  return digit >= 1 && digit <= values.length ? values[digit - 1] : undefined;
}

/** A choice, ordinal or yes/no field's own values in display order (without "cannot grade"). */
function ownValues(field) {
  if (field.type === "ordinal") return field.levels.map((l) => l.value);
  if (field.type === "choice") return field.options.map((o) => o.value);
  if (field.type === "boolean") return [true, false];
  return [];
}

/** The key that picks a choice (for the hint shown next to it). */
export function digitFor(field, index) {
  if (field.type === "ordinal" && digitLevels(field)) return index < field.levels.length ? String(field.levels[index].value) : "";
  // "Cannot grade", after the options, has no digit (X picks it).
  return index < Math.min(ownValues(field).length, 9) ? String(index + 1) : "";
}

/** A localized text in `lang` (English as a fallback). */
export function text(localized, lang) {
  if (!localized) return "";
  if (typeof localized === "string") return localized;
  return localized[lang] || localized.en || "";
}

/**
 * A value as the grader reads it: option labels, "2 · Moderate NPDR", "0.35 mm", Yes/No,
 * "Cannot grade". `words`: `{ yes, no, cannotGrade }`.
 */
export function displayValue(field, value, lang, words) {
  if (!hasValue(value)) return "—";
  if (field.cannot_grade && value === CANNOT_GRADE) return words.cannotGrade;
  switch (field.type) {
    case "choice": {
      const list = Array.isArray(value) ? value : [value];
      return list.map((v) => {
        const option = field.options.find((o) => o.value === v);
        return option ? text(option.label, lang) : String(v);
      }).join(", ");
    }
    case "ordinal": {
      const level = field.levels.find((l) => same(l.value, value));
      return level ? `${value} · ${text(level.label, lang)}` : String(value);
    }
    case "number":
      return field.unit ? `${value} ${field.unit}` : String(value);
    case "boolean":
      return value ? words.yes : words.no;
    default:
      return String(value);
  }
}

/** Whether the values of two grades are the same for display (lists compared in order). */
export function sameValue(a, b) {
  if (!hasValue(a) && !hasValue(b)) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => same(x, b[i]));
  return same(a, b);
}
