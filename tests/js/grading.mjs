// The grading workflow in the real viewer, graded with the keyboard only (no clicks, no script
// setting values): two graders grade the same case with different DR grades, the adjudicator
// sees both blind grades side by side and enters the final grade, the coordinator reads the
// study dashboard and downloads the CSV exports.
//
// Parameters (READROOM_BROWSER_PARAMS):
//   base_url        "http://127.0.0.1:PORT"
//   a_link, b_link  one-time sign-in URLs of graders A and B (both assigned `case_id`)
//   adj_link        one-time sign-in URL of the study's adjudicator
//   coord_link      one-time sign-in URL of the study's coordinator
//   auditor_link    optional one-time sign-in URL of an auditor (sees progress and agreement only)
//   case_id         the case A and B share; it is A's first unfinished case in the worklist
//   case_label      its label
//   screenshot_dir  optional directory for PNG screenshots of each step
//
// Grader A: the worklist has the next case focused, Enter opens it; the focus is on the first
// field; digits and Tab answer the demo form (DR grade OD 2); the draft autosaves; Enter submits
// and the next case opens; there Enter with fields missing gets the server's 422, marked per
// field and eye; A finishes the case (OS ungradable: its dependent fields disappear and the
// reason appears) and submits it, then amends the first case (Enter on Amend, a reason). Grader B: opens the shared case, answers DR grade OD 3; a
// save that cannot reach the server keeps the values in sessionStorage and survives a reload;
// B submits. The adjudicator: the queue lists the case, Enter opens it, grades A and B are shown
// side by side with DR grade OD flagged; the final grade is entered and submitted. The
// coordinator: the dashboard's progress, agreement and the CSV downloads.
//
// Prints: RESULT {"a": {...}, "b": {...}, "adjudicator": {...}, "coordinator": {...}}; each
// holds the page's console errors, page errors, failed requests, HTTP errors and CSP violations.

import { readFileSync } from "node:fs";
import { newUser, params, pathOf, run, waitForPage } from "./lib/browser.mjs";

const p = params();
for (const key of ["base_url", "a_link", "b_link", "adj_link", "coord_link", "case_id", "case_label"]) {
  if (!p[key]) throw new Error(`${key} is required`);
}

/** Message keys the catalogue does not have, or objects shown as text. */
const RAW_KEY = /\b(?:grading|study|worklist)\.[a-z_]+(?:\.[a-z_]+)*\b|\[object \w+\]|\bnull\b|\bundefined\b/;

async function shot(page, name, fullPage = false) {
  if (p.screenshot_dir) await page.screenshot({ path: `${p.screenshot_dir}/${name}.png`, fullPage });
}

/** Presses keys one after another (a short pause lets the form react, as a person would). */
async function keys(page, list) {
  for (const key of list) {
    if (key.startsWith("type:")) await page.keyboard.type(key.slice(5), { delay: 20 });
    else await page.keyboard.press(key);
    await page.waitForTimeout(40);
  }
}

/** Where the focus is: the grading cell (`dr_grade:OD`), an element id, or the tag name. */
function focused(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (!el) return null;
    if (el.classList.contains("viewer-stage")) return "viewer-stage";
    return el.dataset && el.dataset.cell ? el.dataset.cell : el.id || el.tagName.toLowerCase();
  });
}

/** Waits for the case page with its grading form loaded. */
async function caseReady(page) {
  await waitForPage(page, "case");
  await page.waitForSelector("#grading[data-mode]", { timeout: 15000 });
}

/** Waits until the draft is saved (autosave settled). */
async function saved(page) {
  await page.waitForSelector('#grading-save[data-state="saved"]', { timeout: 15000 });
}

/** The values the form shows: `{ "dr_grade:OD": "2", ... }` for checked radios and filled inputs. */
function shownValues(page) {
  return page.evaluate(() => {
    const out = {};
    for (const input of document.querySelectorAll("#grading-form [data-cell]")) {
      const cell = input.dataset.cell;
      if (input.type === "radio" || input.type === "checkbox") {
        if (input.checked) out[cell] = (out[cell] ? `${out[cell]},` : "") + (input.dataset.cannot ? "cannot" : input.dataset.index);
      } else if (input.value !== "") {
        out[cell] = input.value;
      }
    }
    return out;
  });
}

