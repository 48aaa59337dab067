// The grading form of a case (`GET /api/cases/{id}/form`), beside the image viewer on the case
// page: renders the study's `readroom-form/1` definition (grading-fields.js), shows and hides
// fields as their conditions say (grading-rules.js), autosaves the draft (grading-autosave.js),
// submits (`POST /api/cases/{id}/grade`, then the next case), shows a submitted grade read-only
// with "Amend" (`POST /api/cases/{id}/amendments`), and for an adjudicator shows the two blind
// grades A and B above the form (grading-compare.js).
//
// Keyboard (the whole workflow works without a mouse):
// - opening a case focuses the first unanswered field; 0–9 pick a value of the focused field
//   (see `digitPick`), Tab / Shift-Tab move field by field and eye by eye, Delete clears,
//   Enter submits and opens the next case (Ctrl+Enter from a text box);
// - keys the focused choice does not use go to the image viewer (arrows step B-scans, + − zoom,
//   R, I, W, L, M, [ ], and a digit the field has no value for, e.g. 0 = fit), so the grader
//   rarely leaves the form; Esc hands the keyboard to the image (where every key is the
//   viewer's, and Esc steps back one display setting at a time), F brings it back to the form;
//   Ctrl+Z undoes the viewer's last reset or clear; ? shows all keys;
// - Space on the submit button does not submit (Tab from the last field lands there, and Space
//   is the key that ticks options): Enter or a click does.

import { api } from "../api.js";
import { h } from "../dom.js";
import { errorText } from "../errors.js";
import { currentLanguage, eyeName, formatDateTime, formatTime, kindName, roleName, statusName, t } from "../i18n.js";
import { onLeave } from "../lifecycle.js";
import { navigate } from "../router.js";
import { Autosave, dropUnsent, readUnsent } from "./grading-autosave.js";
import { compareSection, disagreementMap } from "./grading-compare.js";
import { buildField } from "./grading-fields.js";
import { shortcutsDialog } from "./grading-help.js";
import { CANNOT_GRADE, asked, cellKey, digitPick, payload, text, valueOf, withValue } from "./grading-rules.js";

/** The server refuses a larger `render_state` (bytes of JSON). */
const MAX_RENDER_STATE = 8 * 1024;

/** Problem codes with a translated message (`grading.problem.<code>`); others show the server's. */
const PROBLEM_CODES = new Set(["unknown_field", "wrong_type", "out_of_range", "not_a_step", "not_an_option", "too_long", "not_applicable", "required", "not_an_object"]);

/** A message for the next page ("Grade for C-0001 submitted."), shown once. */
let flash = null;

/** Takes the message a submission left for the next page (null when none). */
export function takeFlash() {
  const message = flash;
  flash = null;
  return message;
}

/** Inputs that take typed text: their keys are the grader's, not shortcuts. */
function isTextEntry(target) {
  if (!(target instanceof Element)) return false;
  if (target.closest("textarea, select, [contenteditable]")) return true;
  return target instanceof HTMLInputElement && !["radio", "checkbox", "button", "submit"].includes(target.type);
}

/** JSON with object members sorted, so two value objects compare whatever their key order. */
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value).sort().map((key) => `${JSON.stringify(key)}:${canonical(value[key])}`).join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

function sameJson(a, b) {
  return canonical(a ?? {}) === canonical(b ?? {});
}

/**
 * Loads and shows the grading form of `caseId` in `panel`. `viewer`: the case's stream viewer
 * (or null); `isCurrent()`: whether the page is still the one shown.
 */
export async function mountGradingForm(panel, { caseId, viewer = null, isCurrent = () => true }) {
  const form = new GradingForm(panel, caseId, viewer, isCurrent);
  await form.load();
  return form;
}

class GradingForm {
  constructor(panel, caseId, viewer, isCurrent) {
    Object.assign(this, { panel, caseId, viewer, isCurrent });
    this.root = h("section", { id: "grading", class: "grading", "aria-labelledby": "grading-title" });
    this.help = shortcutsDialog();
    this.panel.append(this.root, this.help.element);
    this.cells = new Map();
    this.fieldEls = new Map();
    this.autosave = null;
    this.busy = false;
    this.lastCell = null;
    this.ready = false;
    this.listen();
  }

