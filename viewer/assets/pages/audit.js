// `/audit` (auditors): the audit chain's integrity, anomaly flags, a search of the log with
// paging and CSV/JSON export, a case's access history (`?case=<id>`: who saw it, when, for how
// long, what they did) and a user's activity (`?user_id=<id>`). The filters live in the query
// string, so a view can be bookmarked or shared; links inside the page update it in place.
// Anyone else gets the "not allowed" message (the API answers 403).

import { api } from "../api.js";
import { dl, field, h, statusLine } from "../dom.js";
import { errorText } from "../errors.js";
import { formatNumber, t } from "../i18n.js";
import { renderToken } from "../router.js";
import { hasRole } from "../session.js";
import {
  ACTIONS, OUTCOMES, actionLabel, anomalyItem, anomalySeqs, casesTable, chainBody, countsTable, eventRow,
  eventsTable, isUuid, outcomeLabel, viewersTable,
} from "./audit-views.js";

export const title = "audit.title";

/** The query parameters of the page (all optional). `user_id` opens a user's activity. */
const PARAMS = ["user", "user_id", "case", "action", "outcome", "from", "to", "before", "limit"];
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 500;
/** Most events one export holds (the server's limit). */
const EXPORT_MAX = 100000;
/** Events the server scans for anomaly flags. */
const ANOMALY_WINDOW = 50000;
/** Anomaly flags listed before "Show all". */
const ANOMALIES_SHOWN = 10;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** The page's parameters from a query string. */
function readParams(search) {
  const query = new URLSearchParams(search);
  const params = {};
  for (const key of PARAMS) {
    const value = (query.get(key) || "").trim();
    if (value) params[key] = value;
  }
  return params;
}

/** The page address for `params`. */
function pageUrl(params) {
  const query = new URLSearchParams();
  for (const key of PARAMS) if (params[key]) query.set(key, params[key]);
  const text = query.toString();
  return text ? `/audit?${text}` : "/audit";
}

/** A `YYYY-MM-DD` day as the RFC 3339 time of its local midnight (`end`: of the next day). */
function dayBound(text, end) {
  if (!DATE.test(text)) return text;
  const [year, month, day] = text.split("-").map(Number);
  const date = new Date(year, month - 1, day + (end ? 1 : 0));
  return Number.isNaN(date.getTime()) ? text : date.toISOString();
}

/** The API filters of `params` (shared by the search, its pages and the export). */
function apiFilters(params) {
  const query = new URLSearchParams();
  const user = params.user_id || params.user;
  if (user) query.set("user", user);
  if (params.case) query.set("case", params.case);
  if (params.action) query.set("action", params.action);
  if (params.outcome) query.set("outcome", params.outcome);
  if (params.from) query.set("from", dayBound(params.from, false));
  if (params.to) query.set("to", dayBound(params.to, true));
  if (params.before && /^\d+$/.test(params.before)) query.set("before", params.before);
  return query;
}

function limitOf(params) {
  const value = Number.parseInt(params.limit || "", 10);
  return Number.isFinite(value) && value > 0 ? Math.min(value, MAX_LIMIT) : DEFAULT_LIMIT;
}

export async function render(view, _params, me) {
  const current = renderToken();
  const heading = h("h1", { text: t("audit.title") });
  const pageStatus = statusLine("page-status");
  view.append(heading, pageStatus);
  let status = null;
  if (!hasRole(me, "auditor")) {
    // Not an auditor as far as this page knows: one request decides (the server may know better).
    try {
      status = await api("/api/audit/status");
    } catch (err) {
      if (err.redirected || !current()) return;
      pageStatus.show("error", err.status === 403 ? t("audit.forbidden") : errorText(err));
      return;
    }
    if (!current()) return;
  }
  await new AuditPage(view, heading, pageStatus, current).start(status);
}

class AuditPage {
  constructor(view, heading, pageStatus, current) {
    this.view = view;
    this.heading = heading;
    this.pageStatus = pageStatus;
    this.current = current;
    this.forbidden = false;
    this.generation = 0;
    this.params = {};
    this.next = null;
    this.shown = 0;
    this.total = 0;
    this.anomalies = [];
    this.build();
  }