/** Which fields are shown (not hidden) and which eyes of them are asked. */
function shownCells(page) {
  return page.evaluate(() => [...document.querySelectorAll("#grading-form [data-cell]")]
    .filter((input) => !input.closest("fieldset").hidden && !input.disabled)
    .map((input) => input.dataset.cell)
    .filter((cell, i, all) => all.indexOf(cell) === i));
}

async function signIn(browser, link, name, landing = "worklist") {
  const user = await newUser(browser, { baseURL: p.base_url });
  await user.page.goto(link);
  await waitForPage(user.page, landing);
  await shot(user.page, `${name}-${landing}`);
  return user;
}

// The demo form, answered with keys: gradability 1 = gradable, 3 = ungradable; DR grade and
// AREDS category take their level's digit; DME 1 = none; VCDR is typed.
function bothEyesGradable(drOd, drOs) {
  return ["1", "Tab", "1", "Tab", String(drOd), "Tab", String(drOs), "Tab", "1", "Tab", "1", "Tab", "1", "Tab", "1", "Tab", "type:0.3", "Tab", "type:0.35"];
}

// Enter submits. A grade covering images the worker never showed this grader is refused first
// and put to them (#grading-unviewed, the focus on "Look at the images"); Tab moves to "Submit
// anyway" and Enter sends it. Returns what was asked, or null when nothing was.
async function submitByKeyboard(page) {
  const from = pathOf(page);
  await page.keyboard.press("Enter");
  await page.waitForFunction((url) => location.pathname !== url || document.querySelector('#grading[data-unviewed="asked"]'), from, { timeout: 15000 });
  if (pathOf(page) !== from || !(await page.$('#grading[data-unviewed="asked"]'))) return null;
  const question = {
    text: (await page.textContent("#grading-unviewed-text")).trim(),
    focus: await focused(page),
  };
  await shot(page, "unviewed-question");
  await page.keyboard.press("Tab");
  question.tab_focus = await focused(page);
  await page.keyboard.press("Enter");
  return question;
}

