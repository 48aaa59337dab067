// Building blocks of the auditor page (`pages/audit.js`): the action catalogue, formatting of
// times and durations, the events table, the chain status panel, anomaly flags, a case's
// access history and a user's activity. Plain DOM, no state.

import { dl, h } from "../dom.js";
import { formatNumber, locale, t } from "../i18n.js";

/** The audit log's action codes (`actions!` in domain/src/audit.rs), in catalogue order. */
export const ACTIONS = [
  "auth.login", "auth.login_failed", "auth.refusals_counted", "auth.logout", "auth.link_issued", "auth.password_changed",
  "auth.totp_enabled", "auth.totp_disabled", "auth.unlocked",
  "case.opened", "case.denied",
  "stream.started", "stream.ended", "stream.lossless_shown", "stream.switched_case",
  "stream.lossless_sent", "stream.lossless_withheld", "stream.prior_viewed", "stream.revoked", "stream.ticket_issued", "worker.registered", "worker.lost",
  "grade.draft_saved", "grade.submitted", "grade.amended", "adjudication.submitted",
  "assignment.created", "assignment.removed", "assignment.reassigned", "batch.created",
  "study.created", "study.form_changed",
  "ingest.accepted", "ingest.refused",
  "export.downloaded", "audit.exported",
  "user.created", "user.disabled", "user.enabled", "role.granted", "role.revoked",
  "key.created", "access.denied",
];

/** Event outcomes. */
export const OUTCOMES = ["success", "denied", "failure"];

const KNOWN_ACTIONS = new Set(ACTIONS);
const OUTCOME_BADGE = { success: "ok", denied: "bad", failure: "warn" };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Detail fields shown in an event's one-line summary, in this order (at most four). */
const SUMMARY_FIELDS = [
  "access", "reason", "method", "route", "role", "format", "events", "duration_ms", "frames",
  "lossless_verified", "end_reason", "study", "source", "key",
];

/** Whether `text` is a UUID. */
export function isUuid(text) {
  return typeof text === "string" && UUID.test(text);
}

/** An action code's label (the code itself for codes this page does not know). */
export function actionLabel(code) {
  return KNOWN_ACTIONS.has(code) ? t(`audit.action.${code}`) : code;
}

/** An outcome's label. */
export function outcomeLabel(outcome) {
  return OUTCOMES.includes(outcome) ? t(`audit.outcome.${outcome}`) : outcome;
}

/** The page address of a case's history. */
export function caseHref(id) {
  return `/audit?case=${encodeURIComponent(id)}`;
}

/** The page address of a user's activity. */
export function userHref(id) {
  return `/audit?user_id=${encodeURIComponent(id)}`;
}

/** The first characters of an id, for display. */
export function shortId(id) {
  const text = String(id || "");
  return text.length > 12 ? `${text.slice(0, 8)}…` : text;
}

/** A time with seconds in the locale (audit times need the second). */
export function formatTime(iso) {
  const date = new Date(iso);
  if (!iso || Number.isNaN(date.getTime())) return String(iso ?? "—");
  return new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeStyle: "medium" }).format(date);
}

/** `<time>` for an RFC 3339 time. */
export function timeEl(iso) {
  if (!iso) return "—";
  return h("time", { datetime: iso, text: formatTime(iso) });
}

function unit(value, name, digits = 0) {
  return new Intl.NumberFormat(locale(), { style: "unit", unit: name, unitDisplay: "short", maximumFractionDigits: digits })
    .format(value);
}

/** Milliseconds as hours, minutes and seconds ("1 hr 2 min 5 sec", "1시간 2분 5초"). */
export function formatDuration(ms) {
  const value = Number(ms);
  if (!Number.isFinite(value) || value < 0) return "—";
  if (value < 59500) return unit(value / 1000, "second", value < 10000 ? 1 : 0);
  const seconds = Math.round(value / 1000);
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  const parts = [];
  if (hours) parts.push(unit(hours, "hour"));
  parts.push(unit(minutes, "minute"));
  parts.push(unit(seconds % 60, "second"));
  return parts.join(" ");
}

/** A view code `layout:exam` of a stream session, e.g. "OD | OS · fundus-od". */
function viewLabel(code) {
  const [layout, ...exam] = String(code).split(":");
  const known = { single: "viewer.layout.single", both_eyes: "viewer.layout.both_eyes", prior: "viewer.layout.prior" };
  const name = known[layout] ? t(known[layout]) : layout;
  return exam.length ? `${name} · ${exam.join(":")}` : name;
}

/** A user link (or "System" / an unknown user). */
export function actorNode(actor) {
  if (!actor || !actor.id) return h("span", { class: "muted", text: t("audit.system") });
  const name = actor.username || t("audit.unknown_user", { id: shortId(actor.id) });
  if (!isUuid(actor.id)) return h("span", { text: name });
  return h("a", { href: userHref(actor.id), class: "user-link", dataset: { userId: actor.id }, text: name });
}

