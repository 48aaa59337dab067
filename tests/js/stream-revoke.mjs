// A grader's stream while the harness revokes their access (embedded or distributed mode): the
// stream must end and stay ended (the reconnect is refused).
// Coordination through files in `dir`: this script writes `streaming` once the case streams;
// the harness writes `revoked` (epoch ms) when it has revoked the access.
//
// Parameters (READROOM_BROWSER_PARAMS): base_url, link_url, case_id, dir.
// Prints: RESULT {stream, revoked_to_end_ms, final_phase, final_text, page_errors}.

import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { newUser, params, run, waitForPage } from "./lib/browser.mjs";

const p = params();
for (const key of ["base_url", "link_url", "case_id", "dir"]) if (!p[key]) throw new Error(`${key} is required`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

run(async (browser) => {
  const { page, problems } = await newUser(browser, { baseURL: p.base_url });
  await page.goto(p.link_url);
  await waitForPage(page, "worklist");
  await page.goto(`/cases/${p.case_id}`);
  await page.waitForFunction(() => window.readroomViewer && window.readroomViewer.phase === "streaming", null, { timeout: 30000, polling: 5 });
  const stream = await page.evaluate(() => window.readroomViewer.streamId);
  writeFileSync(join(p.dir, "streaming"), stream);
  const path = join(p.dir, "revoked");
  const deadline = Date.now() + 60000;
  let revokedAt = 0;
  while (!revokedAt) {
    if (Date.now() > deadline) throw new Error("the harness did not revoke");
    if (existsSync(path)) revokedAt = Number(readFileSync(path, "utf8").trim()) || 0;
    if (!revokedAt) await sleep(5);
  }
  await page.waitForFunction(() => !window.readroomViewer || window.readroomViewer.phase !== "streaming", null, { timeout: 15000, polling: 5 });
  const endedAt = Date.now();
  await sleep(2500);
  const final = await page.evaluate(() => ({
    phase: window.readroomViewer ? window.readroomViewer.phase : null,
    text: document.querySelector(".viewer-overlay-text")?.textContent || "",
    path: location.pathname,
  }));
  return {
    stream,
    revoked_to_end_ms: endedAt - revokedAt,
    final_phase: final.phase,
    final_text: final.text,
    final_path: final.path,
    page_errors: problems.page_errors,
  };
});