async function graderA(browser) {
  const { page, problems, context } = await signIn(browser, p.a_link, "a");
  const out = {};
  out.worklist_focus = await page.evaluate(() => document.activeElement && document.activeElement.getAttribute("href"));
  out.worklist_groups = await page.$$eval("section.worklist-group", (s) => s.map((x) => x.id));

  // Enter opens the first unfinished case; the first field has the focus.
  await page.keyboard.press("Enter");
  await caseReady(page);
  out.first_url = pathOf(page);
  out.first_focus = await focused(page);
  out.first_cells_before = await shownCells(page);
  out.first_progress = (await page.textContent("#grading-progress")).trim();
  out.first_clock = (await page.textContent("#grading-clock")).trim();
  // VA, IOP and biometry, from the worker, above the form.
  await page.waitForSelector("#case-measurements tr[data-measure]", { timeout: 15000 });
  out.first_measurements = await page.$$eval("#case-measurements tr[data-measure]", (rows) => rows.map((tr) => ({
    measure: tr.dataset.measure,
    label: tr.querySelector("th").textContent.trim(),
    cells: Object.fromEntries([...tr.querySelectorAll("td")].map((td) => [td.dataset.eye, {
      now: td.firstChild ? td.firstChild.textContent.trim() : "",
      prior: td.querySelector(".prior") ? td.querySelector(".prior").textContent.trim() : null,
    }])),
  })));
  await shot(page, "a-measurements");
  await keys(page, bothEyesGradable(2, 0));
  out.first_cells_after = await shownCells(page);
  await saved(page);
  out.first_values = await shownValues(page);
  out.first_save_text = (await page.textContent("#grading-save")).trim();
  // The grade records the verified lossless frame on screen when it is submitted.
  await page.waitForFunction(() => window.readroomViewer && window.readroomViewer.badge === "LOSSLESS", null, { timeout: 30000 });
  out.first_lossless = await page.evaluate(() => window.readroomViewer.lossless.sha256);
  out.first_view = await page.evaluate(() => ({ exam: window.readroomViewer.state.exam, zoom: window.readroomViewer.state.zoom }));
  await shot(page, "a-first");

  // Enter submits and opens the next case, after asking about what was never shown (only
  // the first view, fundus OD, was).
  out.first_unviewed = await submitByKeyboard(page);
  await page.waitForFunction((url) => location.pathname !== url, out.first_url, { timeout: 15000 });
  await caseReady(page);
  out.second_url = pathOf(page);
  out.second_message = (await page.textContent("#grading-message")).trim();
  out.second_focus = await focused(page);

  // Enter too early: the server's 422 marks each missing field and eye; the focus goes there.
  await keys(page, ["1"]);
  await page.keyboard.press("Enter");
  await page.waitForSelector(".gf-field.gf-invalid", { timeout: 15000 });
  out.invalid = {
    message: (await page.textContent("#grading-message")).trim(),
    marked: await page.$$eval(".gf-problems li", (items) => items.map((li) => `${li.closest("fieldset").dataset.field}:${li.dataset.eye}`)),
    focus: await focused(page),
  };
  await shot(page, "a-invalid");

  // OS ungradable: DR grade, DME, AREDS and VCDR leave OS, the reason appears for OS only.
  await page.keyboard.press("3");
  await page.waitForTimeout(100);
  out.ungradable_cells = await shownCells(page);
  // The macula and the disc of OD out of view: X on DME (its last choice) and on the VCDR (the
  // box under the input); D opens DME's definitions.
  await keys(page, ["Tab", "1", "Tab", "1", "Tab", "x", "d"]);
  const definitionsOpen = await page.$eval('fieldset[data-field="dme"] details.gf-defs', (d) => d.open);
  // Its schematic (the DME zones), drawn and captioned.
  await page.waitForFunction(() => {
    const img = document.querySelector('fieldset[data-field="dme"] details.gf-defs figure img');
    return img && img.complete && img.naturalWidth > 0;
  }, null, { timeout: 10000 });
  const figure = await page.$eval('fieldset[data-field="dme"] details.gf-defs figure', (f) => ({
    src: f.querySelector("img").getAttribute("src"), caption: f.querySelector("figcaption").textContent.trim(),
  }));
  await keys(page, ["Tab", "2", "Tab", "x"]);
  await shot(page, "a-cannot-grade", true);
  out.second_cannot = {
    definitions_open: definitionsOpen,
    figure,
    focus: await focused(page),
    dme_label: (await page.textContent('fieldset[data-field="dme"] .gf-option.gf-cannot')).trim(),
    vcdr_input_disabled: await page.$eval('input[type="number"][data-cell="vcdr:OD"]', (input) => input.disabled),
    // The box is a checkbox's size, not the input column's.
    box_width: await page.$eval('[data-cell="vcdr:OD"][data-cannot]', (el) => el.getBoundingClientRect().width),
  };
  out.second_values = await shownValues(page);
  await saved(page);
  out.second_unviewed = await submitByKeyboard(page);
  await page.waitForFunction((url) => location.pathname !== url, out.second_url, { timeout: 15000 });
  await waitForPage(page);
  out.after_second_url = pathOf(page);

  // The first case again: read-only, with Amend.
  await page.goto(out.first_url);
  await caseReady(page);
  out.first_again = {
    mode: await page.getAttribute("#grading", "data-mode"),
    focus: await focused(page),
    values: await shownValues(page),
  };

  // Amend it with the keyboard: Enter on Amend, VCDR OD 0.3 → 0.35, Enter asks for the reason
  // (focus on it), Ctrl+Enter submits the amendment.
  await page.keyboard.press("Enter");
  await page.waitForSelector('#grading[data-mode="amend"]', { timeout: 15000 });
  out.amend_focus = await focused(page);
  await keys(page, ["Tab", "Tab", "Tab", "Tab", "Tab", "Tab", "Tab", "Tab"]);
  out.amend_field = await focused(page);
  await keys(page, ["Control+a", "type:0.35", "Enter"]);
  out.amend_reason_prompt = (await page.textContent("#grading-message")).trim();
  out.amend_reason_focus = await focused(page);
  await keys(page, ["type:Re-measured the cup on the lossless frame", "Control+Enter"]);
  await page.waitForSelector('#grading[data-mode="readonly"] #grading-submitted', { timeout: 15000 });
  out.amended = {
    message: (await page.textContent("#grading-message")).trim(),
    note: (await page.textContent("#grading-submitted")).trim(),
    values: await shownValues(page),
  };
  await context.close();
  return { ...out, ...problems };
}

