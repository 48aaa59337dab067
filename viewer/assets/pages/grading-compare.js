// The adjudicator's comparison: the two blind grades of a case, labelled A and B (never by
// grader), side by side per field and eye, with the rows the disagreement rules flagged marked.

import { h } from "../dom.js";
import { currentLanguage, t } from "../i18n.js";
import { cellKey, cells, displayValue, hasValue, sameValue, text, valueOf } from "./grading-rules.js";

/**
 * The disagreement list of a round as a Map `key:EYE` → why, in the reader's language (the
 * server words it with the form's labels; rounds stored before that only have `rule`).
 */
export function disagreementMap(adjudication, lang = currentLanguage()) {
  const map = new Map();
  for (const d of (adjudication && adjudication.disagreements) || []) {
    const reason = d.reason && (d.reason[lang] || d.reason.en);
    map.set(cellKey(d.field, d.eye || null), reason || d.rule || d.description || "");
  }
  return map;
}

/** A table of compared rows under the column headings. */
function compareTable(rows, heads, id) {
  return h("div", { class: "table-wrap" }, h("table", { class: "compare", id },
    h("thead", {}, h("tr", {}, h("th", { scope: "col", text: t("grading.compare.field") }), heads())),
    h("tbody", {}, rows)));
}

/**
 * The comparison section for `adjudication` (`{ round, status, disagreements, grades }`): the
 * rows where A and B differ first (flagged disagreements highlighted), the rows where they agree
 * folded away below, so the form stays in view in a narrow panel.
 */
export function compareSection(form, adjudication, lang, words) {
  const grades = (adjudication.grades || []).slice(0, 2);
  const flagged = disagreementMap(adjudication, lang);
  const differing = [];
  const agreeing = [];
  for (const { field, eye } of cells(form)) {
    const values = grades.map((g) => valueOf(g.values || {}, field, eye));
    const key = cellKey(field.key, eye);
    const disagrees = flagged.has(key);
    if (!disagrees && !values.some(hasValue)) continue;
    const differs = !sameValue(values[0], values[1]);
    const row = h("tr", {
      class: disagrees ? "disagree" : differs ? "differs" : null,
      dataset: { field: field.key, eye: eye || "" },
      title: disagrees ? flagged.get(key) : null,
    },
    h("th", { scope: "row" }, text(field.label, lang), eye ? h("span", { class: "gf-eye-tag", text: eye }) : null,
      disagrees ? h("span", { class: "visually-hidden", text: ` (${t("grading.compare.disagrees")})` }) : null,
      disagrees && flagged.get(key) ? h("span", { class: "compare-reason", text: flagged.get(key) }) : null),
    values.map((value) => h("td", { text: displayValue(field, value, lang, words) })));
    (disagrees || differs ? differing : agreeing).push(row);
  }
  const heads = () => grades.map((g) => h("th", { scope: "col", text: t("grading.compare.grade", { label: g.label }) }));
  const count = flagged.size;
  return h("section", { id: "grading-compare", class: "grading-compare", "aria-labelledby": "grading-compare-heading" },
    h("h3", { id: "grading-compare-heading", text: t("grading.compare.heading", { round: adjudication.round }) }),
    h("p", { class: "note", text: adjudication.status === "open"
      ? t("grading.compare.open", { count })
      : t("grading.compare.resolved") }),
    differing.length ? compareTable(differing, heads, "grading-compare-differ") : null,
    agreeing.length ? h("details", { class: "compare-same" },
      h("summary", { text: t("grading.compare.same", { count: agreeing.length }) }),
      compareTable(agreeing, heads, "grading-compare-same")) : null);
}