  build() {
    // Chain status.
    this.recheck = h("button", { type: "button", id: "audit-recheck", text: t("audit.chain.recheck"), onclick: () => this.loadChain() });
    this.chainContent = h("div", { class: "chain-body", "aria-live": "polite" },
      h("p", { class: "muted", text: t("audit.chain.checking") }));
    this.chain = h("section", { class: "card audit-chain", id: "audit-chain", "aria-labelledby": "audit-chain-heading" },
      h("div", { class: "section-head" },
        h("h2", { id: "audit-chain-heading", text: t("audit.chain.heading") }),
        this.recheck),
      this.chainContent);

    // Anomalies.
    this.anomalyCount = h("span", { class: "muted anomaly-count" });
    this.anomalyStatus = statusLine();
    this.anomalyList = h("ul", { class: "anomalies", id: "audit-anomaly-list" });
    this.anomalyMore = h("button", { type: "button", class: "link-button", hidden: true, onclick: () => this.showAllAnomalies() });
    this.anomalySection = h("section", { class: "card audit-anomalies", id: "audit-anomalies", "aria-labelledby": "audit-anomalies-heading" },
      h("div", { class: "section-head" },
        h("h2", { id: "audit-anomalies-heading", text: t("audit.anomalies.heading") }),
        this.anomalyCount),
      h("p", { class: "note", text: t("audit.anomalies.scope", { count: ANOMALY_WINDOW }) }),
      this.anomalyStatus, this.anomalyList, this.anomalyMore);
    this.anomalyStatus.show("info", t("loading"));

    // Search form.
    this.formStatus = statusLine();
    const actionField = field("audit-action", t("audit.filter.action"), { tag: "select" });
    actionField.querySelector("select").append(
      h("option", { value: "", text: t("audit.filter.any_action") }),
      ...ACTIONS.map((code) => h("option", { value: code, text: `${actionLabel(code)} (${code})` })));
    const outcomeField = field("audit-outcome", t("audit.filter.outcome"), { tag: "select" });
    outcomeField.querySelector("select").append(
      h("option", { value: "", text: t("audit.filter.any_outcome") }),
      ...OUTCOMES.map((code) => h("option", { value: code, text: outcomeLabel(code) })));
    this.form = h("form", { class: "form audit-search", id: "audit-search", role: "search", novalidate: true, "aria-labelledby": "audit-search-heading" },
      h("div", { class: "grid" },
        field("audit-filter-user", t("audit.filter.user"), { autocomplete: "off", autocapitalize: "none", spellcheck: "false" }, t("audit.filter.user_hint")),
        field("audit-filter-case", t("audit.filter.case"), { class: "mono", autocomplete: "off", spellcheck: "false", maxlength: "100" }, t("audit.filter.case_hint")),
        actionField,
        outcomeField,
        field("audit-from", t("audit.filter.from"), { type: "date" }, t("audit.filter.dates_hint")),
        field("audit-to", t("audit.filter.to"), { type: "date" })),
      h("div", { class: "inline" },
        h("button", { type: "submit", class: "primary", id: "audit-submit", text: t("audit.search.submit") }),
        h("button", { type: "button", id: "audit-clear", text: t("audit.search.clear"), onclick: () => this.clearFilters() })),
      this.formStatus);
    this.form.addEventListener("submit", (event) => this.submit(event));
    this.fields = {
      user: this.form.querySelector("#audit-filter-user"),
      case: this.form.querySelector("#audit-filter-case"),
      action: this.form.querySelector("#audit-action"),
      outcome: this.form.querySelector("#audit-outcome"),
      from: this.form.querySelector("#audit-from"),
      to: this.form.querySelector("#audit-to"),
    };
    const search = h("section", { class: "card", "aria-labelledby": "audit-search-heading" },
      h("h2", { id: "audit-search-heading", text: t("audit.search.heading") }),
      this.form);

    // Case history and user activity (shown for `?case=` and `?user_id=`).
    this.caseSection = h("section", { class: "card audit-case", id: "audit-case", hidden: true, "aria-labelledby": "audit-case-heading" });
    this.userSection = h("section", { class: "card audit-user", id: "audit-user", hidden: true, "aria-labelledby": "audit-user-heading" });

    // Results.
    this.exportLinks = new Map(["csv", "json"].map((format) => [format, h("a", {
      class: "button-link", id: `audit-export-${format}`, href: "/api/audit/events/export", download: "",
      text: t(`audit.export.${format}`),
    })]));
    this.eventsHeading = h("h2", { id: "audit-events-heading", tabindex: "-1", text: t("audit.events.heading") });
    this.beforeNote = h("p", { class: "note before-note", hidden: true });
    this.eventsStatus = statusLine("events-status");
    this.events = eventsTable();
    this.events.wrap.hidden = true;
    this.more = h("button", { type: "button", id: "audit-more", hidden: true, text: t("audit.events.more"), onclick: () => this.loadMore() });
    this.results = h("section", { class: "audit-results", id: "audit-results", "aria-labelledby": "audit-events-heading" },
      h("div", { class: "section-head" },
        this.eventsHeading,
        h("div", { class: "export", role: "group", "aria-label": t("audit.export.label") }, [...this.exportLinks.values()])),
      h("p", { class: "note", text: t("audit.export.note", { count: EXPORT_MAX }) }),
      this.beforeNote, this.eventsStatus, this.events.wrap, this.more);

    this.view.append(
      h("p", { class: "note", text: t("audit.note") }),
      h("div", { class: "audit-top" }, this.chain, this.anomalySection),
      search, this.caseSection, this.userSection, this.results);
    this.view.addEventListener("click", (event) => this.follow(event));
  }

