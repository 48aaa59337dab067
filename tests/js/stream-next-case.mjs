// "Next case" on one connection: a grader opens a case, then goes to the next ones the way the
// grading form's "Open next case" does (the app's router, no page load). The viewer must open
// each case on the same peer connection (`open_case` with a fresh ticket: same stream id) and
// show it. Used by tests/tests/streaming.rs and the worker-tier benchmark.
//
// Parameters (READROOM_BROWSER_PARAMS): base_url, link_url, case_ids (the first is opened
// cold, then each next one in turn), rounds (how many times to go through case_ids after the
// first; default 1), plan (instead of that order: a list of steps, "next" for the grading
// form's next case once the worker has it ready, as "Open next case" does, "other" for one of
// case_ids that is neither shown nor ready, once one is ready).
// Prints: RESULT {cold_ms, switches: [{case_id, ms, open_case_ms, prefetched, same_stream,
// shown_case, exams}], page_errors, console_errors}; `prefetched`: the case the worker had
// ready when the navigation started. `ms`: from the navigation to the next case's first
// frame presented (rVFC); `open_case_ms`: to the `open_case` message
// being sent (ticket in hand); `ready_ms`: to the worker's `ready` for it.

import { newUser, params, run, waitForPage } from "./lib/browser.mjs";

const p = params();
for (const key of ["base_url", "link_url", "case_ids"]) if (!p[key]) throw new Error(`${key} is required`);
const rounds = p.rounds ?? 1;

run(async (browser) => {
  const { page, problems } = await newUser(browser, { baseURL: p.base_url, viewport: { width: 1280, height: 800 } });
  await page.goto(p.link_url);
  await waitForPage(page, "worklist");
  const [first, ...rest] = p.case_ids;
  await page.goto(`/cases/${first}`);
  const streamingOn = (caseId) => page.waitForFunction(
    (id) => {
      const v = window.readroomViewer;
      return v && v.caseId === id && v.phase === "streaming" && v.state && v.shape;
    },
    caseId,
    { timeout: 30000, polling: 2 },
  ).catch(async (err) => {
    const seen = await page.evaluate(() => {
      const v = window.readroomViewer;
      return v ? { phase: v.phase, caseId: v.caseId, stream: v.streamId, errors: v.errors, ready: !!v.shape } : null;
    });
    throw new Error(`case ${caseId} did not stream (${err.message}): viewer ${JSON.stringify(seen)}; page errors ${JSON.stringify(problems.page_errors)}; console ${JSON.stringify(problems.console_errors)}`);
  });
  await streamingOn(first);
  const coldMs = await page.evaluate(() => {
    const marks = performance.getEntriesByName("readroom:first-frame");
    return marks.length ? Math.round(marks[marks.length - 1].startTime) : null;
  });
  const stream = await page.evaluate(() => window.readroomViewer.streamId);

  const switches = [];
  const order = [];
  for (let r = 0; r < rounds; r++) order.push(...rest, ...(r + 1 < rounds ? [first] : []));
  const plan = p.plan || order;
  for (const step of plan) {
    if (step === "next" || step === "other") {
      await page.waitForFunction(() => window.readroomViewer && window.readroomViewer.prefetched, null, { timeout: 30000, polling: 10 })
        .catch(async (err) => {
          const seen = await page.evaluate(() => {
            const v = window.readroomViewer;
            const next = v && v.owner.next;
            return v ? { caseId: v.caseId, phase: v.phase, next: next && { caseId: next.caseId, seq: next.seq, ticket: !!next.ticket }, errors: v.errors } : null;
          });
          throw new Error(`the next case was not made ready (${err.message}): viewer ${JSON.stringify(seen)}; console ${JSON.stringify(problems.console_errors)}`);
        });
    }
    const { prefetched, shown } = await page.evaluate(() => ({ prefetched: window.readroomViewer.prefetched, shown: window.readroomViewer.caseId }));
    const caseId = step === "next"
      ? prefetched
      : step === "other" ? p.case_ids.find((id) => id !== shown && id !== prefetched) : step;
    await page.evaluate(async (id) => {
      const { navigate } = await import(document.querySelector('script[type="module"]').src.replace(/app\.js$/, "router.js"));
      performance.clearMarks();
      performance.mark("bench:navigate");
      navigate(`/cases/${id}`);
    }, caseId);
    await streamingOn(caseId);
    const timing = await page.evaluate(() => {
      const at = (name) => {
        const marks = performance.getEntriesByName(name);
        return marks.length ? marks[marks.length - 1].startTime : null;
      };
      const start = at("bench:navigate");
      const frame = at("readroom:first-frame");
      const open = at("readroom:open-case");
      const ready = at("readroom:ready");
      const since = (t) => (t !== null && start !== null ? Math.round((t - start) * 10) / 10 : null);
      return { ms: since(frame), open_case_ms: since(open), ready_ms: since(ready) };
    });
    const now = await page.evaluate(() => ({
      stream: window.readroomViewer.streamId,
      exams: window.readroomViewer.shape.exams.map((e) => e.id),
      exam: window.readroomViewer.state.exam,
    }));
    switches.push({
      case_id: caseId,
      prefetched,
      ...timing,
      same_stream: now.stream === stream,
      shown_case: caseId,
      exams: now.exams,
      exam: now.exam,
    });
  }
  // Back to the worklist: the parked viewer ends its session a moment later.
  await page.evaluate(async () => {
    const { navigate } = await import(document.querySelector('script[type="module"]').src.replace(/app\.js$/, "router.js"));
    navigate("/");
  });
  await page.waitForTimeout(2500);
  const after = await page.evaluate(() => ({ viewer: !!window.readroomViewer }));
  return {
    stream,
    cold_ms: coldMs,
    switches,
    after_leaving: after,
    page_errors: problems.page_errors,
    console_errors: problems.console_errors,
  };
});
