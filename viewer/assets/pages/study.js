// `/studies/{code}`: the study dashboard for its coordinators and for auditors.
// - progress (`GET /api/studies/{code}/progress`): cases by stage, assignments due / in progress /
//   done / overdue, throughput and median time per case per grader (usernames from `names`);
// - agreement (`GET /api/studies/{code}/agreement`): kappa and quadratic-weighted kappa with
//   95 % intervals per grader pair and field, as a table and an SVG chart (study-chart.js);
// - coordinators only: batches (`GET/POST …/batches`), exports (`…/export`), and the grading
//   form's version with a preset picker (`GET/PUT …/form`).
// Auditors see progress and agreement; anyone else is told the page is not theirs.

import { api } from "../api.js";
import { busy, dl, field, h, statusLine, table } from "../dom.js";
import { errorText } from "../errors.js";
import { currentLanguage, examsSummary, formatDateTime, formatDuration, formatNumber, kindName, pseudonymText, roleName, statusName, t } from "../i18n.js";
import { navigate, renderToken } from "../router.js";
import { hasRole } from "../session.js";
import { batched, examKinds, pickable } from "./batch-picking.js";
import { holders, openAssignments, targets } from "./reassign.js";
import { kappaChart } from "./study-chart.js";
import { text as localized } from "./grading-rules.js";

export const title = "study.title";

/** The CSV tables of the export (the server's names). */
const TABLES = ["grades", "versions", "adjudications", "agreement", "throughput", "dictionary"];

/** Whether `user` coordinates study `code` (a grant for it, or for every study). */
export function coordinates(user, code) {
  return Boolean(user && user.roles.some((g) => g.role === "coordinator" && (g.study === code || g.study === null)));
}

export async function render(view, [code], user) {
  const isCurrent = renderToken();
  const coordinator = coordinates(user, code);
  const auditor = hasRole(user, "auditor");
  const heading = h("h1", { text: t("study.heading", { code }) });
  const status = statusLine();
  view.append(heading, status);
  if (!coordinator && !auditor) {
    status.show("error", t("study.forbidden"));
    return;
  }
  document.title = `${t("study.heading", { code })} · readroom`;
  status.show("info", t("loading"));

  const studies = await api("/api/studies").catch(() => []);
  if (!isCurrent()) return;
  const study = studies.find((s) => s.code === code);
  if (study && study.title) heading.after(h("p", { class: "note", text: study.title }));
  const reachable = studies.filter((s) => coordinates(user, s.code) || auditor);
  if (reachable.length > 1) view.insertBefore(switcher(reachable, code), status);
  status.clear();

  const referralCard = h("section", { id: "study-referrals", class: "card", "aria-labelledby": "study-referrals-h" });
  const progressCard = h("section", { id: "study-progress", class: "card", "aria-labelledby": "study-progress-h" });
  const agreementCard = h("section", { id: "study-agreement", class: "card", "aria-labelledby": "study-agreement-h" });
  view.append(referralCard, progressCard, agreementCard);
  const sections = [loadReferrals(referralCard, code), loadProgress(progressCard, code), loadAgreement(agreementCard, code)];
  if (coordinator) {
    const batches = h("section", { id: "study-batches", class: "card", "aria-labelledby": "study-batches-h" });
    const exports = h("section", { id: "study-export", class: "card", "aria-labelledby": "study-export-h" });
    const form = h("section", { id: "study-form", class: "card", "aria-labelledby": "study-form-h" });
    const reassignCard = h("section", { id: "study-reassign", class: "card", "aria-labelledby": "study-reassign-h" });
    view.append(h("div", { class: "cards" }, batches, h("div", {}, exports, form)), reassignCard);
    // The batch case picker and the reassignment list share one fetch of the cases per load.
    const reload = () => {
      const cases = casesOnce(code);
      return Promise.all([loadProgress(progressCard, code), loadBatches(batches, code, reload, cases), loadReassign(reassignCard, code, reload, cases)]);
    };
    const cases = casesOnce(code);
    sections.push(loadBatches(batches, code, reload, cases), Promise.resolve(exportSection(exports, code)), loadForm(form, code),
      loadReassign(reassignCard, code, reload, cases));
  }
  await Promise.all(sections);
}