/** What an event is about: a case or user link, a study, or the raw target. */
export function targetNode(target, label) {
  if (!target) return h("span", { class: "muted", text: "—" });
  const colon = target.indexOf(":");
  const kind = colon < 0 ? target : target.slice(0, colon);
  const id = colon < 0 ? "" : target.slice(colon + 1);
  if (kind === "case" && isUuid(id)) {
    return h("a", { href: caseHref(id), class: "case-link", dataset: { caseId: id },
      text: label || t("audit.target.case_id", { id: shortId(id) }) });
  }
  if (kind === "user" && isUuid(id)) {
    return h("a", { href: userHref(id), class: "user-link", dataset: { userId: id }, text: label || shortId(id) });
  }
  if (kind === "study") return h("span", { text: t("audit.target.study", { code: label || id }) });
  return h("span", { class: "mono", text: target });
}

/** The key facts of an event's details as `[label, value]` pairs. */
function summaryPairs(details) {
  if (!details || typeof details !== "object" || Array.isArray(details)) return [];
  const pairs = [];
  for (const key of SUMMARY_FIELDS) {
    const value = details[key];
    if (value === undefined || value === null || typeof value === "object") continue;
    let shown;
    if (key === "duration_ms") shown = formatDuration(value);
    else if (typeof value === "number") shown = formatNumber(value);
    else shown = String(value);
    pairs.push([t(`audit.field.${key}`), shown]);
    if (pairs.length === 4) break;
  }
  return pairs;
}

function detailsCell(event) {
  const pairs = summaryPairs(event.details);
  const summary = pairs.length ? pairs.map(([label, value]) => `${label}: ${value}`).join(" · ") : t("audit.details.show");
  return h("td", { class: "event-details" },
    h("details", {},
      h("summary", { class: pairs.length ? null : "muted", text: summary }),
      h("div", { class: "event-record" },
        h("pre", { class: "mono", text: JSON.stringify(event.details ?? {}, null, 2) }),
        h("p", { class: "event-hash" },
          h("span", { class: "muted", text: `${t("audit.details.hash")} ` }),
          h("code", { class: "mono", text: event.hash || "—" })))));
}

/** One event as a table row. */
export function eventRow(event) {
  const badge = OUTCOME_BADGE[event.outcome] || "warn";
  return h("tr", { tabindex: "-1", dataset: { seq: String(event.seq), action: event.action, outcome: event.outcome } },
    h("td", { class: "num", text: formatNumber(event.seq) }),
    h("td", { class: "when" }, timeEl(event.at)),
    h("td", {}, actorNode(event.actor)),
    h("td", {},
      h("span", { class: "action-label", text: actionLabel(event.action) }),
      h("code", { class: "action-code", text: event.action })),
    h("td", {}, targetNode(event.target, event.target_label)),
    h("td", {}, h("span", { class: `badge ${badge}`, text: outcomeLabel(event.outcome) })),
    h("td", { class: "mono client", text: event.client || "—" }),
    detailsCell(event));
}

/** An empty events table: `{ wrap, table, body }`. */
export function eventsTable(className = "audit-events") {
  const heads = [t("audit.col.seq"), t("audit.col.time"), t("col.user"), t("audit.col.action"), t("audit.col.target"),
    t("audit.col.outcome"), t("audit.col.client"), t("audit.col.details")];
  const body = h("tbody");
  const table = h("table", { class: className },
    h("thead", {}, h("tr", {}, heads.map((label) => h("th", { scope: "col", text: label })))),
    body);
  return { wrap: h("div", { class: "table-wrap" }, table), table, body };
}

/** The chain status panel's content for `GET /api/audit/status`. */
export function chainBody(status) {
  const broken = status.first_break;
  const verdict = status.intact
    ? h("p", { class: "chain-verdict ok" },
      h("span", { class: "chain-badge", text: t("audit.chain.badge_intact") }), " ",
      h("span", { text: t("audit.chain.intact") }))
    : h("div", { class: "chain-verdict bad", role: "alert" },
      h("p", {},
        h("span", { class: "chain-badge", text: t("audit.chain.badge_broken") }), " ",
        h("span", { text: t("audit.chain.broken", { seq: broken ? broken.seq : status.head_seq + 1, message: broken ? broken.message : "" }) })),
      h("p", { class: "note", text: t("audit.chain.broken_note") }));
  const checkpoint = status.last_checkpoint
    ? t("audit.chain.checkpoint_value", {
      seq: status.last_checkpoint.seq, time: formatTime(status.last_checkpoint.at), key: status.last_checkpoint.key_id,
    })
    : t("audit.chain.no_checkpoint");
  return [
    verdict,
    dl([
      [t("audit.chain.verified"), h("span", { class: "num", dataset: { field: "verified" }, text: formatNumber(status.verified_events) })],
      [t("audit.chain.head"), h("span", { class: "num", dataset: { field: "head" }, text: `#${formatNumber(status.head_seq)}` })],
      [t("audit.chain.head_hash"), h("code", { class: "mono hash", text: status.head_hash || "—" })],
      [t("audit.chain.checkpoint"), checkpoint],
      [t("audit.chain.checkpoints"), formatNumber(status.checkpoints_checked)],
      [t("audit.chain.checked_at"), timeEl(status.checked_at)],
      [t("audit.chain.key"), h("code", { class: "mono", text: status.key_id || "—" })],
    ], "meta chain-meta"),
  ];
}

