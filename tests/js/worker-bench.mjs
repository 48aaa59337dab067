// Worker-tier benchmark (tests/benches/worker_bench.rs): one grader, one page.
//   1. cold opens: the case page loaded `opens` times (first frame since navigation start);
//   2. next case, with the app's router (the open connection is reused: `open_case`),
//      navigation → first frame of the next case, `rounds` × 3 times per case id: two of
//      every three go to the grader's next case once the worker has it ready (`prefetched`,
//      as "Open next case" after grading it), the third to another case (not prefetched);
//   3. failover (only with `kills` > 0): the harness kills the worker serving the stream; time
//      from the kill to the first frame on the new stream, `kills` times.
// Coordination with the harness for 3, through files in `dir`: this script writes `ready-K`
// ({stream}), the harness writes `killed-K` (epoch ms) and, once the worker is back,
// `restarted-K`.
//
// Parameters (READROOM_BROWSER_PARAMS): base_url, link_url, case_ids, opens, rounds, kills, dir.
// Prints: RESULT {cold_ms[], next_ms[] (prefetched), other_ms[] (not prefetched), same_stream,
// failover_ms[], page_errors}.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { newUser, params, run, waitForFile, waitForPage } from "./lib/browser.mjs";

const p = params();
for (const key of ["base_url", "link_url", "case_ids"]) if (!p[key]) throw new Error(`${key} is required`);
const opens = p.opens ?? 5;
const rounds = p.rounds ?? 3;
const kills = p.kills ?? 0;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

run(async (browser) => {
  const { page, problems } = await newUser(browser, { baseURL: p.base_url, viewport: { width: 1280, height: 800 } });
  await page.goto(p.link_url);
  await waitForPage(page, "worklist");
  const streamingOn = (caseId, other = null) => page.waitForFunction(
    ({ id, other }) => {
      const v = window.readroomViewer;
      return v && v.caseId === id && v.phase === "streaming" && v.shape && (other === null || v.streamId !== other);
    },
    { id: caseId, other },
    { timeout: 60000, polling: 2 },
  );
  const lastMark = (name) => page.evaluate((n) => {
    const marks = performance.getEntriesByName(n);
    return marks.length ? marks[marks.length - 1].startTime : null;
  }, name);
  const ids = p.case_ids;

  const cold = [];
  for (let i = 0; i < opens; i++) {
    const id = ids[i % ids.length];
    await page.goto(`/cases/${id}`);
    await streamingOn(id);
    cold.push(Math.round((await lastMark("readroom:first-frame")) * 10) / 10);
  }
  await sleep(500);

  const next = [];
  const other = [];
  let sameStream = true;
  const stream = await page.evaluate(() => window.readroomViewer.streamId);
  let at = 0;
  for (let r = 0; r < rounds * ids.length * 3; r++) {
    const now = await page.evaluate(() => window.readroomViewer.caseId);
    let id;
    const prefetched = r % 3 !== 2;
    if (prefetched) {
      // The form's next case, once the worker has it ready.
      await page.waitForFunction(() => window.readroomViewer && window.readroomViewer.prefetched, null, { timeout: 30000, polling: 10 });
      id = await page.evaluate(() => window.readroomViewer.prefetched);
    } else {
      const ready = await page.evaluate(() => window.readroomViewer.prefetched);
      do {
        at = (at + 1) % ids.length;
      } while (ids[at] === now || ids[at] === ready);
      id = ids[at];
    }
    await page.evaluate(async (target) => {
      const { navigate } = await import(document.querySelector('script[type="module"]').src.replace(/app\.js$/, "router.js"));
      performance.clearMarks();
      performance.mark("bench:navigate");
      navigate(`/cases/${target}`);
    }, id);
    await streamingOn(id);
    const start = await lastMark("bench:navigate");
    const frame = await lastMark("readroom:first-frame");
    (prefetched ? next : other).push(Math.round((frame - start) * 10) / 10);
    sameStream = sameStream && (await page.evaluate(() => window.readroomViewer.streamId)) === stream;
    await sleep(300);
  }

  const failover = [];
  for (let k = 0; k < kills; k++) {
    const current = await page.evaluate(() => ({ stream: window.readroomViewer.streamId, caseId: window.readroomViewer.caseId }));
    writeFileSync(join(p.dir, `ready-${k}`), JSON.stringify({ stream: current.stream }));
    const killedAt = Number(await waitForFile(p.dir, `killed-${k}`, 120000));
    await streamingOn(current.caseId, current.stream);
    failover.push(Date.now() - killedAt);
    await waitForFile(p.dir, `restarted-${k}`, 120000);
    await sleep(500);
  }
  return { cold_ms: cold, next_ms: next, other_ms: other, same_stream: sameStream, failover_ms: failover, page_errors: problems.page_errors };
});