function switcher(studies, code) {
  const select = h("select", { id: "study-switch" }, studies.map((s) => h("option", { value: s.code, text: s.title ? `${s.code} · ${s.title}` : s.code, selected: s.code === code })));
  select.addEventListener("change", () => navigate(`/studies/${encodeURIComponent(select.value)}`));
  return h("p", { class: "inline study-switch" }, h("label", { for: "study-switch", text: t("study.switch") }), select);
}

/** Fills `card` with the section heading and the result of `load`, or its error. */
async function section(card, headingKey, id, load) {
  card.setAttribute("aria-busy", "true");
  try {
    const body = await load();
    card.replaceChildren(h("h2", { id, text: t(headingKey) }), ...[body].flat().filter(Boolean));
  } catch (err) {
    if (err.redirected) return;
    const message = err.status === 403 || err.status === 404 ? t("study.forbidden_section") : err.status === 409 ? t("study.no_form") : errorText(err);
    card.replaceChildren(h("h2", { id, text: t(headingKey) }), h("p", { class: "status", dataset: { kind: "error" }, text: message }));
  } finally {
    card.removeAttribute("aria-busy");
  }
}

// ---- urgent referrals -----------------------------------------------------------------------

/** Grades that ask for an urgent referral, first on the page: what the coordinator acts on. */
function loadReferrals(card, code) {
  return section(card, "study.referrals.title", "study-referrals-h", async () => {
    const answer = await api(`/api/studies/${encodeURIComponent(code)}/referrals`);
    const names = answer.names || {};
    if (!answer.referrals.length) return h("p", { class: "muted", id: "study-referrals-none", text: t("study.referrals.none") });
    const list = table("referrals", [t("col.case"), t("study.referrals.by"), t("study.referrals.at"), t("study.referrals.comment")]);
    list.id = "study-referral-list";
    list.querySelector("tbody").append(...answer.referrals.map((r) => h("tr", { dataset: { caseId: r.case_id } },
      h("td", { text: r.label }),
      h("td", { text: `${names[r.by] || r.by} (${roleName(r.role)})` }),
      h("td", { text: r.at ? formatDateTime(r.at) : "—" }),
      h("td", { text: r.comment || "" }))));
    return [h("p", { class: "status", dataset: { kind: "warn" }, text: t("study.referrals.count", { count: answer.referrals.length }) }), h("div", { class: "table-wrap" }, list)];
  });
}

// ---- progress -------------------------------------------------------------------------------