  /** First load: the chain status, the anomalies and the view the address asks for. */
  async start(status) {
    await Promise.all([
      status ? this.showChain(status) : this.loadChain(),
      this.loadAnomalies(),
      this.update(readParams(location.search)),
    ]);
  }

  /** Handles a refusal: true when the caller should stop (signed out, or not an auditor). */
  stopOn(err) {
    if (err && err.redirected) return true;
    if (err && err.status === 403 && err.code !== "csrf") {
      if (!this.forbidden) {
        this.forbidden = true;
        this.view.replaceChildren(this.heading, this.pageStatus);
        this.pageStatus.show("error", t("audit.forbidden"));
      }
      return true;
    }
    return !this.current() || this.forbidden;
  }

  // ---- Chain status

  async loadChain() {
    if (this.chain.getAttribute("aria-busy") === "true") return;
    this.chain.setAttribute("aria-busy", "true");
    this.recheck.setAttribute("aria-disabled", "true");
    try {
      const status = await api("/api/audit/status");
      if (!this.current()) return;
      this.showChain(status);
    } catch (err) {
      if (this.stopOn(err)) return;
      this.chainContent.replaceChildren(h("p", { class: "status", dataset: { kind: "error" }, text: errorText(err) }));
    } finally {
      this.chain.removeAttribute("aria-busy");
      this.recheck.removeAttribute("aria-disabled");
    }
  }

  showChain(status) {
    Object.assign(this.chain.dataset, {
      intact: String(Boolean(status.intact)),
      verified: String(status.verified_events),
      head: String(status.head_seq),
    });
    this.chainContent.replaceChildren(...chainBody(status));
  }

  // ---- Anomalies

  async loadAnomalies() {
    try {
      const list = await api("/api/audit/anomalies");
      if (!this.current()) return;
      this.anomalies = list;
      const first = list.slice(0, ANOMALIES_SHOWN);
      const events = await this.eventsAt(first);
      if (!this.current()) return;
      this.anomalyStatus.show("info", list.length ? "" : t("audit.anomalies.none"));
      this.anomalyCount.textContent = list.length ? t("audit.anomalies.count", { count: list.length }) : "";
      this.anomalyList.replaceChildren(...first.map((anomaly) => anomalyItem(anomaly, events)));
      this.anomalyMore.hidden = list.length <= first.length;
      this.anomalyMore.textContent = t("audit.anomalies.show_all", { count: list.length });
    } catch (err) {
      if (this.stopOn(err)) return;
      this.anomalyStatus.show("error", errorText(err));
    }
  }