async function graderB(browser) {
  const { page, problems, context } = await signIn(browser, p.b_link, "b");
  const out = {};
  await page.goto(`/cases/${p.case_id}`);
  await caseReady(page);
  out.focus = await focused(page);
  await keys(page, ["1", "Tab", "1", "Tab", "3"]);
  await saved(page);

  // The server cannot be reached for a while: the change waits in sessionStorage (never
  // localStorage), survives leaving the page and coming back, and is saved once the server
  // answers again.
  const failedBefore = problems.failed_requests.length;
  const consoleBefore = problems.console_errors.length;
  await page.route("**/api/cases/*/draft", (route) => route.abort());
  await keys(page, ["Tab", "0"]);
  await page.waitForSelector('#grading-save[data-state="offline"]', { timeout: 15000 });
  out.offline_text = (await page.textContent("#grading-save")).trim();
  out.stored = await page.evaluate(() => {
    const found = {};
    for (let i = 0; i < sessionStorage.length; i += 1) {
      const key = sessionStorage.key(i);
      if (key.startsWith("readroom.grading.unsent.")) found[key] = JSON.parse(sessionStorage.getItem(key)).values;
    }
    return found;
  });
  out.local_storage_keys = await page.evaluate(() => Object.keys(localStorage));
  // Leave the case inside the app (as the breadcrumb link does: the last save is cut off too)
  // and come back with Back.
  await page.evaluate(() => {
    history.pushState(null, "", "/");
    dispatchEvent(new PopStateEvent("popstate"));
  });
  await waitForPage(page, "worklist");
  await page.evaluate(() => history.back());
  await caseReady(page);
  out.restored_message = (await page.textContent("#grading-message")).trim();
  out.restored_values = await shownValues(page);
  await page.unroute("**/api/cases/*/draft");
  await saved(page);
  out.stored_after_save = await page.evaluate(() => Object.keys(sessionStorage).filter((k) => k.startsWith("readroom.grading.")));
  // Requests the test itself cut off are not the page's failures.
  out.simulated_failures = problems.failed_requests.splice(failedBefore);
  out.simulated_console = problems.console_errors.splice(consoleBefore).filter((text) => !/net::ERR_FAILED/.test(text));
  problems.console_errors.push(...out.simulated_console);

  // A reload right after a change: the save sent as the page goes (keepalive) or the copy in
  // sessionStorage brings it back.
  out.before_reload_focus = await focused(page);
  await page.keyboard.press("1");
  await page.reload();
  await caseReady(page);
  await page.waitForFunction(() => document.querySelector('#grading-form input[data-cell="dme:OD"]:checked'), null, { timeout: 15000 });
  await page.waitForSelector('#grading-save[data-state="saved"]', { timeout: 15000 });
  out.reloaded_values = await shownValues(page);

  // Esc hands the keys to the image, F brings them back to the form.
  await page.keyboard.press("Escape");
  out.after_escape = await focused(page);
  await page.keyboard.press("f");
  out.after_f = await focused(page);
  // `?` shows every key, Esc closes it and the focus comes back.
  await page.keyboard.press("?");
  out.help_open = await page.evaluate(() => document.getElementById("grading-help").open);
  await shot(page, "b-help");
  await page.keyboard.press("Escape");
  out.help_closed = await page.evaluate(() => !document.getElementById("grading-help").open);
  out.after_help = await focused(page);

  // Finish: from DME OS (the first unanswered field) onwards.
  const at = await focused(page);
  if (at !== "dme:OS") throw new Error(`expected the focus on dme:OS, not ${at}`);
  await keys(page, ["1", "Tab", "1", "Tab", "1", "Tab", "type:0.3", "Tab", "type:0.35"]);
  out.values = await shownValues(page);
  await saved(page);
  await shot(page, "b-filled");
  out.unviewed = await submitByKeyboard(page);
  await page.waitForFunction((id) => !location.pathname.endsWith(id), p.case_id, { timeout: 15000 });
  await waitForPage(page);
  out.after_submit = pathOf(page);

  // The next page in Korean: every string translated.
  await page.selectOption("#lang", "ko");
  await page.waitForFunction(() => document.documentElement.lang === "ko", null, { timeout: 15000 });
  await waitForPage(page);
  if (await page.$("#grading[data-mode]")) {
    out.ko_title = (await page.textContent("#grading-title")).trim();
    out.ko_submit = (await page.textContent("#grading-submit")).trim();
  }
  const text = await page.textContent("main");
  const raw = text.match(RAW_KEY);
  out.raw_keys_ko = raw ? [raw[0]] : [];
  // The image viewer's controls too (it is made afresh in the new language).
  out.ko_tools = await page.$$eval(".viewer-tools button", (buttons) => buttons.map((b) => b.textContent.trim()));
  await shot(page, "b-ko");
  await context.close();
  return { ...out, ...problems };
}