function loadProgress(card, code) {
  return section(card, "study.progress.title", "study-progress-h", async () => {
    const p = await api(`/api/studies/${encodeURIComponent(code)}/progress`);
    const names = p.names || {};
    const stages = ["unassigned", "grading", "graded", "awaiting_adjudication", "adjudicated", "complete"];
    const casesDl = h("dl", { class: "stages", id: "study-cases" },
      h("div", { dataset: { stage: "total" } }, h("dt", { text: t("study.cases.total") }), h("dd", { text: formatNumber(p.cases.total) })),
      stages.map((stage) => h("div", { dataset: { stage } }, h("dt", { text: t(`study.cases.${stage}`) }), h("dd", { text: formatNumber(p.cases[stage] || 0) }))));

    const counts = table("counts", [t("study.assignments.kind"), t("study.assignments.total"), t("study.assignments.due"), t("study.assignments.in_progress"), t("study.assignments.done"), t("study.assignments.overdue")]);
    counts.id = "study-assignments";
    counts.querySelector("tbody").append(...[["grading", p.grading], ["repeats", p.repeats], ["adjudication", p.adjudication]].map(([kind, c]) => h("tr", { dataset: { kind } },
      h("th", { scope: "row", text: t(`study.assignments.${kind}`) }),
      ...["total", "due", "in_progress", "done", "overdue"].map((key) => h("td", { class: `num${key === "overdue" && c[key] ? " overdue" : ""}`, text: formatNumber(c[key] || 0) })))));

    const summary = dl([
      [t("study.grades_submitted"), formatNumber(p.grades_submitted)],
      [t("study.amendments"), formatNumber(p.amendments)],
      [t("study.adjudications"), t("study.adjudications_value", { open: p.adjudications.open, resolved: p.adjudications.resolved })],
      [t("study.median_time"), p.median_ms === null || p.median_ms === undefined ? "—" : formatDuration(p.median_ms)],
      [t("study.generated_at"), formatDateTime(p.generated_at)],
    ]);

    const graders = table("throughput", [t("study.grader"), t("study.assignments.total"), t("study.assignments.done"), t("study.assignments.in_progress"), t("study.assignments.due"), t("study.assignments.overdue"), t("study.graded"), t("study.amendments"), t("study.median_time"), t("study.mean_time"), t("study.last_submitted")]);
    graders.id = "study-throughput";
    graders.querySelector("tbody").append(...p.graders.map((g) => h("tr", { dataset: { grader: names[g.grader_id] || g.grader_id } },
      h("th", { scope: "row", text: names[g.grader_id] || t("study.unknown_user") }),
      ...["total", "done", "in_progress", "due", "overdue"].map((key) => h("td", { class: "num", text: formatNumber(g.assignments[key] || 0) })),
      h("td", { class: "num", text: formatNumber(g.graded) }),
      h("td", { class: "num", text: formatNumber(g.amendments) }),
      h("td", { class: "num", text: g.median_ms === null || g.median_ms === undefined ? "—" : formatDuration(g.median_ms) }),
      h("td", { class: "num", text: g.mean_ms === null || g.mean_ms === undefined ? "—" : formatDuration(g.mean_ms) }),
      h("td", { class: "when", text: g.last_submitted_at ? formatDateTime(g.last_submitted_at) : "—" }))));

    const parts = [
      h("h3", { text: t("study.cases.title") }), casesDl,
      h("h3", { text: t("study.assignments.title") }), h("div", { class: "table-wrap" }, counts), summary,
      h("h3", { text: t("study.throughput") }),
      p.graders.length ? h("div", { class: "table-wrap" }, graders) : h("p", { class: "muted", text: t("study.no_graders") }),
    ];
    if (p.adjudicators && p.adjudicators.length) {
      const adj = table("adjudicators", [t("study.adjudicator"), t("study.assignments.total"), t("study.assignments.done"), t("study.resolved"), t("study.median_turnaround")]);
      adj.querySelector("tbody").append(...p.adjudicators.map((a) => h("tr", {},
        h("th", { scope: "row", text: names[a.adjudicator_id] || t("study.unknown_user") }),
        h("td", { class: "num", text: formatNumber(a.assignments.total) }),
        h("td", { class: "num", text: formatNumber(a.assignments.done) }),
        h("td", { class: "num", text: formatNumber(a.resolved) }),
        h("td", { class: "num", text: a.median_turnaround_ms === null || a.median_turnaround_ms === undefined ? "—" : formatDuration(a.median_turnaround_ms) }))));
      parts.push(h("h3", { text: t("study.adjudicators") }), h("div", { class: "table-wrap" }, adj));
    }
    return parts;
  });
}

// ---- agreement ------------------------------------------------------------------------------

/** A kappa (or bound) to two decimals, never "-0". */
function kappaNumber(x) {
  return formatNumber((Math.round(x * 100) / 100) || 0, 2);
}

/**
 * "0.62 (0.41 – 0.83)" for a kappa result; "—" when undefined (the server leaves kappa out below
 * its minimum n, and when chance agreement is already perfect), with n alongside in the table.
 */
function kappaText(k) {
  if (!k) return "—";
  const value = kappaNumber(k.kappa);
  return k.ci95 ? `${value} (${kappaNumber(k.ci95[0])} – ${kappaNumber(k.ci95[1])})` : value;
}

/** Field labels of the study's form by key, in the reader's language (empty if unavailable). */
async function fieldLabels(code) {
  try {
    const form = await api(`/api/studies/${encodeURIComponent(code)}/form`);
    const lang = currentLanguage();
    return new Map(((form.definition && form.definition.fields) || []).map((f) => [f.key, localized(f.label, lang)]));
  } catch {
    return new Map();
  }
}

let labels = new Map();

function itemLabel(row) {
  const name = labels.get(row.field) || row.field;
  return row.eye ? `${name} (${row.eye})` : name;
}