  async showAllAnomalies() {
    const rest = this.anomalies.slice(this.anomalyList.children.length);
    if (!rest.length) return;
    let events;
    try {
      events = await this.eventsAt(rest);
    } catch (err) {
      if (!this.stopOn(err)) this.anomalyStatus.show("error", errorText(err));
      return;
    }
    if (!this.current() || this.forbidden) return;
    const items = rest.map((anomaly) => anomalyItem(anomaly, events));
    this.anomalyList.append(...items);
    this.anomalyMore.hidden = true;
    const link = items[0].querySelector("a");
    if (link) link.focus();
  }

  /** The events anomaly flags point at (seq → event), for their times and case labels. */
  async eventsAt(anomalies) {
    const seqs = [...new Set(anomalies.flatMap(anomalySeqs))];
    const found = await Promise.all(seqs.map(async (seq) => {
      try {
        const page = await api(`/api/audit/events?before=${seq + 1}&limit=1`);
        const event = page.events[0];
        return event && event.seq === seq ? event : null;
      } catch (err) {
        if (err.status === 403 || err.redirected) throw err;
        return null;
      }
    }));
    return new Map(found.filter(Boolean).map((event) => [event.seq, event]));
  }

  // ---- Navigation within the page

  /** Follows links to other audit views in place (no full page render). */
  follow(event) {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const link = event.target.closest("a[href]");
    if (!link || link.target || link.hasAttribute("download")) return;
    const url = new URL(link.href, location.href);
    if (url.origin !== location.origin || url.pathname !== "/audit") return;
    event.preventDefault();
    this.go(readParams(url.search));
  }

  /** Shows the view for `params` and records it in the address (and history). */
  go(params, { focus = "view" } = {}) {
    const url = pageUrl(params);
    if (url !== location.pathname + location.search) history.pushState(null, "", url);
    return this.update(params, { focus });
  }

  /**
   * The case id the case field names: an id as typed, or the one case a label (`C-0001`, or
   * `STUDY/C-0001`) names. Null, with the reason shown, when none or several do.
   */
  async caseIdOf(text) {
    if (isUuid(text)) return text.toLowerCase();
    let found;
    try {
      found = await api(`/api/audit/cases?${new URLSearchParams({ label: text })}`);
    } catch (err) {
      if (err.redirected) return null;
      this.formStatus.show("error", errorText(err));
      return null;
    }
    if (found.length === 1) return found[0].case_id;
    this.formStatus.show("error", found.length
      ? t("audit.filter.case_ambiguous", { label: text, studies: found.map((c) => c.study).join(", "), example: `${found[0].study}/${found[0].label}` })
      : t("audit.filter.case_not_found", { label: text }));
    this.fields.case.focus();
    return null;
  }

  async submit(event) {
    event.preventDefault();
    const value = (name) => this.fields[name].value.trim();
    let caseId = value("case");
    if (caseId) {
      caseId = await this.caseIdOf(caseId);
      if (!caseId) return;
    }
    if (value("from") && value("to") && value("from") > value("to")) {
      this.formStatus.show("error", t("audit.filter.dates_order"));
      this.fields.from.focus();
      return;
    }
    const params = {};
    const user = value("user");
    if (user && user === this.params.user_id) params.user_id = user;
    else if (user) params.user = user;
    if (caseId) params.case = caseId;
    for (const name of ["action", "outcome", "from", "to"]) if (value(name)) params[name] = value(name);
    if (this.params.limit) params.limit = this.params.limit;
    this.go(params, { focus: null });
  }

  clearFilters() {
    this.go(this.params.limit ? { limit: this.params.limit } : {}, { focus: null });
  }

  syncForm(params) {
    this.fields.user.value = params.user_id || params.user || "";
    this.fields.case.value = params.case || "";
    this.fields.action.value = ACTIONS.includes(params.action) ? params.action : "";
    this.fields.outcome.value = OUTCOMES.includes(params.outcome) ? params.outcome : "";
    this.fields.from.value = DATE.test(params.from || "") ? params.from : "";
    this.fields.to.value = DATE.test(params.to || "") ? params.to : "";
  }