async function adjudicator(browser) {
  const { page, problems, context } = await signIn(browser, p.adj_link, "adjudicator");
  const out = {};
  out.queue = await page.$$eval("#adjudication-queue tbody tr", (rows) => rows.map((row) => ({
    case_id: row.dataset.caseId,
    status: row.dataset.status,
    label: row.cells[0].textContent.trim(),
    fields: row.cells[4].textContent.trim(),
  })));
  await page.keyboard.press("Enter");
  await caseReady(page);
  out.url = pathOf(page);
  out.role = await page.getAttribute("#grading", "data-role");
  out.compare_heads = await page.$$eval("#grading-compare-differ thead th", (ths) => ths.map((th) => th.textContent.trim()));
  out.compare = await page.$$eval("#grading-compare tbody tr", (rows) => rows.map((row) => ({
    cell: `${row.dataset.field}:${row.dataset.eye}`,
    disagree: row.classList.contains("disagree"),
    a: row.cells[1].textContent.trim(),
    b: row.cells[2].textContent.trim(),
  })));
  out.highlighted = await page.$$eval("#grading-form .gf-disagree input", (inputs) => [...new Set(inputs.map((i) => i.dataset.cell))]);
  out.names_shown = /grader\.(kim|jung|han)/.test(await page.textContent("#grading"));
  out.focus = await focused(page);
  await shot(page, "adjudicator");
  // The form opens on the field to resolve, the agreed values already filled in; the
  // cup-to-disc ratio OD differs within tolerance (0.35 and 0.3), so it is not filled in:
  // Enter names it and puts the focus on it.
  await keys(page, ["3"]);
  await saved(page);
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => /problem/.test(document.getElementById("grading-message").textContent), null, { timeout: 15000 });
  out.problem_message = (await page.textContent("#grading-message")).trim();
  out.problem_focus = await focused(page);
  await keys(page, ["type:0.35"]);
  await saved(page);
  out.unviewed = await submitByKeyboard(page);
  await page.waitForFunction((id) => !location.pathname.endsWith(id), p.case_id, { timeout: 15000 }).catch(async (err) => {
    const message = await page.textContent("#grading-message").catch(() => "");
    throw new Error(`the final grade was not submitted (${err.message}); the form says: ${message}; values: ${JSON.stringify(await shownValues(page))}`);
  });
  await waitForPage(page);
  out.after_submit = pathOf(page);
  out.flash = (await page.textContent("main")).includes(`Final grade for ${p.case_label} submitted.`);
  out.queue_after = await page.$$eval("#adjudication-queue tbody tr", (rows) => rows.map((row) => row.dataset.status));
  await context.close();
  return { ...out, ...problems };
}