/** The n cell: n, and why kappa is left out when it is. */
function nCell(row) {
  const undefinedKappa = !row.kappa && row.n > 0;
  return h("td", { class: "num", text: formatNumber(row.n),
    title: undefinedKappa ? t("study.agreement.kappa_undefined", { min: 10 }) : null });
}

function loadAgreement(card, code) {
  return section(card, "study.agreement.title", "study-agreement-h", async () => {
    const a = await api(`/api/studies/${encodeURIComponent(code)}/agreement`);
    labels = await fieldLabels(code);
    const names = a.names || {};
    const who = (id) => names[id] || t("study.unknown_user");
    const intro = h("p", { class: "note", text: t("study.agreement.intro", { form: a.form, version: a.form_version, double: a.cases_double_graded, repeated: a.cases_repeated }) });
    if (!a.pairs.length) return [intro, h("p", { class: "muted", id: "study-agreement-empty", text: t("study.agreement.none") })];

    const pairs = table("agreement", [t("study.agreement.pair"), t("study.agreement.field"), "n", t("study.agreement.percent"), t("study.agreement.kappa_ci"), t("study.agreement.weighted_ci")]);
    pairs.id = "study-kappa";
    pairs.querySelector("tbody").append(...a.pairs.map((row) => h("tr", { dataset: { column: row.column, a: who(row.grader_a), b: who(row.grader_b) } },
      h("td", { text: `${who(row.grader_a)} – ${who(row.grader_b)}` }),
      h("td", { text: itemLabel(row) }),
      nCell(row),
      h("td", { class: "num", text: row.percent_agreement === null || row.percent_agreement === undefined ? "—" : `${formatNumber(row.percent_agreement, 1)} %` }),
      h("td", { class: "num kappa", text: kappaText(row.kappa) }),
      h("td", { class: "num kappa", text: kappaText(row.quadratic_kappa) }))));

    const chart = kappaChart(a.pairs.map((row) => ({
      label: `${who(row.grader_a)}–${who(row.grader_b)} · ${itemLabel(row)}`,
      kappa: row.kappa,
      weighted: row.quadratic_kappa,
    })), t("study.agreement.chart"));
    const parts = [intro, h("div", { class: "table-wrap" }, pairs),
      chart ? h("figure", { class: "chart", id: "study-kappa-chart" }, chart, h("figcaption", { class: "muted", text: t("study.agreement.chart_caption") }))
        : h("p", { class: "muted", text: t("study.agreement.undefined") })];

    if (a.intra && a.intra.length) {
      const intra = table("agreement intra", [t("study.grader"), t("study.agreement.field"), "n", t("study.agreement.percent"), t("study.agreement.kappa_ci"), t("study.agreement.weighted_ci")]);
      intra.querySelector("tbody").append(...a.intra.map((row) => h("tr", {},
        h("td", { text: who(row.grader) }),
        h("td", { text: itemLabel(row) }),
        nCell(row),
        h("td", { class: "num", text: row.percent_agreement === null || row.percent_agreement === undefined ? "—" : `${formatNumber(row.percent_agreement, 1)} %` }),
        h("td", { class: "num kappa", text: kappaText(row.kappa) }),
        h("td", { class: "num kappa", text: kappaText(row.quadratic_kappa) }))));
      parts.push(h("h3", { text: t("study.agreement.intra") }), h("div", { class: "table-wrap" }, intra));
    }
    if (a.ground_truth && a.ground_truth.length) parts.push(...truthTable(a.ground_truth, who));
    return parts;
  });
}

/**
 * Agreement of each grader (and of the final grades) with the data's ground truth: percent and
 * kappa for categories, referable-DR sensitivity/specificity, mean error and bias for numbers.
 */
