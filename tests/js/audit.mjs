// The auditor page (`/audit`) as an auditor and as a grader sees it.
//
// Parameters (READROOM_BROWSER_PARAMS):
//   base_url        "http://127.0.0.1:PORT"
//   auditor_link    one-time sign-in URL of an auditor
//   grader_link     one-time sign-in URL of a grader (not an auditor)
//   case_id         a case the grader opened
//   grader_username the grader's username
//   mode            "broken" to only open /audit as the auditor over a tampered log (needs
//                   base_url and auditor_link) and report the chain panel
//   screenshot      optional PNG path of the case history view (screenshot_user: the user
//                   activity view; screenshot_ko: the case history view in Korean)
//
// The auditor: follows the header's Audit link, pages with "Load more" (`?limit=2`), searches
// by action through the form, opens `/audit?case=<case_id>` and reads the chain status, "who
// saw this case", the anomalies and the events; downloads the CSV export; follows the grader's
// link to their activity; then reads the page in Korean. The grader opens `/audit`.
// (In mode "broken": only the chain panel the auditor sees.)
//
// Prints: RESULT {"auditor": {...}, "grader": {...}} (see the fields at the end); each holds
// the page's console errors, page errors, failed requests, HTTP errors and CSP violations.

import { readFileSync } from "node:fs";
import { newUser, params, pathOf, run, waitForPage } from "./lib/browser.mjs";

const p = params();
const required = p.mode === "broken" ? ["base_url", "auditor_link"] : ["base_url", "auditor_link", "grader_link", "case_id", "grader_username"];
for (const key of required) {
  if (!p[key]) throw new Error(`${key} is required`);
}

/** Text that looks like a message key the catalogue does not have (`audit.col.seq`, `nav.audit`). */
const RAW_KEY = /\b(?:audit\.(?!exported\b)[a-z_]+(?:\.[a-z_]+)*|nav\.audit)\b/;

/** Waits until the audit page has no request in flight (no section is `aria-busy`). */
async function settled(page) {
  await page.waitForFunction(() => {
    const main = document.querySelector("main");
    return main && main.dataset.state === "ready" && main.dataset.page === "audit"
      && !document.querySelector(".page-audit [aria-busy]");
  }, null, { timeout: 15000 });
}

async function eventRows(page) {
  return page.$$eval("table.audit-events:not(.audit-account-events) tbody tr", (rows) => rows.map((row) => ({
    seq: Number(row.dataset.seq),
    action: row.dataset.action,
    outcome: row.dataset.outcome,
    user: row.cells[2].textContent.trim(),
    target: row.cells[4].textContent.trim(),
  })));
}

/** Message keys or stringified objects ("[object …]") shown as text in the page. */
async function rawKeys(page) {
  const text = await page.textContent("main");
  return [text.match(RAW_KEY), text.match(/\[object \w+\]/)].filter(Boolean).map((found) => found[0]);
}

