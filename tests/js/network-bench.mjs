// Network benchmark (tests/benches/network_bench.rs runs it on each side of a shaped link): one
// grader at 1280×800.
//   1. cold opens: the case page loaded `opens` times, navigation → first frame presented;
//   2. next case: the grader's next case (prefetched) through the app's router, `opens` times;
//   3. scroll-through: on the OCT volume of the case shown, one wheel notch per B-scan, each
//      sent once the previous B-scan is presented (its ack has come and a new frame was shown),
//      from the first B-scan to the last; time, bytes received on the connection meanwhile;
//   4. settle: from the last step's frame presented to the verified lossless frame (LOSSLESS).
//
// Parameters (READROOM_BROWSER_PARAMS): base_url, link_url, case_ids (cases to open cold; the
// first one's OCT volume is scrolled), opens (default 3), exam (the OCT exam id, default
// "oct-od").
// Prints: RESULT {cold_ms[], next_ms[], scroll: {slices, ms, step_ms[], video_bytes,
// transport_bytes}, settle_ms, page_errors, console_errors}.

import { newUser, params, run, waitForPage } from "./lib/browser.mjs";

const p = params();
for (const key of ["base_url", "link_url", "case_ids"]) if (!p[key]) throw new Error(`${key} is required`);
const opens = p.opens ?? 3;
const exam = p.exam ?? "oct-od";
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

run(async (browser) => {
  const { page, problems } = await newUser(browser, { baseURL: p.base_url, viewport: { width: 1280, height: 800 } });
  await page.goto(p.link_url);
  await waitForPage(page, "worklist");
  const streamingOn = (caseId) => page.waitForFunction(
    (id) => {
      const v = window.readroomViewer;
      return v && v.caseId === id && v.phase === "streaming" && v.shape && v.state;
    },
    caseId,
    { timeout: 60000, polling: 5 },
  );
  const lastMark = (name) => page.evaluate((n) => {
    const marks = performance.getEntriesByName(n);
    return marks.length ? marks[marks.length - 1].startTime : null;
  }, name);

  // 1. Cold opens.
  const cold = [];
  for (let i = 0; i < opens; i++) {
    const id = p.case_ids[i % p.case_ids.length];
    await page.goto(`/cases/${id}`);
    await streamingOn(id);
    cold.push(Math.round(await lastMark("readroom:first-frame")));
  }

  // 2. The next case, once the worker has it ready.
  const next = [];
  for (let i = 0; i < opens; i++) {
    await page.waitForFunction(() => window.readroomViewer && window.readroomViewer.prefetched, null, { timeout: 60000, polling: 10 });
    const id = await page.evaluate(() => window.readroomViewer.prefetched);
    await page.evaluate(async (target) => {
      const { navigate } = await import("/assets/router.js");
      performance.clearMarks();
      performance.mark("bench:navigate");
      navigate(`/cases/${target}`);
    }, id);
    await streamingOn(id);
    next.push(Math.round((await lastMark("readroom:first-frame")) - (await lastMark("bench:navigate"))));
    await sleep(300);
  }

  // 3. Scroll through the OCT volume of the case shown now.
  const caseId = await page.evaluate(() => window.readroomViewer.caseId);
  await page.goto(`/cases/${caseId}`);
  await streamingOn(caseId);
  await page.evaluate(() => {
    // Counts the frames the video presents.
    const video = window.readroomViewer.video;
    window.benchPresented = 0;
    const count = () => {
      window.benchPresented += 1;
      window.benchPresentedAt = performance.now();
      video.requestVideoFrameCallback(count);
    };
    video.requestVideoFrameCallback(count);
  });
  const shown = await page.evaluate((id) => {
    const v = window.readroomViewer;
    const found = v.shape.exams.find((e) => e.id === id);
    return found ? found.slices : null;
  }, exam);
  if (!shown) throw new Error(`the case has no exam ${exam}`);
  await page.evaluate((id) => window.readroomViewer.send({ type: "view", set: { exam: id, layout: "single", slice: 0 } }), exam);
  await page.waitForFunction((id) => {
    const v = window.readroomViewer;
    return v.state.exam === id && v.state.slice === 0 && v.badge === "LOSSLESS";
  }, exam, { timeout: 30000, polling: 5 });
  const box = await page.locator(".viewer-stage").boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  const received = () => page.evaluate(async () => {
    const report = await window.readroomViewer.owner.conn.pc.getStats();
    let video = 0;
    let transport = 0;
    report.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") video += s.bytesReceived || 0;
      if (s.type === "transport") transport += s.bytesReceived || 0;
    });
    return { video, transport };
  });
  const before = await received();
  const steps = [];
  const started = Date.now();
  for (let slice = 1; slice < shown; slice++) {
    const at = Date.now();
    const presented = await page.evaluate(() => window.benchPresented);
    await page.mouse.wheel(0, 100);
    await page.waitForFunction(({ slice, presented }) => {
      const v = window.readroomViewer;
      return v.state.slice === slice && window.benchPresented > presented;
    }, { slice, presented }, { timeout: 10000, polling: "raf" });
    steps.push(Date.now() - at);
  }
  const scrollMs = Date.now() - started;
  // 4. The settle: from the last frame presented to LOSSLESS.
  const lastFrameAt = await page.evaluate(() => window.benchPresentedAt);
  await page.waitForFunction((last) => window.readroomViewer.badge === "LOSSLESS" && window.readroomViewer.state.slice === last, shown - 1, { timeout: 30000, polling: 5 });
  const settle = await page.evaluate((from) => performance.now() - from, lastFrameAt);
  const after = await received();
  return {
    cold_ms: cold,
    next_ms: next,
    scroll: {
      slices: shown,
      ms: scrollMs,
      step_ms: steps,
      video_bytes: after.video - before.video,
      transport_bytes: after.transport - before.transport,
    },
    settle_ms: Math.round(settle),
    page_errors: problems.page_errors,
    console_errors: problems.console_errors,
  };
});