function truthTable(rows, who) {
  const tableEl = table("agreement truth", [t("study.grader"), t("study.agreement.field"), "n", t("study.agreement.percent"), t("study.agreement.kappa_ci"), t("study.agreement.weighted_ci"), t("study.truth.referable"), t("study.truth.error")]);
  tableEl.id = "study-truth";
  const pct = (v) => (v === null || v === undefined ? "—" : `${formatNumber(v, 1)} %`);
  const frac = (v) => (v === null || v === undefined ? "—" : `${formatNumber(100 * v, 0)} %`);
  tableEl.querySelector("tbody").append(...rows.map((row) => h("tr", { dataset: { column: row.column, grader: row.grader } },
    h("td", { text: row.grader === "final" ? t("study.truth.final") : who(row.grader) }),
    h("td", { text: itemLabel(row) }),
    nCell(row),
    h("td", { class: "num", text: pct(row.percent_agreement) }),
    h("td", { class: "num kappa", text: kappaText(row.kappa) }),
    h("td", { class: "num kappa", text: kappaText(row.quadratic_kappa) }),
    h("td", { class: "num", text: row.referable ? `${frac(row.referable.sensitivity)} / ${frac(row.referable.specificity)}` : "—" }),
    h("td", { class: "num", text: row.mean_abs_error === null || row.mean_abs_error === undefined ? "—"
      : `${formatNumber(row.mean_abs_error, 3)} (${row.mean_difference >= 0 ? "+" : ""}${formatNumber(row.mean_difference, 3)})` }))));
  return [h("h3", { text: t("study.truth.title") }), h("p", { class: "note", text: t("study.truth.intro") }), h("div", { class: "table-wrap" }, tableEl)];
}

// ---- batches (coordinators) -----------------------------------------------------------------

/** `GET /api/studies/{code}/cases`, fetched on the first call and shared by the later ones. */
function casesOnce(code) {
  let pending = null;
  return () => {
    pending ||= api(`/api/studies/${encodeURIComponent(code)}/cases`).catch((err) => {
      pending = null;
      throw err;
    });
    return pending;
  };
}

function loadBatches(card, code, reload, cases) {
  return section(card, "study.batches.title", "study-batches-h", async () => {
    const batches = await api(`/api/studies/${encodeURIComponent(code)}/batches`);
    const parts = [];
    if (batches.length) {
      const list = table("batches", [t("study.batches.name"), t("study.batches.cases"), t("study.batches.per_case"), t("study.batches.repeats"), t("study.batches.done"), t("col.due")]);
      list.id = "study-batch-list";
      list.querySelector("tbody").append(...batches.map((b) => h("tr", { dataset: { batch: b.id } },
        h("th", { scope: "row", text: b.name }),
        h("td", { class: "num", text: formatNumber(b.cases) }),
        h("td", { class: "num", text: formatNumber(b.per_case) }),
        h("td", { class: "num", text: `${formatNumber(b.repeat_fraction * 100)} %` }),
        h("td", { class: "num", text: t("study.batches.done_value", { done: b.grading.done, total: b.grading.total }) }),
        h("td", { class: "when", text: b.due_at ? formatDateTime(b.due_at) : "—" }))));
      parts.push(h("div", { class: "table-wrap" }, list));
    } else {
      parts.push(h("p", { class: "muted", text: t("study.batches.none") }));
    }
    parts.push(batchForm(code, reload, cases));
    return parts;
  });
}

// ---- reassignment ----------------------------------------------------------------------------

/**
 * Moving unfinished assignments away from a grader (on leave, overloaded): pick whose, tick the
 * cases (all by default), pick to whom (or the least loaded grader not on the case), move. Each
 * is one `POST …/assignments/{id}/reassign`, audited by the server; what could not be moved is
 * listed with the reason.
 */
