// `/`: the signed-in user's assigned cases (`GET /api/worklist`) in three groups (in progress,
// due, done) and, for adjudicators, their adjudication queue (`GET /api/adjudications`).
// Keyboard-first: the next case to work on has the focus, so Enter opens it (and Enter anywhere
// on the page that is not a link or button does the same).

import { api } from "../api.js";
import { h, statusLine, table } from "../dom.js";
import { errorText } from "../errors.js";
import { currentLanguage, examsSummary, formatDateTime, pseudonymText, roleName, t } from "../i18n.js";
import { onLeave } from "../lifecycle.js";
import { navigate, renderToken } from "../router.js";
import { hasRole } from "../session.js";
import { takeFlash } from "./grading-form.js";

export const title = "worklist.title";

/** Groups in display order: work already started first, then what is due, then what is done. */
const GROUPS = [
  { status: "in_progress", key: "worklist.group.in_progress" },
  { status: "assigned", key: "worklist.group.due" },
  { status: "done", key: "worklist.group.done" },
];

export async function render(view, _params, user) {
  const isCurrent = renderToken();
  // A coordinator of one study who grades nothing lands on that study's dashboard.
  const coordinated = [...new Set(user.roles.filter((g) => g.role === "coordinator" && g.study).map((g) => g.study))];
  if (coordinated.length === 1 && !hasRole(user, "grader") && !hasRole(user, "adjudicator")) {
    navigate(`/studies/${encodeURIComponent(coordinated[0])}`, { replace: true });
    return;
  }
  const status = statusLine();
  const flash = takeFlash();
  const flashLine = statusLine();
  view.append(
    h("h1", { text: t("worklist.title") }),
    h("p", { class: "note", text: t("worklist.note") }),
    flashLine,
    status);
  if (flash) flashLine.show("ok", flash);
  status.show("info", t("loading"));
  const adjudicates = hasRole(user, "adjudicator");
  let items;
  let queue = null;
  try {
    [items, queue] = await Promise.all([
      api("/api/worklist"),
      adjudicates ? api("/api/adjudications") : Promise.resolve(null),
    ]);
  } catch (err) {
    if (!err.redirected) status.show("error", errorText(err));
    return;
  }
  if (!isCurrent()) return;

  if (queue) view.append(queueSection(queue));

  if (!items.length) {
    const grades = hasRole(user, "grader") || adjudicates;
    status.show("info", t(grades ? "worklist.empty" : "worklist.empty_no_grading_role"));
    return;
  }
  const next = items.find((item) => item.status === "in_progress") || items.find((item) => item.status === "assigned") || null;
  const counts = Object.fromEntries(GROUPS.map((g) => [g.status, items.filter((i) => i.status === g.status).length]));
  status.show("info", t("worklist.summary", { count: items.length, open: counts.in_progress + counts.assigned, done: counts.done }));
  if (next) {
    view.append(h("p", { id: "worklist-next", class: "next-hint" },
      h("kbd", { text: "Enter" }), " ", t("worklist.enter_opens", { label: next.label })));
  }
  let nextLink = null;
  for (const group of GROUPS) {
    const rows = items.filter((item) => item.status === group.status);
    if (!rows.length) continue;
    const id = `worklist-${group.status}`;
    const list = table("worklist", [t("col.case"), t("col.study"), t("col.subject"), t("col.visit"), t("col.role"), t("col.due"), t("col.exams")]);
    list.querySelector("tbody").append(...rows.map((item) => row(item, item === next)));
    view.append(h("section", { id, class: `worklist-group group-${group.status}`, "aria-labelledby": `${id}-h` },
      h("h2", { id: `${id}-h` }, t(group.key), h("span", { class: "count", text: ` (${rows.length})` })),
      h("div", { class: "table-wrap" }, list)));
    if (next && !nextLink) nextLink = list.querySelector("tr.next a.case-link");
  }

  if (next && nextLink) {
    const href = nextLink.getAttribute("href");
    // Enter on the page (not on another link, button or field) opens the next case.
    const onKey = (event) => {
      if (event.key !== "Enter" || event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || event.shiftKey) return;
      const target = event.target instanceof Element ? event.target : null;
      if (target && target.closest("a[href], button, input, select, textarea, summary, [contenteditable]")) return;
      event.preventDefault();
      navigate(href);
    };
    document.addEventListener("keydown", onKey);
    onLeave(() => document.removeEventListener("keydown", onKey));
    nextLink.focus({ preventScroll: true });
  }
}

function row(item, isNext) {
  const href = `/cases/${encodeURIComponent(item.case_id)}`;
  const overdue = item.due_at && item.status !== "done" && Date.parse(item.due_at) < Date.now();
  const tr = h("tr", { dataset: { caseId: item.case_id, status: item.status, role: item.role }, class: `clickable${isNext ? " next" : ""}` },
    h("td", {}, h("a", { href, class: "case-link", text: item.label })),
    h("td", { text: item.study }),
    h("td", { text: pseudonymText(item.subject) }),
    h("td", { text: pseudonymText(item.visit) }),
    h("td", {}, h("span", { class: `badge role-${item.role}`, text: roleName(item.role) })),
    h("td", { class: overdue ? "overdue" : null },
      item.due_at ? formatDateTime(item.due_at) : "—",
      overdue ? h("span", { class: "badge bad overdue-badge", text: t("worklist.overdue") }) : null),
    h("td", { text: examsSummary(item.exams) }));
  // The whole row opens the case for mouse users; keyboard users tab to the label's link.
  tr.addEventListener("click", (event) => {
    if (event.target.closest("a") || (window.getSelection && String(window.getSelection()))) return;
    navigate(href);
  });
  return tr;
}

/** A disagreeing field by its form label, as "DME (OD)" (the key when no label came). */
function fieldName(text, label) {
  const [field, eye] = String(text).split(":");
  const lang = currentLanguage();
  const name = (label && label.label && (label.label[lang] || label.label.en)) || field;
  return eye ? `${name} (${eye})` : name;
}

function queueSection(queue) {
  const id = "adjudication-queue";
  const section = h("section", { id, class: "adjudication-queue", "aria-labelledby": `${id}-h` },
    h("h2", { id: `${id}-h` }, t("worklist.queue.title"), h("span", { class: "count", text: ` (${queue.filter((q) => q.status === "open").length})` })));
  if (!queue.length) {
    section.append(h("p", { class: "muted", text: t("worklist.queue.empty") }));
    return section;
  }
  const list = table("queue", [t("col.case"), t("col.study"), t("worklist.queue.round"), t("col.status"), t("worklist.queue.fields"), t("worklist.queue.opened")]);
  list.querySelector("tbody").append(...queue.map((item) => h("tr", { dataset: { caseId: item.case_id, status: item.status } },
    h("td", {}, h("a", { href: `/cases/${encodeURIComponent(item.case_id)}`, class: "case-link", text: item.label })),
    h("td", { text: item.study }),
    h("td", { class: "num", text: String(item.round) }),
    h("td", {}, h("span", { class: `badge ${item.status === "open" ? "warn" : "ok"}`, text: t(`worklist.queue.${item.status}`) })),
    h("td", { class: "fields", text: (item.fields || []).map((f, i) => fieldName(f, (item.labels || [])[i])).join(", ") || "—" }),
    h("td", { text: item.opened_at ? formatDateTime(item.opened_at) : "—" }))));
  section.append(h("div", { class: "table-wrap" }, list));
  return section;
}
