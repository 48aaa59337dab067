// A grader's stream in distributed mode, while the test harness breaks things around it: the
// worker serving the stream is killed (the viewer must come back on another worker with the
// same view), then the grader's assignment is removed (the stream must end and stay ended).
//
// The harness and this script coordinate through files in `dir`:
//   this script writes  `streaming`  once the view is set (the harness then kills the worker)
//   the harness writes  `killed`     with the kill time (epoch ms)
//   this script writes  `restored`   once the same view streams again (the harness then revokes)
//   the harness writes  `revoked`    with the revocation time (epoch ms)
//
// Parameters (READROOM_BROWSER_PARAMS): base_url, link_url, case_id, dir.
// Prints: RESULT {...} (see the end).

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { newUser, params, run, waitForFile, waitForPage } from "./lib/browser.mjs";

const p = params();
for (const key of ["base_url", "link_url", "case_id", "dir"]) if (!p[key]) throw new Error(`${key} is required`);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

run(async (browser) => {
  const { page, problems } = await newUser(browser, { baseURL: p.base_url, viewport: { width: 1280, height: 800 } });
  await page.goto(p.link_url);
  await waitForPage(page, "worklist");
  await page.goto(`/cases/${p.case_id}`);
  const streaming = () => page.waitForFunction(
    () => document.querySelector('.viewer[data-state="streaming"]') !== null,
    null,
    { timeout: 30000, polling: 5 },
  );
  await streaming();

  // A view a grader would have built: the OCT exam, a few B-scans in, zoomed, W/L moved.
  const shape = await page.evaluate(() => window.readroomViewer.shape);
  const oct = shape.exams.find((e) => e.kind === "oct");
  const wanted = { exam: oct.id, slice: Math.min(5, (oct.slices || 1) - 1), zoom: 2, window: 0.5, level: 0.375 };
  await page.evaluate((set) => window.readroomViewer.send({ type: "view", set }), wanted);
  await page.waitForFunction(
    (w) => {
      const s = window.readroomViewer.state;
      return s && s.exam === w.exam && s.slice === w.slice && s.window === w.window && s.level === w.level && s.zoom !== "fit";
    },
    wanted,
    { timeout: 15000, polling: 10 },
  );
  const before = await page.evaluate(() => ({ state: window.readroomViewer.state, stream: window.readroomViewer.streamId }));
  writeFileSync(join(p.dir, "streaming"), String(Date.now()));

  // The harness kills the worker now.
  const killedAt = Number(await waitForFile(p.dir, "killed"));
  await page.waitForFunction(
    (old) => window.readroomViewer.streamId !== old && window.readroomViewer.phase === "streaming",
    before.stream,
    { timeout: 30000, polling: 5 },
  );
  const resumedAt = Date.now();
  // The restored view arrives with the first acknowledgement after `ready`.
  await page.waitForFunction(
    (w) => {
      const s = window.readroomViewer.state;
      return s && s.exam === w.exam && s.slice === w.slice && s.window === w.window && s.level === w.level;
    },
    wanted,
    { timeout: 10000, polling: 5 },
  );
  const restoredAt = Date.now();
  const after = await page.evaluate(() => ({ state: window.readroomViewer.state, stream: window.readroomViewer.streamId }));
  writeFileSync(join(p.dir, "restored"), String(restoredAt));

  // The harness removes the grader's assignment now.
  const revokedAt = Number(await waitForFile(p.dir, "revoked"));
  await page.waitForFunction(
    () => window.readroomViewer.phase !== "streaming",
    null,
    { timeout: 15000, polling: 5 },
  );
  const endedAt = Date.now();
  // It must not come back: the reconnect is refused (404, the case is no longer the grader's).
  await sleep(2500);
  const finalPhase = await page.evaluate(() => window.readroomViewer.phase);
  const finalText = await page.evaluate(() => document.querySelector(".viewer-overlay-text")?.textContent || "");

  return {
    before,
    after,
    failover_ms: resumedAt - killedAt,
    view_restored_ms: restoredAt - killedAt,
    revoked_to_end_ms: endedAt - revokedAt,
    final_phase: finalPhase,
    final_text: finalText,
    page_errors: problems.page_errors,
  };
});