function loadReassign(card, code, reload, casesOf) {
  return section(card, "study.reassign.title", "study-reassign-h", async () => {
    const cases = await casesOf();
    const rows = openAssignments(cases);
    if (!rows.length) return h("p", { class: "muted", id: "study-reassign-none", text: t("study.reassign.none") });
    const status = statusLine();
    const held = holders(rows);
    const from = h("select", { id: "reassign-from" },
      held.map(({ key, username, role, count }) => h("option", { value: key, text: t("study.reassign.holder", { user: username, role: roleName(role), count }) })));
    const to = h("select", { id: "reassign-to" });
    const list = h("tbody");
    const fill = () => {
      const holder = held.find((x) => x.key === from.value) || held[0];
      const mine = rows.filter((row) => row.username === holder.username && row.role === holder.role);
      to.replaceChildren(h("option", { value: "", text: t("study.reassign.auto") }),
        ...targets(cases, holder.username, holder.role).map((name) => h("option", { value: name, text: name })));
      list.replaceChildren(...mine.map((row) => h("tr", { dataset: { assignment: row.id } },
        h("td", {}, h("input", { type: "checkbox", name: "reassign-pick", value: row.id, checked: true, "aria-label": row.label })),
        h("th", { scope: "row", text: row.label }),
        h("td", { text: roleName(row.role) }),
        h("td", { text: statusName(row.status) }),
        h("td", { class: "when", text: row.due_at ? formatDateTime(row.due_at) : "—" }))));
    };
    from.addEventListener("change", fill);
    fill();
    const listTable = table("reassign-list", ["", t("col.case"), t("col.role"), t("col.status"), t("col.due")]);
    listTable.id = "reassign-list";
    listTable.querySelector("tbody").replaceWith(list);
    const move = h("button", { type: "submit", class: "primary", id: "reassign-move", text: t("study.reassign.move") });
    const form = h("form", { class: "form", id: "study-reassign-form", novalidate: true },
      h("p", { class: "note", text: t("study.reassign.note") }),
      h("div", { class: "grid" },
        h("div", { class: "field" }, h("label", { for: "reassign-from", text: t("study.reassign.from") }), from),
        h("div", { class: "field" }, h("label", { for: "reassign-to", text: t("study.reassign.to") }), to)),
      h("div", { class: "table-wrap" }, listTable),
      move, status);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const ids = [...list.querySelectorAll("input[name=reassign-pick]:checked")].map((box) => box.value);
      if (!ids.length) {
        status.show("error", t("study.reassign.pick_none"));
        return;
      }
      const body = to.value ? { username: to.value } : {};
      const failed = [];
      await busy(form, async () => {
        for (const id of ids) {
          try {
            await api(`/api/studies/${encodeURIComponent(code)}/assignments/${encodeURIComponent(id)}/reassign`, { method: "POST", body });
          } catch (err) {
            if (err.redirected) return;
            const row = rows.find((r) => r.id === id);
            failed.push(`${row ? row.label : id}: ${errorText(err)}`);
          }
        }
      });
      await reload();
      const again = document.querySelector("#study-reassign-form .status") || status;
      again.show(failed.length ? "error" : "ok", [
        t("study.reassign.moved", { moved: ids.length - failed.length, total: ids.length }),
        ...failed].join(" "));
    });
    return form;
  });
}