/** Where an anomaly's events are: page addresses with the filters that show them. */
function anomalyLinks(anomaly) {
  const d = anomaly.details || {};
  const actor = anomaly.actor && isUuid(anomaly.actor.id) ? anomaly.actor.id : null;
  const query = new URLSearchParams();
  if (actor) query.set("user_id", actor);
  const links = [];
  if (anomaly.kind === "rapid_case_opens") {
    query.set("action", "case.opened");
    query.set("before", String((d.to_seq ?? anomaly.seq) + 1));
  } else if (anomaly.kind === "outside_assignment") {
    const caseId = typeof d.target === "string" && d.target.startsWith("case:") ? d.target.slice(5) : null;
    if (!actor && caseId) query.set("case", caseId);
    query.set("action", "case.denied");
    query.set("before", String(anomaly.seq + 1));
    if (isUuid(caseId)) links.push(h("a", { href: caseHref(caseId), class: "anomaly-case", text: t("audit.anomaly.show_case") }));
  } else if (anomaly.kind === "new_address_sign_in") {
    query.set("action", "auth.login");
    query.set("before", String(anomaly.seq + 1));
  } else if (anomaly.kind === "refusal_storm") {
    query.set("action", "auth.refusals_counted");
    query.set("before", String((d.to_seq ?? anomaly.seq) + 1));
  } else {
    query.set("before", String(anomaly.seq + 1));
  }
  links.unshift(h("a", { href: `/audit?${query}`, class: "anomaly-events", text: t("audit.anomaly.show_events") }));
  return links;
}

/**
 * One anomaly flag as a list item. `events` maps seq → the event (for times, case labels and
 * the burst's window); missing entries fall back to what the flag itself says.
 */
export function anomalyItem(anomaly, events) {
  const d = anomaly.details || {};
  const at = (seq) => events.get(seq);
  let text;
  let when = at(anomaly.seq);
  if (anomaly.kind === "rapid_case_opens") {
    const first = at(d.from_seq);
    const last = at(d.to_seq);
    const span = first && last ? Date.parse(last.at) - Date.parse(first.at) : NaN;
    text = Number.isFinite(span)
      ? t("audit.anomaly.rapid", { count: d.count, window: formatDuration(span) })
      : t("audit.anomaly.rapid_range", { count: d.count, from: d.from_seq, to: d.to_seq });
    when = first;
  } else if (anomaly.kind === "outside_assignment") {
    const target = typeof d.target === "string" ? d.target : "";
    const id = target.startsWith("case:") ? target.slice(5) : target;
    const label = (when && when.target_label) || shortId(id) || "—";
    text = t("audit.anomaly.outside", { case: label });
  } else if (anomaly.kind === "new_address_sign_in") {
    text = t("audit.anomaly.new_address", { address: d.client || "—" });
  } else if (anomaly.kind === "graded_without_viewing") {
    const target = typeof d.target === "string" ? d.target : "";
    const id = target.startsWith("case:") ? target.slice(5) : target;
    const label = (when && when.target_label) || shortId(id) || "—";
    const items = [...(d.unviewed_eyes || []), ...(d.unviewed_exams || [])].join(", ") || "—";
    text = t("audit.anomaly.unviewed", { case: label, items });
  } else if (anomaly.kind === "refusal_storm") {
    text = d.client
      ? t("audit.anomaly.storm", { count: formatNumber(d.count), address: d.client })
      : t("audit.anomaly.storm_many", { count: formatNumber(d.count) });
  } else if (anomaly.kind === "bulk_extraction") {
    const target = typeof d.target === "string" ? d.target : "";
    const id = target.startsWith("case:") ? target.slice(5) : target;
    const label = (when && when.target_label) || shortId(id) || "—";
    text = t(d.reason === "case_budget" ? "audit.anomaly.bulk_case" : "audit.anomaly.bulk_rate", { case: label });
  } else {
    text = anomaly.kind;
  }
  const kindKey = `audit.anomaly.kind.${anomaly.kind}`;
  const kindText = t(kindKey) === kindKey ? anomaly.kind : t(kindKey);
  return h("li", { class: "anomaly", dataset: { kind: anomaly.kind, seq: String(anomaly.seq), actor: (anomaly.actor && anomaly.actor.username) || "" } },
    h("span", { class: "badge warn", text: kindText }),
    h("span", { class: "anomaly-who" }, actorNode(anomaly.actor)),
    h("span", { class: "anomaly-what", text }),
    h("span", { class: "anomaly-when muted" }, when ? timeEl(when.at) : `#${formatNumber(anomaly.seq)}`),
    h("span", { class: "anomaly-links" }, anomalyLinks(anomaly)));
}

