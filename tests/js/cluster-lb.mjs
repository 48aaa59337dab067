// A grader in the local cluster (scripts/cluster), through the load balancer, while the harness
// kills the server replica that signalled the grader's stream: the stream must keep playing
// (media and data channel go to the worker, not the replica), the grader must stay signed in,
// grade the case through the surviving replica, and when they sign out the stream must end.
//
// Coordination through files in `dir` (as cluster.mjs):
//   this script writes  `streaming`  {case_id, stream} once the view is set (the harness then
//                                     kills the replica that signalled the stream)
//   the harness writes  `killed`     with the kill time (epoch ms)
//   this script writes  `graded`     {stream} once the case is graded (the harness then kills
//                                     the worker serving the stream)
//   the harness writes  `worker-killed` with the kill time (epoch ms)
//
// Parameters (READROOM_BROWSER_PARAMS): base_url, link_url, dir, values (the grade to submit).
// Prints: RESULT {...} (see the end).

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { newUser, pageApi, params, run, waitForFile, waitForPage } from "./lib/browser.mjs";

const p = params();
for (const key of ["base_url", "link_url", "dir", "values"]) if (!p[key]) throw new Error(`${key} is required`);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

run(async (browser) => {
  const { page, problems } = await newUser(browser, { baseURL: p.base_url, viewport: { width: 1280, height: 800 } });
  await page.goto(p.link_url);
  await waitForPage(page, "worklist");
  const worklist = await pageApi(page, "/api/worklist");
  if (!worklist.ok) throw new Error(`worklist: ${JSON.stringify(worklist)}`);
  const item = worklist.body.find((i) => i.status === "in_progress") || worklist.body.find((i) => i.status === "assigned");
  if (!item) throw new Error(`nothing to grade: ${JSON.stringify(worklist.body)}`);
  await page.goto(`/cases/${item.case_id}`);
  await page.waitForFunction(
    () => document.querySelector('.viewer[data-state="streaming"]') !== null,
    null,
    { timeout: 30000, polling: 5 },
  );

  // A view a grader would have built: zoomed, W/L moved.
  const wanted = { zoom: 2, window: 0.5, level: 0.375 };
  await page.evaluate((set) => window.readroomViewer.send({ type: "view", set }), wanted);
  await page.waitForFunction(
    (w) => {
      const s = window.readroomViewer.state;
      return s && s.window === w.window && s.level === w.level && s.zoom !== "fit";
    },
    wanted,
    { timeout: 15000, polling: 10 },
  );
  const stream = await page.evaluate(() => window.readroomViewer.streamId);
  writeFileSync(join(p.dir, "streaming"), JSON.stringify({ case_id: item.case_id, stream }));

  // The harness kills the replica that signalled this stream now.
  await waitForFile(p.dir, "killed");
  // The stream keeps playing: the same stream, still streaming, and a view change is answered.
  await sleep(2000);
  const afterKill = await page.evaluate(() => ({ phase: window.readroomViewer.phase, stream: window.readroomViewer.streamId }));
  const changed = { window: 0.75, level: 0.5 };
  const changeSent = Date.now();
  await page.evaluate((set) => window.readroomViewer.send({ type: "view", set }), changed);
  await page.waitForFunction(
    (w) => {
      const s = window.readroomViewer.state;
      return s && s.window === w.window && s.level === w.level;
    },
    changed,
    { timeout: 10000, polling: 5 },
  );
  const viewChangeMs = Date.now() - changeSent;

  // Still signed in (the session lives in the database, not in the dead replica).
  const me = await pageApi(page, "/api/me");
  // Grades the case through the load balancer (the surviving replica).
  const grade = await pageApi(page, `/api/cases/${item.case_id}/grade`, { method: "POST", body: { values: p.values } });
  const stillStreaming = await page.evaluate(() => ({ phase: window.readroomViewer.phase, stream: window.readroomViewer.streamId }));

  // The harness now kills the worker serving the stream: the viewer comes back on the other
  // worker with the same view (the W/L set above), through the surviving replica.
  writeFileSync(join(p.dir, "graded"), JSON.stringify({ stream }));
  const workerKilledAt = Number(await waitForFile(p.dir, "worker-killed"));
  await page.waitForFunction(
    ({ old, w }) => {
      const v = window.readroomViewer;
      const s = v && v.state;
      return v.streamId !== old && v.phase === "streaming" && s && s.window === w.window && s.level === w.level && s.zoom !== "fit";
    },
    { old: stream, w: changed },
    { timeout: 30000, polling: 5 },
  );
  const workerFailoverMs = Date.now() - workerKilledAt;
  const afterWorker = await page.evaluate(() => ({ stream: window.readroomViewer.streamId, state: window.readroomViewer.state }));

  // Signs out: the open stream must end (revalidation on the surviving replica).
  const signedOutAt = Date.now();
  const out = await pageApi(page, "/api/auth/logout", { method: "POST" });
  await page.waitForFunction(
    (old) => window.readroomViewer?.phase !== "streaming" || window.readroomViewer?.streamId !== old,
    afterWorker.stream,
    { timeout: 15000, polling: 5 },
  ).catch(() => {});
  const endedMs = Date.now() - signedOutAt;

  return {
    case_id: item.case_id,
    stream,
    after_kill: afterKill,
    view_change_ms: viewChangeMs,
    me: me.ok ? { ok: true, username: me.body.username } : me,
    grade: grade.ok ? { ok: true, kind: grade.body.kind, version: grade.body.version } : grade,
    still_streaming: stillStreaming,
    worker_failover_ms: workerFailoverMs,
    after_worker: afterWorker,
    signout: out.ok ? { ok: true } : out,
    signout_to_end_ms: endedMs,
    page_errors: problems.page_errors,
    http_errors: problems.http_errors ?? [],
  };
});