/** The end of a `YYYY-MM-DD` day in the browser's time zone, as RFC 3339. */
function endOfDay(day) {
  const [y, m, d] = day.split("-").map(Number);
  const date = new Date(y, m - 1, d, 23, 59, 59);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/**
 * Which cases a new batch takes: every case not yet in a batch, or the cases the coordinator
 * ticks in a list filtered by label / subject / visit, exam kind and "not yet in a batch".
 * `{ element, picked() }`: `picked()` is null for "every case not yet in a batch", else the ids.
 */
function casePicker(casesOf) {
  const scope = (value, label) => h("label", { class: "check" },
    h("input", { type: "radio", name: "batch-scope", value, id: `batch-scope-${value}`, checked: value === "unbatched" }), ` ${label}`);
  const text = h("input", { type: "search", id: "batch-case-filter", autocomplete: "off", placeholder: t("study.batches.pick_filter") });
  const kind = h("select", { id: "batch-case-kind", "aria-label": t("study.batches.pick_kind") }, h("option", { value: "", text: t("study.batches.pick_any_kind") }));
  const unbatchedOnly = h("input", { type: "checkbox", id: "batch-case-unbatched", checked: true });
  const list = h("ul", { class: "pick-list", id: "batch-case-list", "aria-label": t("study.batches.pick_list") });
  const count = h("p", { class: "note", id: "batch-case-count", "aria-live": "polite" });
  const pane = h("div", { class: "pick-pane", hidden: true },
    h("div", { class: "pick-filters" }, text, kind,
      h("label", { class: "check" }, unbatchedOnly, ` ${t("study.batches.pick_unbatched")}`)),
    list, count);
  const chosen = new Set();
  let cases = null;
  const render = () => {
    const shown = pickable(cases || [], { text: text.value, kind: kind.value, unbatchedOnly: unbatchedOnly.checked });
    list.replaceChildren(...shown.map((item) => h("li", {},
      h("label", { class: "check" },
        h("input", { type: "checkbox", name: "batch-case", value: item.case_id, checked: chosen.has(item.case_id) }),
        ` ${item.label}`,
        h("span", { class: "muted", text: ` · ${pseudonymText(item.subject)} · ${pseudonymText(item.visit)} · ${examsSummary(item.exams)}${batched(item) ? ` · ${t("study.batches.pick_in_batch")}` : ""}` })))));
    count.textContent = t("study.batches.pick_count", { picked: chosen.size, shown: shown.length });
  };
  list.addEventListener("change", (event) => {
    const box = event.target;
    if (box.name !== "batch-case") return;
    if (box.checked) chosen.add(box.value);
    else chosen.delete(box.value);
    render();
  });
  for (const input of [text, kind, unbatchedOnly]) input.addEventListener("input", render);
  const element = h("fieldset", { class: "batch-scope", id: "batch-scope" },
    h("legend", { text: t("study.batches.scope") }),
    scope("unbatched", t("study.batches.scope_unbatched")),
    scope("picked", t("study.batches.scope_picked")),
    pane);
  element.addEventListener("change", async (event) => {
    if (event.target.name !== "batch-scope") return;
    pane.hidden = event.target.value !== "picked";
    if (pane.hidden || cases) return;
    count.textContent = t("study.batches.pick_loading");
    try {
      cases = await casesOf();
      kind.append(...examKinds(cases).map((k) => h("option", { value: k, text: kindName(k) })));
      render();
    } catch (err) {
      cases = null;
      if (!err.redirected) count.textContent = errorText(err);
    }
  });
  const picked = () => (element.querySelector("#batch-scope-picked").checked ? [...chosen] : null);
  return { element, picked };
}

function batchForm(code, reload, cases) {
  const status = statusLine();
  const picker = casePicker(cases);
  const form = h("form", { class: "form", id: "study-new-batch", novalidate: true },
    h("h3", { text: t("study.batches.new") }),
    h("p", { class: "note", text: t("study.batches.new_note") }),
    field("batch-name", t("study.batches.name"), { required: true, maxlength: "100", autocomplete: "off" }),
    h("div", { class: "grid" },
      field("batch-per-case", t("study.batches.per_case"), { type: "number", min: "1", max: "10", step: "1", value: "2" }, t("study.batches.per_case_hint")),
      field("batch-repeat", t("study.batches.repeat_fraction"), { type: "number", min: "0", max: "0.5", step: "0.05", value: "0" }, t("study.batches.repeat_hint")),
      field("batch-due", t("study.batches.due"), { type: "date" })),
    picker.element,
    h("button", { type: "submit", class: "primary", text: t("study.batches.create") }),
    status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = form.querySelector("#batch-name").value.trim();
    const perCase = Number(form.querySelector("#batch-per-case").value || "2");
    const repeat = Number(form.querySelector("#batch-repeat").value || "0");
    const due = form.querySelector("#batch-due").value;
    if (!name) {
      status.show("error", t("study.batches.name_required"));
      form.querySelector("#batch-name").focus();
      return;
    }
    if (!Number.isInteger(perCase) || perCase < 1 || !(repeat >= 0 && repeat <= 0.5)) {
      status.show("error", t("study.batches.numbers"));
      return;
    }
    const cases = picker.picked();
    if (cases && !cases.length) {
      status.show("error", t("study.batches.pick_none"));
      return;
    }
    const body = { name, per_case: perCase, repeat_fraction: repeat };
    if (cases) body.cases = cases;
    if (due) body.due_at = endOfDay(due);
    await busy(form, async () => {
      try {
        const created = await api(`/api/studies/${encodeURIComponent(code)}/batches`, { method: "POST", body });
        // The doc says `{ batch: {...}, assignments }`; the server answers `{ id, name, cases, assignments }`.
        const batch = created.batch || created;
        await reload();
        const again = document.querySelector("#study-new-batch .status");
        (again || status).show("ok", t("study.batches.created", { name: batch.name || name, cases: batch.cases ?? "?", assignments: created.assignments }));
      } catch (err) {
        if (!err.redirected) status.show("error", errorText(err));
      }
    });
  });
  return form;
}