  /** Brings the form, export links, case and user panels and results in line with `params`. */
  async update(params, { focus = null } = {}) {
    const mine = ++this.generation;
    const alive = () => this.current() && !this.forbidden && mine === this.generation;
    this.params = params;
    this.syncForm(params);
    this.formStatus.clear();
    document.title = `${t("audit.title")} · readroom`;
    const filters = apiFilters(params);
    for (const [format, link] of this.exportLinks) {
      link.href = `/api/audit/events/export?${new URLSearchParams([["format", format], ...filters])}`;
    }
    this.showBefore(params);

    const badCase = params.case && !isUuid(params.case);
    const badUser = params.user_id && !isUuid(params.user_id);
    if (badCase || badUser) {
      this.formStatus.show("error", badCase ? t("audit.filter.case_invalid") : t("audit.user.not_found"));
      this.caseSection.hidden = true;
      this.userSection.hidden = true;
      this.clearResults();
      return;
    }
    await Promise.all([
      this.loadResults(params, alive),
      params.case ? this.loadCase(params.case, alive) : this.hidePanel(this.caseSection),
      params.user_id ? this.loadUser(params.user_id, alive) : this.hidePanel(this.userSection),
    ]);
    if (!alive() || !focus) return;
    const panel = [this.caseSection, this.userSection].find((section) => !section.hidden);
    const target = panel ? panel.querySelector("h2") : this.eventsHeading;
    if (target) {
      target.focus({ preventScroll: true });
      target.scrollIntoView({ block: "start" });
    }
  }

  hidePanel(section) {
    section.hidden = true;
    section.replaceChildren();
    delete section.dataset.id;
  }

  showBefore(params) {
    const before = params.before && /^\d+$/.test(params.before) ? Number(params.before) : null;
    this.beforeNote.hidden = before === null;
    if (before === null) return;
    const { before: _before, ...rest } = params;
    this.beforeNote.replaceChildren(t("audit.filter.before", { seq: before }), " ",
      h("a", { href: pageUrl(rest), text: t("audit.filter.newest") }));
  }

  // ---- Results

  clearResults() {
    this.events.body.replaceChildren();
    this.events.wrap.hidden = true;
    this.more.hidden = true;
    this.eventsStatus.clear();
  }

  async loadResults(params, alive) {
    const query = apiFilters(params);
    query.set("limit", String(limitOf(params)));
    this.results.setAttribute("aria-busy", "true");
    this.more.hidden = true;
    this.eventsStatus.show("info", t("audit.events.loading"));
    try {
      const page = await api(`/api/audit/events?${query}`);
      if (!alive()) return;
      this.events.body.replaceChildren(...page.events.map(eventRow));
      this.shown = page.events.length;
      this.total = page.total;
      this.next = page.next_before;
      this.showCount();
    } catch (err) {
      if (this.stopOn(err) || !alive()) return;
      this.clearResults();
      this.eventsStatus.show("error", errorText(err));
    } finally {
      if (alive()) this.results.removeAttribute("aria-busy");
    }
  }

  showCount() {
    Object.assign(this.results.dataset, { total: String(this.total), shown: String(this.shown) });
    this.events.wrap.hidden = this.shown === 0;
    this.more.hidden = this.next === null || this.next === undefined;
    this.eventsStatus.show("info", this.total === 0 && this.shown === 0
      ? t("audit.events.none")
      : t("audit.events.count", { count: this.total, shown: this.shown }));
  }

  async loadMore() {
    if (this.more.getAttribute("aria-disabled") === "true" || this.next === null) return;
    const mine = this.generation;
    const query = apiFilters(this.params);
    query.set("before", String(this.next));
    query.set("limit", String(limitOf(this.params)));
    this.more.setAttribute("aria-disabled", "true");
    this.results.setAttribute("aria-busy", "true");
    try {
      const page = await api(`/api/audit/events?${query}`);
      if (!this.current() || mine !== this.generation) return;
      const rows = page.events.map(eventRow);
      this.events.body.append(...rows);
      this.shown += rows.length;
      this.total = page.total;
      this.next = page.next_before;
      this.showCount();
      // The button may be gone now: keyboard users continue at the first new event.
      if (rows.length) rows[0].focus();
    } catch (err) {
      if (this.stopOn(err)) return;
      this.eventsStatus.show("error", errorText(err));
    } finally {
      this.more.removeAttribute("aria-disabled");
      this.results.removeAttribute("aria-busy");
    }
  }

  // ---- Case history