/** The seqs of the events an anomaly's description needs. */
export function anomalySeqs(anomaly) {
  const d = anomaly.details || {};
  if (anomaly.kind === "rapid_case_opens") return [d.from_seq, d.to_seq].filter(Number.isFinite);
  return Number.isFinite(anomaly.seq) ? [anomaly.seq] : [];
}

function numCell(value, field) {
  return h("td", { class: "num", dataset: { field }, text: formatNumber(value ?? 0) });
}

/** "Who saw this case": one row per user (`CaseHistory.viewers`). */
export function viewersTable(viewers) {
  if (!viewers.length) return h("p", { class: "muted", text: t("audit.case.no_viewers") });
  const heads = [t("col.user"), t("audit.col.opened"), t("audit.col.sessions"), t("audit.col.viewing_time"),
    t("audit.col.frames"), t("audit.col.lossless"), t("audit.col.views"), t("audit.col.grade_events"),
    t("audit.col.denied"), t("audit.col.first"), t("audit.col.last")];
  const body = h("tbody", {}, viewers.map((v) => h("tr", { dataset: { userId: v.user.id, username: v.user.username } },
    h("th", { scope: "row" },
      actorNode(v.user),
      v.user.display_name && v.user.display_name !== v.user.username ? h("div", { class: "muted small", text: v.user.display_name }) : null),
    numCell(v.opened, "opened"),
    numCell(v.sessions, "sessions"),
    h("td", { class: "num", dataset: { field: "total_ms", ms: String(v.total_ms ?? 0) }, text: formatDuration(v.total_ms ?? 0) }),
    numCell(v.frames, "frames"),
    numCell(v.lossless_verified, "lossless_verified"),
    h("td", { class: "views", dataset: { field: "views" } },
      v.views && v.views.length
        ? h("ul", { class: "plain" }, v.views.map((view) => h("li", { text: viewLabel(view) })))
        : h("span", { class: "muted", text: "—" })),
    numCell(v.grade_events, "grade_events"),
    h("td", { class: v.denied ? "num denied" : "num", dataset: { field: "denied" }, text: formatNumber(v.denied ?? 0) }),
    h("td", { class: "when" }, timeEl(v.first_at)),
    h("td", { class: "when" }, timeEl(v.last_at)))));
  return h("div", { class: "table-wrap" },
    h("table", { class: "audit-viewers" },
      h("thead", {}, h("tr", {}, heads.map((label) => h("th", { scope: "col", text: label })))),
      body));
}

/** A user's events by action code (`UserActivity.counts`), most frequent first. */
export function countsTable(counts) {
  const rows = Object.entries(counts || {}).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  if (!rows.length) return h("p", { class: "muted", text: t("audit.user.no_counts") });
  return h("div", { class: "table-wrap" },
    h("table", { class: "audit-counts" },
      h("thead", {}, h("tr", {},
        h("th", { scope: "col", text: t("audit.col.action") }),
        h("th", { scope: "col", text: t("audit.col.events") }))),
      h("tbody", {}, rows.map(([code, count]) => h("tr", { dataset: { action: code } },
        h("th", { scope: "row" }, h("span", { class: "action-label", text: actionLabel(code) }), h("code", { class: "action-code", text: code })),
        h("td", { class: "num", text: formatNumber(count) }))))));
}

/** The cases a user touched (`UserActivity.cases`), each linking to its history. */
export function casesTable(cases) {
  if (!cases.length) return h("p", { class: "muted", text: t("audit.user.no_cases") });
  return h("div", { class: "table-wrap" },
    h("table", { class: "audit-cases" },
      h("thead", {}, h("tr", {},
        h("th", { scope: "col", text: t("col.case") }),
        h("th", { scope: "col", text: t("audit.col.events") }),
        h("th", { scope: "col", text: t("audit.col.last") }))),
      h("tbody", {}, cases.map((c) => h("tr", { dataset: { caseId: c.case_id } },
        h("th", { scope: "row" }, targetNode(`case:${c.case_id}`, c.label)),
        h("td", { class: "num", text: formatNumber(c.events) }),
        h("td", { class: "when" }, timeEl(c.last_at)))))));
}
