// `/cases/{id}`: the streamed image viewer (for assigned graders and adjudicators) with the
// grading form on its right (grading-form.js) and the case's metadata (`GET /api/cases/{id}`)
// folded under the form. The page fills the window (no page scroll; the form panel scrolls on
// its own), so the image keeps its size while the grader works. Leaving the page parks the
// viewer for the next case page, which opens its case on the same connection (keeper.js);
// otherwise the stream session ends a moment later. The grader's next case (`next_case` of the
// case) is prefetched: the worker has it open and rendered before the grader gets there.

import { api } from "../api.js";
import { dl, h, statusLine, table } from "../dom.js";
import { errorText } from "../errors.js";
import { onLeave } from "../lifecycle.js";
import { renderToken } from "../router.js";
import { currentUser, hasRole } from "../session.js";
import { warmIceConfig } from "../stream/connection.js";
import { park, take } from "../stream/keeper.js";
import { Viewer } from "../stream/viewer.js";
import { currentLanguage, eyeName, formatDateTime, formatNumber, kindName, locale, pseudonymText, roleName, statusName, t } from "../i18n.js";
import { EYES, displayMeasurement, hasBothEyesColumn, measurementRows, unitText } from "./case-measurements.js";
import { mountGradingForm } from "./grading-form.js";

export const title = "case.title";

/** The kept connection taken by `prepare`, and its switch to the case, for `render`. */
let prepared = null;

/**
 * Called by the router as soon as it knows the next page is `/cases/{caseId}` (before building
 * it): takes the parked viewer, if any, and starts opening the case on it.
 */
export function prepare([caseId]) {
  const parked = take();
  prepared = parked ? { caseId, parked, switching: parked.switchCase(caseId) } : null;
}

/**
 * Called by the router on a case page before anything is awaited, signed in or not yet known:
 * the ICE settings the stream needs are fetched beside `GET /api/me`.
 */
export function warm() {
  warmIceConfig();
}

export async function render(view, [caseId]) {
  const isCurrent = renderToken();
  const status = statusLine();
  const crumbs = h("nav", { class: "crumbs", "aria-label": t("case.breadcrumb") },
    h("a", { href: "/", text: t("nav.worklist") }));
  const heading = h("h1", { text: t("case.title") });
  view.append(h("div", { class: "case-head" }, crumbs, heading), status);
  status.show("info", t("loading"));
  // The previous case's connection, if the grader came from a case page (next case): the
  // switch starts at once, beside loading the case (a case the user may not view gets no
  // ticket, and the switch fails).
  const early = prepared && prepared.caseId === caseId ? prepared : null;
  if (prepared && !early) prepared.parked.destroy();
  prepared = null;
  const parked = early ? early.parked : take();
  // The window-filling layout: the viewer's stage takes what the header, toolbar and status bar
  // leave (see `.fill-window` in app.css). A kept connection goes into it at once, so that the
  // next case's first frame, which comes before the case is loaded when the worker had it
  // ready, is presented as soon as it arrives (a video outside the page presents nothing).
  const panel = h("aside", { class: "grading-panel", "aria-label": t("grading.panel") });
  let layout = null;
  const fillWindow = () => {
    document.documentElement.classList.add("fill-window");
    onLeave(() => document.documentElement.classList.remove("fill-window"));
    view.classList.add("with-viewer");
    layout = h("div", { class: "case-layout" }, panel);
    view.append(layout);
  };
  if (parked) {
    fillWindow();
    layout.prepend(parked.element);
  }
  const switching = early ? early.switching : parked ? parked.switchCase(caseId) : Promise.resolve(false);
  // Without a kept connection, a grader's or adjudicator's stream starts beside loading the
  // case (the stream request is authorised on its own; a case they may not view is refused
  // there and the viewer is dropped below): the case's metadata is not on the way to its image.
  // Not for a user who also coordinates a study, whose case pages there show metadata only.
  const user = currentUser();
  let eager = null;
  if (!parked && (hasRole(user, "grader") || hasRole(user, "adjudicator")) && !hasRole(user, "coordinator")) {
    fillWindow();
    eager = new Viewer({ caseId });
    layout.prepend(eager.element);
    eager.start();
  }
  const dropParked = async () => {
    if (!parked && !eager) return;
    layout.remove();
    view.classList.remove("with-viewer");
    document.documentElement.classList.remove("fill-window");
    if (eager) eager.destroy();
    if (!parked) return;
    await switching;
    parked.destroy();
  };
  let item;
  try {
    item = await api(`/api/cases/${encodeURIComponent(caseId)}`, { preloaded: true });
  } catch (err) {
    dropParked();
    if (err.redirected) return;
    status.show("error", err.status === 404 ? t("case.not_found") : errorText(err));
    return;
  }
  if (!isCurrent()) {
    dropParked();
    return;
  }
  status.clear();
  heading.textContent = t("case.heading", { label: item.label });
  document.title = `${item.label} · readroom`;
  crumbs.append(" › ", h("span", { "aria-current": "page", text: item.label }));

  const details = detailsOf(item);
  if (item.access !== "view") {
    dropParked();
    view.append(h("p", { class: "note", text: t("case.stream_metadata_only") }), details);
    return;
  }

  if (!layout) fillWindow();
  let viewer = null;
  if (parked) {
    if (await switching) viewer = parked;
    else parked.destroy();
  }
  if (eager) {
    if (eager.caseId === item.case_id) viewer = eager;
    else eager.destroy();
  }
  // After a language switch the controls would keep the old language: start afresh.
  if (viewer && viewer.lang !== currentLanguage()) {
    viewer.destroy();
    viewer = null;
  }
  const reused = !!viewer;
  if (!viewer) viewer = new Viewer({ caseId: item.case_id });
  if (!isCurrent()) {
    viewer.destroy();
    return;
  }
  layout.replaceChildren(viewer.element, panel);
  const kept = viewer;
  onLeave(() => park(kept));
  if (!reused) viewer.start();

  // The grader's next case is made ready on the worker while they grade this one.
  if (item.next_case) viewer.prefetch(item.next_case);

  const form = await mountGradingForm(panel, { caseId: item.case_id, viewer, isCurrent });
  if (!isCurrent()) return;
  // VA, IOP and biometry come with the case's images, from the worker (the API never has them).
  const measurements = h("section", { class: "case-measurements", id: "case-measurements", "aria-label": t("case.measurements") });
  panel.prepend(measurements);
  const showMeasurements = (shape) => measurements.replaceChildren(...measurementsOf(shape));
  viewer.onShape = showMeasurements;
  if (viewer.shape) showMeasurements(viewer.shape);
  panel.append(h("details", { class: "case-more", id: "case-details" },
    h("summary", { text: t("case.details") }), details));
  // Keyboard-first: the first unanswered field (or the main button) has the focus.
  if (form.ready) form.focusFirst();
}