async function coordinator(browser) {
  // The coordinator of one study lands on its dashboard.
  const { page, problems, context } = await signIn(browser, p.coord_link, "coordinator", "study");
  const out = {};
  // How often the study's case list is fetched (the picker and the reassignment list share it).
  let caseLists = 0;
  page.on("request", (request) => {
    if (new URL(request.url()).pathname === "/api/studies/DEMO/cases") caseLists += 1;
  });
  out.landing = pathOf(page);
  out.nav = await page.$$eval("#nav a", (links) => links.filter((a) => !a.hidden).map((a) => a.getAttribute("href")));
  await page.click("#nav-study");
  await waitForPage(page, "study");
  await page.waitForFunction(() => !document.querySelector(".page-study [aria-busy]") && document.querySelector("#study-kappa, #study-agreement-empty"), null, { timeout: 15000 });
  out.url = pathOf(page);
  out.stages = await page.$$eval("#study-cases > div", (divs) => Object.fromEntries(divs.map((d) => [d.dataset.stage, Number(d.querySelector("dd").textContent.replace(/\D/g, ""))])));
  out.throughput = await page.$$eval("#study-throughput tbody tr", (rows) => rows.map((row) => ({
    grader: row.dataset.grader,
    done: Number(row.cells[2].textContent.replace(/\D/g, "")),
    graded: Number(row.cells[6].textContent.replace(/\D/g, "")),
    median: row.cells[8].textContent.trim(),
  })));
  out.kappa_rows = await page.$$eval("#study-kappa tbody tr", (rows) => rows.map((row) => ({ column: row.dataset.column, a: row.dataset.a, b: row.dataset.b, n: row.cells[2].textContent.trim() })));
  out.chart = await page.$$eval("#study-kappa-chart svg g.row", (rows) => rows.length).catch(() => 0);
  out.truth_rows = await page.$$eval("#study-truth tbody tr", (rows) => rows.map((row) => ({ column: row.dataset.column, grader: row.dataset.grader, n: row.cells[2].textContent.trim() })));
  out.batches = await page.$$eval("#study-batch-list tbody tr", (rows) => rows.map((row) => row.cells[0].textContent.trim()));
  out.form_version = (await page.textContent("#study-form-version")).trim();
  out.referrals = (await page.textContent("#study-referrals")).trim();
  out.preset_options = await page.$$eval("#study-form-preset option", (options) => options.map((o) => o.textContent.trim()));
  // Switching the form asks first, naming both forms; nothing changes until the second press
  // (not pressed here: the downloads below read the study as graded).
  await page.selectOption("#study-form-preset", "vcdr");
  await page.click("#study-form-apply");
  await page.waitForFunction(() => /Press again/.test(document.getElementById("study-form-set").parentElement.textContent), null, { timeout: 15000 });
  out.form_switch = {
    button: (await page.textContent("#study-form-apply")).trim(),
    version: (await page.textContent("#study-form-version")).trim(),
  };
  await shot(page, "coordinator", true);

  const download = async (id) => {
    const [file] = await Promise.all([page.waitForEvent("download", { timeout: 15000 }), page.click(id)]);
    return { name: file.suggestedFilename(), text: readFileSync(await file.path(), "utf8") };
  };
  out.grades_csv = await download("#export-csv-grades");
  out.versions_csv = await download("#export-csv-versions");

  // A batch of cases the coordinator picks: every demo case is batched already, so the
  // "not yet in a batch" filter shows none until it is cleared; the label filter finds one.
  await page.fill("#batch-name", "Picked re-grade");
  await page.fill("#batch-per-case", "3");
  await page.check("#batch-scope-picked");
  await page.waitForSelector("#batch-case-count:not(:empty)", { timeout: 15000 });
  await page.waitForFunction(() => !/Loading/.test(document.getElementById("batch-case-count").textContent), null, { timeout: 15000 });
  const picked = { unbatched_shown: await page.$$eval("#batch-case-list li", (items) => items.length), case_lists: caseLists };
  await page.uncheck("#batch-case-unbatched");
  picked.all_shown = await page.$$eval("#batch-case-list li", (items) => items.length);
  await page.fill("#batch-case-filter", p.case_label);
  picked.filtered = await page.$$eval("#batch-case-list input[name=batch-case]", (boxes) => boxes.map((b) => b.value));
  await page.check(`#batch-case-list input[value="${p.case_id}"]`);
  picked.count = (await page.textContent("#batch-case-count")).trim();
  await page.click("#study-new-batch button[type=submit]");
  await page.waitForFunction(() => /created/.test(document.querySelector("#study-new-batch .status")?.textContent || ""), null, { timeout: 15000 });
  picked.status = (await page.textContent("#study-new-batch .status")).trim();
  picked.batches = await page.$$eval("#study-batch-list tbody tr", (rows) => rows.map((row) => [row.cells[0].textContent.trim(), row.cells[1].textContent.trim()]));
  out.picked_batch = picked;
  await shot(page, "coordinator-picked", true);

  // Reassignment: grader.kim's unfinished cases; one of them goes to the least loaded grader
  // not on it.
  await page.waitForSelector("#reassign-from", { timeout: 15000 });
  await page.selectOption("#reassign-from", "grader:grader.kim");
  const reassign = { before: await page.$$eval("#reassign-list tbody tr", (rows) => rows.map((r) => [r.dataset.assignment, r.cells[1].textContent.trim()])) };
  const moving = reassign.before.find(([, label]) => label !== p.case_label);
  reassign.moving = moving ? moving[0] : null;
  await page.$$eval("#reassign-list input[name=reassign-pick]", (boxes) => boxes.forEach((box) => { box.checked = false; }));
  if (moving) await page.check(`#reassign-list input[value="${moving[0]}"]`);
  reassign.to = await page.$eval("#reassign-to", (select) => select.value);
  await page.click("#reassign-move");
  await page.waitForFunction(() => /Moved/.test(document.querySelector("#study-reassign-form .status")?.textContent || ""), null, { timeout: 15000 });
  reassign.status = (await page.textContent("#study-reassign-form .status")).trim();
  // kim is no longer listed once none of their cases is left unfinished.
  const stillHolds = await page.$$eval("#reassign-from option", (options) => options.some((o) => o.value === "grader:grader.kim"));
  if (stillHolds) await page.selectOption("#reassign-from", "grader:grader.kim");
  reassign.after = stillHolds ? await page.$$eval("#reassign-list tbody tr", (rows) => rows.map((r) => r.dataset.assignment)) : [];
  out.reassign = reassign;

  await page.selectOption("#lang", "ko");
  await page.waitForFunction(() => document.documentElement.lang === "ko", null, { timeout: 15000 });
  await waitForPage(page, "study");
  await page.waitForFunction(() => !document.querySelector(".page-study [aria-busy]"), null, { timeout: 15000 });
  out.title_ko = (await page.textContent("main h1")).trim();
  const text = await page.textContent("main");
  const raw = text.match(RAW_KEY);
  out.raw_keys_ko = raw ? [raw[0]] : [];
  await context.close();
  return { ...out, ...problems };
}