  // ---- loading ------------------------------------------------------------------------------

  async load({ notice = null } = {}) {
    let data;
    try {
      data = await api(`/api/cases/${encodeURIComponent(this.caseId)}/form`);
    } catch (err) {
      if (err.redirected || !this.isCurrent()) return false;
      const message = err.status === 409 ? t("grading.no_form") : err.status === 404 ? t("grading.not_assigned") : errorText(err);
      this.root.dataset.mode = "unavailable";
      this.root.replaceChildren(h("h2", { id: "grading-title", text: t("grading.title") }),
        h("p", { class: "status", dataset: { kind: err.status === 409 ? "info" : "error" }, id: "grading-message", text: message }));
      return false;
    }
    if (!this.isCurrent()) return false;
    this.build(data);
    const message = notice || takeFlash();
    if (message) this.say(notice ? "warn" : "ok", message);
    return true;
  }

  /** Loads the form again (after a conflict or an amendment), keeping the focus in the form. */
  async reload(notice = null) {
    if (this.autosave) this.autosave.stop();
    const ok = await this.load({ notice });
    if (ok) this.focusFirst();
  }

  build(data) {
    this.data = data;
    this.form = data.form;
    this.lang = currentLanguage();
    this.words = { yes: t("grading.yes"), no: t("grading.no"), cannotGrade: t("grading.cannot_grade") };
    const assignment = data.assignment;
    const adjudicator = assignment.role === "adjudicator";
    const round = data.adjudication;
    let values = {};
    let restored = false;
    let stale = false;
    this.lastCell = null;
    if (!adjudicator && data.grade && assignment.status === "done") {
      this.mode = "readonly";
      values = data.grade.values || {};
      dropUnsent(assignment.id);
    } else if (adjudicator && assignment.status === "done") {
      this.mode = "readonly";
      values = (round && round.final_values) || {};
      dropUnsent(assignment.id);
    } else {
      this.mode = "edit";
      // An adjudicator starts from what both grades agree on, so only the disagreements are left.
      values = (data.draft && data.draft.values) || (adjudicator && round && round.prefill) || {};
      // Values a save did not deliver (network down, tab closed, session expired) come back,
      // unless the server's draft moved on meanwhile (another tab saved).
      const kept = readUnsent(assignment.id);
      if (kept && !sameJson(kept.values, values)) {
        if ((kept.revision ?? null) === (data.draft ? data.draft.revision : null)) {
          values = kept.values;
          restored = true;
        } else {
          dropUnsent(assignment.id);
          stale = true;
        }
      } else if (kept) {
        dropUnsent(assignment.id);
      }
    }
    this.values = values;
    this.root.dataset.mode = this.mode;
    this.root.dataset.role = assignment.role;

    const titleText = text(this.form.title, this.lang);
    // Time on this case since it was opened here (a reading centre paces its graders by it).
    this.clockEl = h("span", { id: "grading-clock", class: "muted" });
    if (!this.openedAt) this.openedAt = performance.now();
    this.tickClock();
    const meta = h("p", { class: "grading-meta" },
      h("span", { class: "badge role", text: roleName(assignment.role) }),
      h("span", { class: `badge status-${assignment.status}`, id: "grading-status", text: statusName(assignment.status) }),
      assignment.due_at ? h("span", { class: "due", text: t("grading.due", { when: formatDateTime(assignment.due_at) }) }) : null,
      data.progress ? h("span", { id: "grading-progress", text: t("grading.progress", data.progress) }) : null,
      this.clockEl,
      h("span", { class: "muted form-version", text: t("grading.form_version", { code: this.form.code, version: data.form_version }) }));
    this.saveEl = h("p", { id: "grading-save", class: "save-state", role: "status", "aria-live": "polite" });
    this.messageEl = h("p", { id: "grading-message", class: "status", role: "alert", hidden: true });

    this.formEl = h("form", { id: "grading-form", class: "grading-form", novalidate: true, "aria-labelledby": "grading-title" });
    this.formEl.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.formEl.addEventListener("keydown", (event) => this.onFormKey(event));
    this.formEl.addEventListener("focusin", (event) => {
      const cell = this.cellOf(event.target);
      if (cell) this.lastCell = cell;
    });

    this.cells.clear();
    this.fieldEls.clear();
    const ctx = { lang: this.lang, words: this.words, onPick: (field, eye, value) => this.pick(field, eye, value) };
    for (const field of this.form.fields) {
      const { element, cells } = buildField(field, ctx);
      this.fieldEls.set(field.key, element);
      for (const [key, cell] of Object.entries(cells)) this.cells.set(key, cell);
      this.formEl.append(element);
    }

    const parts = [h("h2", { id: "grading-title", text: titleText }), meta];
    if (adjudicator && round) {
      parts.push(compareSection(this.form, round, this.lang, this.words));
      const flagged = disagreementMap(round);
      for (const key of flagged.keys()) {
        const cell = this.cells.get(key);
        if (cell) cell.setDisagree(true);
      }
    } else if (adjudicator) {
      parts.push(h("p", { class: "note", text: t("grading.compare.none") }));
    }
    parts.push(this.readonlyNote(), this.saveEl, this.messageEl, this.formEl, this.actions(),
      h("p", { class: "grading-keys muted" },
        h("kbd", { text: "0–9" }), ` ${t("grading.hint.pick")} · `,
        h("kbd", { text: "Tab" }), ` ${t("grading.hint.next")} · `,
        h("kbd", { text: "Enter" }), ` ${t("grading.hint.submit")} · `,
        h("kbd", { text: "Esc" }), ` ${t("grading.hint.image")} · `,
        h("kbd", { text: "?" }), ` ${t("grading.hint.help")}`));
    this.root.replaceChildren(...parts.filter(Boolean));
    this.ready = true;
    this.refresh();
    this.setMode(this.mode);

    if (this.mode === "edit") {
      this.autosave = new Autosave({
        caseId: this.caseId,
        assignmentId: assignment.id,
        revision: data.draft ? data.draft.revision : null,
        values: () => payload(this.form, this.values, "draft"),
        context: () => this.context(),
        onState: (state, detail) => this.showSave(state, detail),
        onProblems: (problems) => this.showProblems(problems, false),
        onConflict: () => this.reload(t("grading.conflict")),
      });
      this.showSave(data.draft ? "saved" : "new", data.draft ? data.draft.updated_at : null);
      if (restored) {
        this.say("warn", t("grading.restored"));
        this.autosave.restored();
      } else if (stale) {
        this.say("warn", t("grading.unsent_stale"));
      }
    } else {
      this.autosave = null;
      this.saveEl.hidden = true;
    }
  }