async function auditor(browser) {
  const { page, problems, context } = await newUser(browser, { baseURL: p.base_url });
  const out = {};
  await page.goto(p.auditor_link);
  await waitForPage(page, "worklist");
  out.nav = await page.$$eval("#nav a", (links) => links.map((link) => link.getAttribute("href")));

  // The header link opens the page.
  await page.click('#nav a[href="/audit"]');
  await waitForPage(page, "audit");
  await settled(page);
  out.nav_current = await page.getAttribute('#nav a[href="/audit"]', "aria-current");
  out.title = (await page.textContent("main h1")).trim();

  // Paging: two events a page, then "Load more".
  await page.goto("/audit?limit=2");
  await waitForPage(page, "audit");
  await settled(page);
  const firstPage = (await eventRows(page)).length;
  const total = Number(await page.getAttribute("#audit-results", "data-total"));
  await page.click("#audit-more");
  await page.waitForFunction((n) => document.querySelectorAll("table.audit-events tbody tr").length > n, firstPage, { timeout: 15000 });
  await settled(page);
  const afterMore = await eventRows(page);
  out.paging = {
    first_page: firstPage,
    after_more: afterMore.length,
    total,
    newest_first: afterMore.every((row, i) => i === 0 || row.seq < afterMore[i - 1].seq),
    focused_row: await page.evaluate(() => document.activeElement && document.activeElement.dataset
      ? Number(document.activeElement.dataset.seq) : null),
    third_seq: afterMore[2] ? afterMore[2].seq : null,
  };

  // The search form: action "case.opened"; the address carries the filter.
  await page.goto("/audit");
  await waitForPage(page, "audit");
  await settled(page);
  await page.selectOption("#audit-action", "case.opened");
  await page.click("#audit-submit");
  await page.waitForFunction(() => location.search.includes("action=case.opened"), null, { timeout: 15000 });
  await settled(page);
  const found = await eventRows(page);
  out.search = {
    url: pathOf(page),
    rows: found.length,
    actions: [...new Set(found.map((row) => row.action))],
    users: [...new Set(found.map((row) => row.user))],
    status: (await page.textContent("#audit-results .events-status")).trim(),
  };

  // A case by the label people quote (typed in lower case), not its id: the address then
  // carries the id. An unknown label is named, and nothing is searched.
  await page.goto("/audit");
  await waitForPage(page, "audit");
  await settled(page);
  await page.fill("#audit-filter-case", "c-9999");
  await page.click("#audit-submit");
  await page.waitForFunction(() => /c-9999/.test(document.getElementById("audit-search").textContent), null, { timeout: 15000 });
  out.unknown_label = { url: pathOf(page), status: (await page.textContent("#audit-search .status")).trim() };
  await page.fill("#audit-filter-case", p.case_label.toLowerCase());
  await page.click("#audit-submit");
  await page.waitForFunction(() => location.search.includes("case="), null, { timeout: 15000 });
  await settled(page);
  out.by_label = {
    url: pathOf(page),
    heading: (await page.textContent("#audit-case-heading")).trim(),
    field: await page.inputValue("#audit-filter-case"),
  };

  // The case history view.
  await page.goto(`/audit?case=${encodeURIComponent(p.case_id)}`);
  await waitForPage(page, "audit");
  await settled(page);
  const chain = await page.$eval("#audit-chain", (section) => ({
    intact: section.dataset.intact,
    verified: Number(section.dataset.verified),
    head: Number(section.dataset.head),
    verdict: section.querySelector(".chain-verdict").textContent.trim(),
    text: section.textContent,
  }));
  out.chain = chain;
  out.case_heading = (await page.textContent("#audit-case-heading")).trim();
  out.viewers = await page.$$eval("table.audit-viewers tbody tr", (rows) => rows.map((row) => {
    const cell = (name) => row.querySelector(`[data-field="${name}"]`).textContent.trim();
    return {
      username: row.dataset.username,
      opened: Number(cell("opened").replace(/\D/g, "")),
      denied: Number(cell("denied").replace(/\D/g, "")),
      viewing_time: cell("total_ms"),
    };
  }));
  out.anomalies = await page.$$eval("#audit-anomaly-list li", (items) => items.map((item) => ({
    kind: item.dataset.kind,
    seq: Number(item.dataset.seq),
    actor: item.dataset.actor,
    text: item.textContent.trim(),
    events_link: item.querySelector("a.anomaly-events") ? item.querySelector("a.anomaly-events").getAttribute("href") : null,
  })));
  out.case_events = await eventRows(page);
  out.raw_keys_en = await rawKeys(page);
  if (p.screenshot) await page.screenshot({ path: p.screenshot, fullPage: true });

  // A row's details expand to the full record.
  const details = page.locator("table.audit-events tbody tr td.event-details details").first();
  await details.locator("summary").focus();
  await page.keyboard.press("Enter");
  out.details_open = await details.evaluate((el) => el.open && el.querySelector("pre").textContent.trim().startsWith("{"));

  // The CSV export of this view.
  out.export_csv_href = await page.getAttribute("#audit-export-csv", "href");
  out.export_json_href = await page.getAttribute("#audit-export-json", "href");
  const [download] = await Promise.all([page.waitForEvent("download", { timeout: 15000 }), page.click("#audit-export-csv")]);
  out.csv_filename = download.suggestedFilename();
  out.csv = readFileSync(await download.path(), "utf8");

  // The grader's activity, in place.
  await page.click(`table.audit-viewers tr[data-username="${p.grader_username}"] a.user-link`);
  await page.waitForFunction(() => location.search.includes("user_id="), null, { timeout: 15000 });
  await page.waitForSelector("#audit-user table.audit-counts", { timeout: 15000 });
  await settled(page);
  out.user = {
    url: pathOf(page),
    heading: (await page.textContent("#audit-user-heading")).trim(),
    focused: await page.evaluate(() => document.activeElement && document.activeElement.id),
    counts: Object.fromEntries(await page.$$eval("table.audit-counts tbody tr", (rows) =>
      rows.map((row) => [row.dataset.action, Number(row.cells[1].textContent.replace(/\D/g, ""))]))),
    cases: await page.$$eval("table.audit-cases tbody tr", (rows) => rows.map((row) => ({
      case_id: row.dataset.caseId,
      label: row.cells[0].textContent.trim(),
    }))),
    event_users: [...new Set((await eventRows(page)).map((row) => row.user))],
  };
  out.user.raw_keys = await rawKeys(page);
  out.user.account_events = await page.$$eval("table.audit-account-events tbody tr", (rows) => rows.map((row) => row.dataset.action));
  if (p.screenshot_user) await page.screenshot({ path: p.screenshot_user, fullPage: true });

  // Back to the case view, in Korean.
  await page.goBack();
  await waitForPage(page, "audit");
  await settled(page);
  out.back_url = pathOf(page);
  await page.selectOption("#lang", "ko");
  await page.waitForFunction(() => document.documentElement.lang === "ko", null, { timeout: 15000 });
  await waitForPage(page, "audit");
  await settled(page);
  out.title_ko = (await page.textContent("main h1")).trim();
  out.viewers_heading_ko = (await page.textContent("#audit-viewers-heading")).trim();
  out.raw_keys_ko = await rawKeys(page);
  if (p.screenshot_ko) await page.screenshot({ path: p.screenshot_ko, fullPage: true });

  await context.close();
  return { ...out, ...problems };
}