async function auditor(browser) {
  const { page, problems, context } = await signIn(browser, p.auditor_link, "auditor");
  const out = {};
  await page.waitForSelector("#nav-study:not([hidden])", { timeout: 15000 });
  out.nav = await page.$$eval("#nav a", (links) => links.filter((a) => !a.hidden).map((a) => a.getAttribute("href")));
  await page.click("#nav-study");
  await waitForPage(page, "study");
  await page.waitForFunction(() => !document.querySelector(".page-study [aria-busy]"), null, { timeout: 15000 });
  out.sections = await page.$$eval(".page-study section", (sections) => sections.map((s) => s.id));
  out.kappa_rows = await page.$$eval("#study-kappa tbody tr", (rows) => rows.length);
  await context.close();
  return { ...out, ...problems };
}

run(async (browser) => {
  const started = Date.now();
  const timings = {};
  const a = await graderA(browser);
  timings.a_ms = Date.now() - started;
  const b = await graderB(browser);
  timings.b_ms = Date.now() - started - timings.a_ms;
  const adj = await adjudicator(browser);
  timings.adjudicator_ms = Date.now() - started - timings.a_ms - timings.b_ms;
  const coord = await coordinator(browser);
  const audit = p.auditor_link ? await auditor(browser) : null;
  timings.total_ms = Date.now() - started;
  return { a, b, adjudicator: adj, coordinator: coord, auditor: audit, timings };
});