/** The measurements table of a case's shape (nothing when it has none). */
function measurementsOf(shape) {
  const rows = measurementRows(shape && shape.measurements, shape && shape.prior_measurements);
  if (!rows.length) return [];
  const eyes = hasBothEyesColumn(rows) ? EYES : EYES.slice(0, 2);
  const digits = (value, count) => new Intl.NumberFormat(locale(), { minimumFractionDigits: count, maximumFractionDigits: count }).format(value);
  const list = table("measurements", [t("case.measure"), ...eyes.map(eyeName)]);
  list.querySelector("tbody").append(...rows.map((row) => {
    const unit = unitText(row.unit);
    const name = row.label ? t(row.label) : row.measure;
    return h("tr", { "data-measure": `${row.measure}_${row.unit}` },
      h("th", { scope: "row", text: unit ? `${name} (${unit})` : name }),
      ...eyes.map((eye) => {
        const cell = row.cells[eye] || {};
        const td = h("td", { class: "num", "data-eye": eye, text: displayMeasurement(row, cell.now, digits) });
        if (cell.prior !== undefined) {
          td.append(h("span", {
            class: "prior muted", title: t("case.measure.prior_title"),
            text: t("case.measure.prior", { value: displayMeasurement(row, cell.prior, digits) }),
          }));
        }
        return td;
      }));
  }));
  return [h("h2", { text: t("case.measurements") }), list];
}

function detailsOf(item) {
  const details = h("div", { class: "case-details", "aria-label": t("case.details") },
    dl([
      [t("col.study"), item.study],
      [t("col.subject"), pseudonymText(item.subject)],
      [t("col.visit"), pseudonymText(item.visit)],
      [t("case.exam_count"), formatNumber(item.exam_count)],
      [t("case.access"), t(item.access === "view" ? "case.access_view" : "case.access_metadata")],
    ]),
    h("h2", { text: t("case.exams") }),
    examTable(item.exams || []),
  );
  if (Array.isArray(item.assignments)) {
    details.append(h("h2", { text: t("case.assignments") }), assignmentTable(item.assignments));
  }
  return details;
}

function examTable(exams) {
  if (!exams.length) return h("p", { class: "muted", text: t("case.no_exams") });
  const list = table("exams", [t("case.exam_id"), t("case.kind"), t("case.eye"), t("case.frames"), t("case.size"), t("case.spacing")]);
  list.querySelector("tbody").append(...exams.map((exam) => h("tr", {},
    h("td", { text: exam.id }),
    h("td", { text: kindName(exam.kind) }),
    h("td", { text: exam.eye ? eyeName(exam.eye) : "—" }),
    h("td", { class: "num", text: exam.frames ? formatNumber(exam.frames) : "—" }),
    h("td", { class: "num", text: exam.width && exam.height ? `${formatNumber(exam.width)} × ${formatNumber(exam.height)}` : "—" }),
    h("td", { class: "num", text: exam.pixel_spacing_um ? t("case.spacing_value", { value: formatNumber(exam.pixel_spacing_um, 2) }) : "—" }))));
  return h("div", { class: "table-wrap" }, list);
}

function assignmentTable(assignments) {
  if (!assignments.length) return h("p", { class: "muted", text: t("case.no_assignments") });
  const list = table("assignments", [t("col.user"), t("col.role"), t("col.status"), t("col.due")]);
  list.querySelector("tbody").append(...assignments.map((a) => h("tr", {},
    h("td", { text: a.username }),
    h("td", { text: roleName(a.role) }),
    h("td", {}, h("span", { class: `badge status-${a.status}`, text: statusName(a.status) })),
    h("td", { text: a.due_at ? formatDateTime(a.due_at) : "—" }))));
  return h("div", { class: "table-wrap" }, list);
}