async function grader(browser) {
  const { page, problems, context } = await newUser(browser, { baseURL: p.base_url });
  await page.goto(p.grader_link);
  await waitForPage(page, "worklist");
  const nav = await page.$$eval("#nav a", (links) => links.map((link) => link.getAttribute("href")));
  await page.goto("/audit");
  await waitForPage(page, "audit");
  const status = page.locator('main .status[data-kind="error"]');
  const out = {
    nav,
    message: (await status.count()) ? (await status.first().textContent()).trim() : null,
    has_form: (await page.locator("#audit-search").count()) > 0,
    has_chain: (await page.locator("#audit-chain").count()) > 0,
    tables: await page.locator("main table").count(),
  };
  await context.close();
  return { ...out, ...problems };
}

/** `mode: "broken"`: the auditor opens `/audit` over a tampered log. */
async function broken(browser) {
  const { page, problems, context } = await newUser(browser, { baseURL: p.base_url });
  await page.goto(p.auditor_link);
  await waitForPage(page, "worklist");
  await page.goto("/audit");
  await waitForPage(page, "audit");
  await settled(page);
  const out = await page.$eval("#audit-chain", (section) => {
    const verdict = section.querySelector(".chain-verdict");
    return {
      intact: section.dataset.intact,
      verified: Number(section.dataset.verified),
      head: Number(section.dataset.head),
      verdict: verdict.textContent.trim(),
      verdict_role: verdict.getAttribute("role"),
      verdict_color: getComputedStyle(verdict).color,
    };
  });
  if (p.screenshot) await page.screenshot({ path: p.screenshot, fullPage: false });
  await context.close();
  return { ...out, ...problems };
}

run(async (browser) => {
  if (p.mode === "broken") return { auditor: await broken(browser) };
  return { auditor: await auditor(browser), grader: await grader(browser) };
});
