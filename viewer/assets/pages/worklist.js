// `/`: the signed-in user's assigned cases (`GET /api/worklist`).

import { api } from "../api.js";
import { h, statusLine, table } from "../dom.js";
import { errorText } from "../errors.js";
import { examsSummary, formatDateTime, roleName, statusName, t } from "../i18n.js";
import { navigate } from "../router.js";
import { hasRole } from "../session.js";

export const title = "worklist.title";

export async function render(view, _params, user) {
  const status = statusLine();
  view.append(
    h("h1", { text: t("worklist.title") }),
    h("p", { class: "note", text: t("worklist.note") }),
    status);
  status.show("info", t("loading"));
  let items;
  try {
    items = await api("/api/worklist");
  } catch (err) {
    if (!err.redirected) status.show("error", errorText(err));
    return;
  }
  if (!items.length) {
    const grades = hasRole(user, "grader") || hasRole(user, "adjudicator");
    status.show("info", t(grades ? "worklist.empty" : "worklist.empty_no_grading_role"));
    return;
  }
  status.show("info", t("worklist.count", { count: items.length }));
  const list = table("worklist", [
    t("col.case"), t("col.study"), t("col.subject"), t("col.visit"), t("col.role"),
    t("col.status"), t("col.due"), t("col.exams"),
  ]);
  list.querySelector("tbody").append(...items.map(row));
  view.append(h("div", { class: "table-wrap" }, list));
}

function row(item) {
  const href = `/cases/${encodeURIComponent(item.case_id)}`;
  const overdue = item.due_at && item.status !== "done" && Date.parse(item.due_at) < Date.now();
  const tr = h("tr", { dataset: { caseId: item.case_id }, class: "clickable" },
    h("td", {}, h("a", { href, class: "case-link", text: item.label })),
    h("td", { text: item.study }),
    h("td", { text: item.subject }),
    h("td", { text: item.visit }),
    h("td", { text: roleName(item.role) }),
    h("td", {}, h("span", { class: `badge status-${item.status}`, text: statusName(item.status) })),
    h("td", { class: overdue ? "overdue" : null, text: item.due_at ? formatDateTime(item.due_at) : "—" }),
    h("td", { text: examsSummary(item.exams) }));
  // The whole row opens the case for mouse users; keyboard users tab to the label's link.
  tr.addEventListener("click", (event) => {
    if (event.target.closest("a") || (window.getSelection && String(window.getSelection()))) return;
    navigate(href);
  });
  return tr;
}