  /** The note above a submitted grade: when, which version, why it was amended. */
  readonlyNote() {
    const data = this.data;
    if (this.mode !== "readonly") return null;
    if (data.assignment.role === "adjudicator") {
      return h("p", { id: "grading-submitted", class: "submitted-note", text: t("grading.adjudicated_note") });
    }
    const grade = data.grade;
    return h("div", { id: "grading-submitted", class: "submitted-note" },
      h("p", { text: t("grading.submitted_note", { when: grade.submitted_at ? formatDateTime(grade.submitted_at) : "—", version: grade.version }) }),
      grade.reason ? h("p", { class: "muted", text: t("grading.amend_reason_was", { reason: grade.reason }) }) : null);
  }

  actions() {
    const data = this.data;
    this.submitButton = h("button", { type: "submit", form: "grading-form", id: "grading-submit", class: "primary" });
    // Space activates a focused button (on key up); on this one it would submit by accident.
    const noSpace = (event) => {
      if (event.key !== " ") return;
      event.preventDefault();
      if (event.type === "keydown" && !event.repeat) this.say("info", t("grading.space_no_submit"));
    };
    this.submitButton.addEventListener("keydown", noSpace);
    this.submitButton.addEventListener("keyup", noSpace);
    this.amendButton = h("button", { type: "button", id: "grading-amend", text: t("grading.amend"), onclick: () => this.startAmend() });
    this.cancelButton = h("button", { type: "button", id: "grading-amend-cancel", text: t("grading.amend_cancel"), onclick: () => this.cancelAmend() });
    this.reasonInput = h("textarea", { id: "grading-reason", rows: "2", maxlength: "2000" });
    this.reasonField = h("div", { class: "field amend-reason", hidden: true },
      h("label", { for: "grading-reason", text: t("grading.amend_reason") }),
      this.reasonInput,
      h("small", { class: "hint", text: t("grading.amend_reason_hint") }));
    this.reasonInput.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && event.ctrlKey) {
        event.preventDefault();
        this.submit();
      } else if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        this.toImage();
      }
    });
    // Asked before a submission whose graded eyes or exams the worker never showed.
    this.unviewedText = h("p", { id: "grading-unviewed-text" });
    this.unviewedBox = h("div", { id: "grading-unviewed", class: "unviewed-confirm", role: "alertdialog", "aria-labelledby": "grading-unviewed-text", hidden: true },
      this.unviewedText,
      h("div", { class: "inline" },
        h("button", { type: "button", id: "grading-unviewed-look", text: t("grading.unviewed_look"), onclick: () => { this.hideUnviewed(); this.toImage(); } }),
        h("button", { type: "button", id: "grading-unviewed-submit", text: t("grading.unviewed_submit"), onclick: () => this.submit({ unviewedAccepted: true }) })));
    const next = data.next_case
      ? h("a", { id: "grading-next", class: "button-link", href: `/cases/${encodeURIComponent(data.next_case)}`, text: t("grading.next_case") })
      : h("a", { id: "grading-next", class: "button-link", href: "/", text: t("grading.back_to_worklist") });
    this.nextLink = next;
    return h("div", { class: "grading-actions" }, this.reasonField, this.unviewedBox,
      h("div", { class: "inline" }, this.submitButton, this.amendButton, this.cancelButton, next));
  }

  setMode(mode) {
    this.mode = mode;
    this.root.dataset.mode = mode;
    const adjudicator = this.data.assignment.role === "adjudicator";
    for (const cell of this.cells.values()) cell.setReadOnly(mode === "readonly");
    this.submitButton.hidden = mode === "readonly";
    this.submitButton.textContent = mode === "amend" ? t("grading.submit_amendment") : adjudicator ? t("grading.submit_final") : t("grading.submit");
    this.amendButton.hidden = mode !== "readonly" || adjudicator;
    this.cancelButton.hidden = mode !== "amend";
    this.reasonField.hidden = mode !== "amend";
    this.nextLink.hidden = mode !== "readonly";
  }

  // ---- values -------------------------------------------------------------------------------

  cellOf(target) {
    const el = target instanceof Element ? target.closest("[data-cell]") : null;
    return el ? this.cells.get(el.dataset.cell) || null : null;
  }

  /** A value picked (by key, click or typing). */
  pick(field, eye, value) {
    if (this.mode === "readonly") return;
    this.values = withValue(this.values, field, eye, value);
    const cell = this.cells.get(cellKey(field.key, eye));
    if (cell && !cell.localProblem) cell.setProblem(null);
    this.refresh();
    if (this.mode === "edit" && this.autosave) this.autosave.changed();
  }

  /** Shows the fields whose conditions hold (in draft terms) and every value in its input. */
  refresh() {
    const { state } = asked(this.form, this.values, "draft");
    for (const field of this.form.fields) {
      let shown = false;
      for (const eye of field.per_eye ? ["OD", "OS"] : [null]) {
        const key = cellKey(field.key, eye);
        const cell = this.cells.get(key);
        const on = state.get(key) === "yes";
        cell.setAsked(on);
        cell.set(valueOf(this.values, field, eye));
        shown = shown || on;
      }
      this.fieldEls.get(field.key).hidden = !shown;
    }
  }

  /** The view the grade is made on (what the stream viewer shows right now). */
  context() {
    const view = this.viewer && this.viewer.gradingContext ? this.viewer.gradingContext() : {};
    const out = {};
    if (view.render_state && JSON.stringify(view.render_state).length <= MAX_RENDER_STATE) out.render_state = view.render_state;
    if (view.lossless_sha256) out.lossless_sha256 = view.lossless_sha256;
    return out;
  }

  // ---- focus and keys -----------------------------------------------------------------------

  /** Focuses the first asked field (and eye) without a value; else the main button. */
  focusFirst() {
    if (this.mode !== "readonly") {
      const { state } = asked(this.form, this.values, "submit");
      for (const cell of this.cells.values()) {
        const key = cellKey(cell.field.key, cell.eye);
        if (state.get(key) !== "yes" || cell.field.required === false) continue;
        if (valueOf(this.values, cell.field, cell.eye) === null && cell.focus()) return;
      }
      this.submitButton.focus();
      return;
    }
    (this.amendButton.hidden ? this.nextLink : this.amendButton).focus();
  }

  /** Back to the form from the image: the field last worked on, else the first unanswered. */
  toForm() {
    if (!this.formEl || !this.formEl.isConnected) return;
    if (this.lastCell && this.lastCell.focus()) return;
    this.focusFirst();
  }

  /** Hands the keyboard to the image viewer. */
  toImage() {
    if (this.viewer && this.viewer.stage) this.viewer.stage.focus({ preventScroll: true });
  }

  onFormKey(event) {
    if (event.defaultPrevented || event.altKey || event.metaKey || event.isComposing) return;
    const target = event.target;
    if (event.key === "Enter") {
      if (target instanceof HTMLTextAreaElement && !event.ctrlKey) return;
      if (target instanceof Element && target.closest("button, a[href], summary") && !event.ctrlKey) return;
      event.preventDefault();
      this.submit();
      return;
    }
    if (event.ctrlKey) {
      // Ctrl+Z outside a text box undoes the image's last reset or clear.
      if ((event.key === "z" || event.key === "Z") && !event.shiftKey && !isTextEntry(target) && this.viewer && this.viewer.undo) {
        event.preventDefault();
        this.viewer.undo();
      }
      return;
    }
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      this.toImage();
      return;
    }
    const cell = this.cellOf(target);
    // X: "cannot grade", where the field allows it (a number input takes no letters anyway).
    const numberInput = target instanceof HTMLInputElement && target.type === "number";
    if (cell && (event.key === "x" || event.key === "X") && cell.field.cannot_grade && (numberInput || !isTextEntry(target))) {
      event.preventDefault();
      if (!cell.readOnly && cell.asked) this.pickByKey(cell, CANNOT_GRADE);
      return;
    }
    if (isTextEntry(target)) return;
    if (!cell) return;
    if (/^[0-9]$/.test(event.key)) {
      const value = digitPick(cell.field, Number(event.key));
      if (value !== undefined) {
        event.preventDefault();
        this.pickByKey(cell, value);
        return;
      }
    }
    if (event.key === "Delete" || event.key === "Backspace") {
      event.preventDefault();
      this.pick(cell.field, cell.eye, null);
      return;
    }
    // D: the field's definitions, opened or folded.
    if (event.key === "d" || event.key === "D") {
      const defs = target instanceof Element ? target.closest("fieldset")?.querySelector(":scope > details.gf-defs") : null;
      if (defs) {
        event.preventDefault();
        defs.open = !defs.open;
        return;
      }
    }
    if (event.key === " " || event.key === "Tab" || event.key === "?") return;
    // Everything else the image viewer knows goes to it (the focus stays in the form).
    if (this.viewer && this.viewer.runKey(event.key, event.repeat)) event.preventDefault();
  }

  /** A digit key on a choice: picks it (a multiple choice toggles it), focus on the choice. */
  pickByKey(cell, value) {
    if (cell.field.type === "choice" && cell.field.multiple) {
      const now = valueOf(this.values, cell.field, cell.eye) || [];
      const next = now.includes(value) ? now.filter((v) => v !== value) : [...now, value];
      const order = cell.field.options.map((o) => o.value).filter((v) => next.includes(v));
      this.pick(cell.field, cell.eye, order.length ? order : null);
      const index = cell.field.options.findIndex((o) => o.value === value);
      if (cell.inputs[index]) cell.inputs[index].focus();
      return;
    }
    this.pick(cell.field, cell.eye, value);
    cell.focus();
  }

  /** Keys for the whole case page: `?` (help) and F (back to the form from the image). */
  listen() {
    const onWindowKey = (event) => {
      if (this.help.isOpen()) {
        // The dialog is modal: keep its keys from the viewer's document listener.
        if (event.key !== "Tab") event.stopPropagation();
        return;
      }
      if (event.key === "?" && !event.ctrlKey && !event.metaKey && !event.altKey && !isTextEntry(event.target)) {
        event.preventDefault();
        event.stopPropagation();
        this.help.open();
      }
    };
    const onDocumentKey = (event) => {
      if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
      if ((event.key === "f" || event.key === "F") && !isTextEntry(event.target) && !this.root.contains(event.target)) {
        event.preventDefault();
        this.toForm();
      }
    };
    const onHide = () => {
      if (document.visibilityState === "hidden" && this.autosave) this.autosave.leave();
    };
    const onPageHide = () => {
      if (this.autosave) this.autosave.leave();
    };
    window.addEventListener("keydown", onWindowKey, true);
    document.addEventListener("keydown", onDocumentKey);
    document.addEventListener("visibilitychange", onHide);
    window.addEventListener("pagehide", onPageHide);
    onLeave(() => {
      clearTimeout(this.clockTimer);
      window.removeEventListener("keydown", onWindowKey, true);
      document.removeEventListener("keydown", onDocumentKey);
      document.removeEventListener("visibilitychange", onHide);
      window.removeEventListener("pagehide", onPageHide);
      if (this.autosave) {
        this.autosave.leave();
        this.autosave.stop();
      }
      if (this.help.isOpen()) this.help.element.close();
    });
  }

  /** Shows the time on this case (m:ss), and again each second while the page is open. */
  tickClock() {
    clearTimeout(this.clockTimer);
    if (!this.clockEl) return;
    const seconds = Math.floor((performance.now() - this.openedAt) / 1000);
    const clock = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
    this.clockEl.textContent = t("grading.time_on_case", { time: clock });
    if (this.isCurrent()) this.clockTimer = setTimeout(() => this.tickClock(), 1000);
  }

  // ---- messages -----------------------------------------------------------------------------

  say(kind, message) {
    this.messageEl.dataset.kind = kind;
    this.messageEl.textContent = message || "";
    this.messageEl.hidden = !message;
  }

  showSave(state, detail) {
    this.saveEl.dataset.state = state;
    this.root.dataset.save = state;
    let message;
    switch (state) {
      case "new": message = t("grading.save.new"); break;
      case "saved": message = detail ? t("grading.save.saved_at", { time: formatTime(detail) }) : t("grading.save.saved"); break;
      case "pending": message = t("grading.save.pending"); break;
      case "saving": message = t("grading.save.saving"); break;
      case "offline": message = t("grading.save.offline", { seconds: Math.round((detail || 0) / 1000) }); break;
      case "invalid": message = t("grading.save.invalid"); break;
      case "conflict": message = t("grading.save.conflict"); break;
      default: message = t("grading.save.error", { message: errorText(detail) });
    }
    this.saveEl.textContent = message;
  }

  /** A problem of the server's list in the grader's language. */
  problemText(problem) {
    return PROBLEM_CODES.has(problem.code) ? t(`grading.problem.${problem.code}`) : problem.message;
  }

  /** Marks every field (and eye) the server named; `focus`: go to the first. */
  showProblems(problems, focus = true) {
    for (const cell of this.cells.values()) if (!cell.localProblem) cell.setProblem(null);
    let first = null;
    const general = [];
    for (const problem of problems) {
      const cell = this.cells.get(cellKey(problem.field, problem.eye || null));
      if (cell) {
        cell.setProblem(this.problemText(problem));
        if (!first) first = cell;
      } else {
        general.push(problem.message);
      }
    }
    this.say("error", [t("grading.problems", { count: problems.length }), ...general].join(" "));
    if (focus && first) first.focus();
  }

  // ---- submitting ---------------------------------------------------------------------------

  /** The items of a `graded_without_viewing` refusal, named for the grader. */
  unviewedItems(problems) {
    // An eye never shown at all is one item, not also each of its exams.
    const eyes = new Set(problems.filter((w) => !w.exam && w.eye).map((w) => w.eye));
    return problems
      .filter((w) => !w.exam || !eyes.has(w.eye))
      .map((w) => w.exam
        ? `${w.kind ? kindName(w.kind) : w.exam}${w.eye ? ` ${w.eye}` : ""}`
        : t("grading.unviewed_eye", { eye: eyeName(w.eye) }));
  }

  /** Asks whether to submit although `items` were never shown. */
  askUnviewed(items) {
    this.unviewedText.textContent = t("grading.unviewed_confirm", { items: items.join(", ") });
    this.unviewedBox.hidden = false;
    this.root.dataset.unviewed = "asked";
    this.unviewedBox.querySelector("#grading-unviewed-look").focus();
  }

  hideUnviewed() {
    if (!this.unviewedBox) return;
    this.unviewedBox.hidden = true;
    delete this.root.dataset.unviewed;
  }

  /**
   * Submits (or amends). A new grade is sent with `require_viewed`: if it grades eyes or exams
   * the worker never showed the grader, the server refuses it (after checking the values) and
   * the grader is asked (`askUnviewed`); "Submit anyway" sends it without (`unviewedAccepted`).
   */
  async submit({ unviewedAccepted = false } = {}) {
    if (this.busy || this.mode === "readonly") return;
    const { state } = asked(this.form, this.values, "submit");
    const local = [...this.cells.values()].find((cell) => cell.localProblem && state.get(cellKey(cell.field.key, cell.eye)) === "yes");
    if (local) {
      this.say("error", t("grading.fix_marked"));
      local.focus();
      return;
    }
    const amending = this.mode === "amend";
    const reason = amending ? this.reasonInput.value.trim() : null;
    if (amending && !reason) {
      this.say("error", t("grading.amend_reason_required"));
      this.reasonInput.focus();
      return;
    }
    this.hideUnviewed();
    this.busy = true;
    this.submitButton.disabled = true;
    this.root.setAttribute("aria-busy", "true");
    this.say("info", t("grading.submitting"));
    // The next case's ticket is renewed beside the submission if it got old while grading.
    if (!amending && this.viewer && this.data.next_case) this.viewer.prefetch(this.data.next_case);
    if (this.autosave) await this.autosave.settle();
    const body = { values: payload(this.form, this.values, "submit"), ...this.context() };
    if (amending) body.reason = reason;
    else body.require_viewed = !unviewedAccepted;
    const id = encodeURIComponent(this.caseId);
    try {
      const answer = await api(amending ? `/api/cases/${id}/amendments` : `/api/cases/${id}/grade`, { method: "POST", body });
      dropUnsent(this.data.assignment.id);
      if (!this.isCurrent()) return;
      if (amending) {
        flash = t("grading.amended", { version: answer.version });
        this.busy = false;
        await this.reload();
        return;
      }
      flash = t(answer.kind === "adjudication" ? "grading.adjudicated_flash" : "grading.submitted_flash", { label: this.data.label });
      const unviewed = this.unviewedItems(answer.warnings || []);
      if (unviewed.length) flash += ` ${t("grading.unviewed_warning", { items: unviewed.join(", ") })}`;
      navigate(answer.next_case ? `/cases/${encodeURIComponent(answer.next_case)}` : "/");
    } catch (err) {
      if (err.redirected) return;
      this.busy = false;
      this.submitButton.disabled = false;
      this.root.removeAttribute("aria-busy");
      const unviewed = err.status === 422 && err.problems && err.problems.length && err.problems.every((p) => p.code === "graded_without_viewing");
      if (unviewed) {
        this.say("", "");
        this.askUnviewed(this.unviewedItems(err.problems));
      } else if (err.status === 422 && err.problems) {
        this.showProblems(err.problems);
      } else if (err.status === 409) {
        await this.reload(t("grading.already_submitted"));
        return;
      } else {
        this.say("error", errorText(err));
      }
      if (this.autosave) this.autosave.resume();
    } finally {
      if (!this.busy) this.root.removeAttribute("aria-busy");
    }
  }

  startAmend() {
    this.setMode("amend");
    this.say("info", t("grading.amend_note"));
    this.focusFirstField();
  }

  cancelAmend() {
    this.values = this.data.grade.values || {};
    for (const cell of this.cells.values()) if (cell.setProblem) cell.setProblem(null);
    this.setMode("readonly");
    this.refresh();
    this.say("info", "");
    this.amendButton.focus();
  }

  /** The first field that can take the focus (amending: every field has a value already). */
  focusFirstField() {
    for (const cell of this.cells.values()) if (cell.focus()) return;
  }
}
