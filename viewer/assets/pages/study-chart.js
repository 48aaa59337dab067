// A horizontal bar chart of kappa per grader pair and field, drawn as SVG from the agreement
// JSON (no chart library): one row per pair and item, a bar for Cohen's kappa and a thinner one
// for the quadratic-weighted kappa, each with its 95 % interval as a whisker. Colours come from
// app.css classes (the CSP allows no inline styles).

import { formatNumber, t } from "../i18n.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 720;
const LABEL = 230;
const RIGHT = 16;
const ROW = 24;
const TOP = 22;
const BOTTOM = 26;

function el(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) if (value !== null && value !== undefined) node.setAttribute(key, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

/**
 * `rows`: `[{ label, kappa: KappaResult|null, weighted: KappaResult|null }]`. Returns the SVG
 * element (with a text alternative), or null when no row has a kappa.
 */
export function kappaChart(rows, title) {
  const drawn = rows.filter((r) => r.kappa || r.weighted);
  if (!drawn.length) return null;
  const lows = drawn.flatMap((r) => [r.kappa, r.weighted].filter(Boolean).map((k) => (k.ci95 ? k.ci95[0] : k.kappa)));
  const lo = Math.max(-1, Math.min(0, Math.floor(Math.min(...lows) * 5) / 5));
  const hi = 1;
  const height = TOP + drawn.length * ROW + BOTTOM;
  const x = (v) => LABEL + ((Math.max(lo, Math.min(hi, v)) - lo) / (hi - lo)) * (WIDTH - LABEL - RIGHT);
  const svg = el("svg", { viewBox: `0 0 ${WIDTH} ${height}`, class: "kappa-chart", role: "img", "aria-labelledby": "kappa-chart-title" });
  svg.append(el("title", { id: "kappa-chart-title" }, title));

  // Grid lines every 0.2 and the axis labels.
  for (let v = lo; v <= hi + 1e-9; v += 0.2) {
    const at = x(v);
    svg.append(el("line", { x1: at, x2: at, y1: TOP - 6, y2: height - BOTTOM + 4, class: Math.abs(v) < 1e-9 ? "axis zero" : "axis" }));
    svg.append(el("text", { x: at, y: height - 8, class: "tick", "text-anchor": "middle" }, formatNumber(Math.round(v * 10) / 10, 1)));
  }
  // Legend.
  svg.append(el("rect", { x: LABEL, y: 4, width: 10, height: 8, class: "bar kappa" }));
  svg.append(el("text", { x: LABEL + 14, y: 12, class: "legend" }, t("study.agreement.kappa")));
  svg.append(el("rect", { x: LABEL + 120, y: 6, width: 10, height: 4, class: "bar weighted" }));
  svg.append(el("text", { x: LABEL + 134, y: 12, class: "legend" }, t("study.agreement.weighted")));

  drawn.forEach((row, i) => {
    const y = TOP + i * ROW;
    const group = el("g", { class: "row" });
    // Long labels are cut to fit the margin (the row's tooltip has them whole).
    const label = row.label.length > 38 ? `${row.label.slice(0, 37)}…` : row.label;
    group.append(el("text", { x: LABEL - 8, y: y + ROW / 2 + 4, class: "label", "text-anchor": "end" }, label));
    const bar = (k, cls, top, thickness) => {
      if (!k) return;
      const zero = x(Math.max(lo, 0));
      const end = x(k.kappa);
      group.append(el("rect", { x: Math.min(zero, end), y: y + top, width: Math.max(1, Math.abs(end - zero)), height: thickness, class: `bar ${cls}` }));
      if (k.ci95) {
        const mid = y + top + thickness / 2;
        group.append(el("line", { x1: x(k.ci95[0]), x2: x(k.ci95[1]), y1: mid, y2: mid, class: "whisker" }));
        for (const v of k.ci95) group.append(el("line", { x1: x(v), x2: x(v), y1: mid - 3, y2: mid + 3, class: "whisker" }));
      }
    };
    bar(row.kappa, "kappa", 4, 9);
    bar(row.weighted, "weighted", 15, 4);
    const tip = [row.kappa ? `κ ${formatNumber(row.kappa.kappa, 2)}` : null, row.weighted ? `κw ${formatNumber(row.weighted.kappa, 2)}` : null].filter(Boolean).join(" · ");
    group.prepend(el("title", {}, `${row.label}: ${tip}`));
    svg.append(group);
  });
  return svg;
}