  async loadCase(id, alive) {
    const section = this.caseSection;
    section.hidden = false;
    if (section.dataset.id !== id) {
      section.dataset.id = id;
      section.replaceChildren(
        h("h2", { id: "audit-case-heading", tabindex: "-1", text: t("case.title") }),
        h("p", { class: "muted", text: t("loading") }));
    }
    section.setAttribute("aria-busy", "true");
    try {
      const history = await api(`/api/audit/cases/${encodeURIComponent(id)}`);
      if (!alive()) return;
      this.renderCase(history);
    } catch (err) {
      if (this.stopOn(err) || !alive()) return;
      section.replaceChildren(
        h("h2", { id: "audit-case-heading", tabindex: "-1", text: t("audit.case.heading_unknown") }),
        h("p", { class: "status", dataset: { kind: "error" }, text: errorText(err) }));
    } finally {
      if (alive()) section.removeAttribute("aria-busy");
    }
  }

  renderCase(history) {
    const label = history.label;
    if (label) document.title = `${label} · ${t("audit.title")} · readroom`;
    // The case field shows the case as people name it (the study's code and the label, which
    // the search reads back), not the id the address carries; a field being edited is left alone.
    if (label && history.study && this.fields.case.value === history.case_id
        && document.activeElement !== this.fields.case) {
      this.fields.case.value = `${history.study}/${label}`;
    }
    this.caseSection.replaceChildren(
      h("h2", { id: "audit-case-heading", tabindex: "-1",
        text: label ? t("audit.case.heading", { label }) : t("audit.case.heading_unknown") }),
      dl([[t("audit.case.id"), h("code", { class: "mono", text: history.case_id })]]),
      h("h3", { id: "audit-viewers-heading", text: t("audit.case.viewers") }),
      viewersTable(history.viewers || []),
      h("p", { class: "note", text: t("audit.case.events_below") }));
  }

  // ---- User activity

  async loadUser(id, alive) {
    const section = this.userSection;
    section.hidden = false;
    if (section.dataset.id !== id) {
      section.dataset.id = id;
      section.replaceChildren(
        h("h2", { id: "audit-user-heading", tabindex: "-1", text: t("col.user") }),
        h("p", { class: "muted", text: t("loading") }));
    }
    section.setAttribute("aria-busy", "true");
    try {
      const activity = await api(`/api/audit/users/${encodeURIComponent(id)}`);
      if (!alive()) return;
      this.renderUser(id, activity);
    } catch (err) {
      if (this.stopOn(err) || !alive()) return;
      section.replaceChildren(
        h("h2", { id: "audit-user-heading", tabindex: "-1", text: t("col.user") }),
        h("p", { class: "status", dataset: { kind: "error" }, text: err.status === 404 ? t("audit.user.not_found") : errorText(err) }));
    } finally {
      if (alive()) section.removeAttribute("aria-busy");
    }
  }

  renderUser(id, activity) {
    const user = activity.user || { id, username: "", display_name: "" };
    const name = user.username || id;
    if (!this.params.case) document.title = `${name} · ${t("audit.title")} · readroom`;
    const about = (activity.events || []).filter((event) => event.target === `user:${id}`);
    let accountEvents = [];
    if (about.length) {
      const table = eventsTable("audit-events audit-account-events");
      table.body.append(...about.map(eventRow));
      accountEvents = [h("h3", { text: t("audit.user.account_events") }), table.wrap];
    }
    const total = Object.values(activity.counts || {}).reduce((sum, count) => sum + count, 0);
    this.userSection.replaceChildren(
      h("h2", { id: "audit-user-heading", tabindex: "-1", text: t("audit.user.heading", { username: name }) }),
      dl([
        [t("audit.user.display_name"), user.display_name || "—"],
        [t("audit.user.id"), h("code", { class: "mono", text: user.id || id })],
        [t("audit.col.events"), formatNumber(total)],
      ]),
      h("div", { class: "audit-user-grid" },
        h("div", {}, h("h3", { text: t("audit.user.counts") }), countsTable(activity.counts)),
        h("div", {}, h("h3", { text: t("audit.user.cases") }), casesTable(activity.cases || []))),
      ...accountEvents,
      h("p", { class: "note", text: t("audit.user.events_below") }));
  }
}