// ---- export and form (coordinators) ---------------------------------------------------------

function exportSection(card, code) {
  const base = `/api/studies/${encodeURIComponent(code)}/export`;
  card.replaceChildren(
    h("h2", { id: "study-export-h", text: t("study.export.title") }),
    h("p", { class: "note", text: t("study.export.note") }),
    h("ul", { class: "export-list" }, TABLES.map((table) => h("li", {},
      h("a", { class: "button-link", id: `export-csv-${table}`, href: `${base}?format=csv&table=${table}`, download: true, text: t("study.export.csv", { table: t(`study.export.table.${table}`) }) })))),
    h("p", {}, h("a", { class: "button-link", id: "export-json", href: `${base}?format=json`, download: true, text: t("study.export.json") })));
}

function loadForm(card, code) {
  return section(card, "study.form.title", "study-form-h", async () => {
    let current = null;
    let presets = [];
    try {
      current = await api(`/api/studies/${encodeURIComponent(code)}/form`);
      presets = current.presets || [];
    } catch (err) {
      if (err.status !== 404) throw err;
    }
    const lang = currentLanguage();
    const parts = [];
    if (current) {
      const def = current.definition || {};
      parts.push(dl([
        [t("study.form.name"), `${localized(def.title, lang)} (${def.code} v${def.version})`],
        [t("study.form.version"), h("span", { id: "study-form-version", text: String(current.version) })],
        [t("study.form.fields"), formatNumber((def.fields || []).length)],
        [t("study.form.set_at"), current.created_at ? formatDateTime(current.created_at) : "—"],
        [t("study.form.fingerprint"), h("code", { class: "hash mono", title: current.fingerprint, text: `${String(current.fingerprint).slice(0, 16)}…` })],
      ]));
    } else {
      parts.push(h("p", { class: "muted", text: t("study.form.none") }));
    }
    if (!presets.length) presets = ["icdr", "areds_simple", "vcdr", "gradability", "other_findings", "demo"];
    // A preset's name in the user's language; a form that is no preset keeps its code.
    const presetName = (p) => {
      const key = `study.preset.${p}`;
      const name = t(key);
      return name === key ? p : name;
    };
    const inUse = current && current.definition ? current.definition.code : null;
    const select = h("select", { id: "study-form-preset" }, presets.map((p) => h("option", { value: p, text: `${presetName(p)} (${p})`, selected: inUse === p })));
    const status = statusLine();
    const apply = h("button", { type: "submit", id: "study-form-apply", text: t("study.form.apply") });
    const form = h("form", { class: "form inline-form", id: "study-form-set" },
      h("div", { class: "field" }, h("label", { for: "study-form-preset", text: t("study.form.preset") }), select),
      apply);
    // Switching a study's form changes what every grader is asked from then on: the first
    // press says what changes, the second applies it.
    let confirming = null;
    const unconfirm = () => {
      confirming = null;
      apply.textContent = t("study.form.apply");
      status.clear();
    };
    select.addEventListener("change", unconfirm);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (current && confirming !== select.value) {
        confirming = select.value;
        status.show("warn", t("study.form.confirm", {
          from: `${presetName(inUse || "")} v${current.version}`,
          to: presetName(select.value),
        }));
        apply.textContent = t("study.form.confirm_apply", { to: presetName(select.value) });
        apply.focus();
        return;
      }
      await busy(form, async () => {
        try {
          const set = await api(`/api/studies/${encodeURIComponent(code)}/form`, { method: "PUT", body: { preset: select.value } });
          await loadForm(card, code);
          const again = card.querySelector(".status") || status;
          again.show("ok", t("study.form.applied", { version: set.version }));
        } catch (err) {
          if (!err.redirected) status.show("error", errorText(err));
        }
      });
    });
    parts.push(form, h("p", { class: "note", text: t("study.form.note") }), status);
    return parts;
  });
}
