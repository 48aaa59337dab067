// Network benchmark (tests/benches/network_bench.rs runs it on each side of a shaped link): one
// grader at 1280×800.
//   1. cold opens: the case page loaded `opens` times, navigation → first frame presented;
//   2. next case: the grader's next case (prefetched) through the app's router, `opens` times;
//   3. scroll-through: on the OCT volume of the case shown, one wheel notch per B-scan, each
//      sent once the previous B-scan is presented (its ack has come and a new frame was shown),
//      from the first B-scan to the last; time, bytes received on the connection meanwhile;
//   4. settle: from the last step's frame presented to the verified lossless frame (LOSSLESS);
//   5. cine: from the first B-scan, ↓ held (a press, then its auto-repeat) until the last
//      B-scan is shown: the B-scans the worker sent (acks of the run), the frames the video
//      presented meanwhile, B-scans a second from the first presented to the last, bytes;
//   6. quality: at four B-scans, each reached by one step from the one before (as when
//      scrolling), the video frame the grader saw against the lossless frame (the worker's
//      exact render): PSNR over R, G, B and SSIM of the luma (8×8 windows).
//
// Parameters (READROOM_BROWSER_PARAMS): base_url, link_url, case_ids (cases to open cold, in
// turn, unless fundus_case_id is given), fundus_case_id (a case whose first view is a fundus
// photograph, opened cold `opens` times), oct_case_id (a case whose first view is an OCT volume,
// opened cold `opens` times after them), scroll_case_id (the case whose OCT volume is scrolled;
// default: the case shown after the next-case opens), opens (default 3), exam (the OCT exam id
// scrolled, default "oct-od").
// Prints: RESULT {cold_ms[], cold_oct_ms[], next_ms[], scroll: {slices, ms, step_ms[], video_bytes,
// transport_bytes}, settle_ms, cine: {steps, presented, frames_dropped, ms, per_second,
// video_bytes}, quality: [{slice, psnr, ssim, frame_bytes}], page_errors, console_errors}.

import { compareVideoToLossless, newUser, params, recordAcks, run, waitForPage } from "./lib/browser.mjs";

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

  // 1. Cold opens: a fresh page load each time, and (the viewer's stream session ending with
  // the page) a fresh stream whose worker opens and decodes the case again.
  const coldOpen = async (id) => {
    await page.goto(`/cases/${id}`);
    await streamingOn(id);
    const ms = Math.round(await lastMark("readroom:first-frame"));
    // Where the open's time went: navigation timing, then the viewer's marks.
    const marks = await page.evaluate(() => {
      const out = {};
      const nav = performance.getEntriesByType("navigation")[0];
      if (nav) {
        out["nav:response-end"] = Math.round(nav.responseEnd);
        out["nav:dom-content-loaded"] = Math.round(nav.domContentLoadedEventEnd);
      }
      for (const entry of performance.getEntriesByType("resource")) {
        const path = new URL(entry.name).pathname;
        if (path.startsWith("/api/")) out[`api:${path.replace(/[0-9a-f-]{36}/g, "{id}")}`] = [Math.round(entry.startTime), Math.round(entry.responseEnd)];
      }
      const scripts = performance.getEntriesByType("resource").filter((e) => e.initiatorType === "script" || e.name.endsWith(".js"));
      if (scripts.length) out["scripts:last-loaded"] = Math.round(Math.max(...scripts.map((e) => e.responseEnd)));
      for (const entry of performance.getEntriesByType("mark")) {
        if (entry.name.startsWith("readroom:")) out[entry.name] = Math.round(entry.startTime);
      }
      return out;
    });
    // The ICE checks of the selected pair, as the browser counted them (times from navigation).
    const ice = await page.evaluate(async () => {
      const report = await window.readroomViewer.owner.conn.pc.getStats();
      const at = (epochMs) => (epochMs ? Math.round(epochMs - performance.timeOrigin) : null);
      let pair = null;
      report.forEach((s) => {
        if (s.type === "transport" && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId);
      });
      const pairs = [];
      report.forEach((s) => {
        if (s.type === "candidate-pair") pairs.push({ state: s.state, nominated: s.nominated, requests_sent: s.requestsSent, responses_received: s.responsesReceived, requests_received: s.requestsReceived, responses_sent: s.responsesSent, first_request: at(s.firstRequestTimestamp), last_response: at(s.lastResponseTimestamp), first_request_received: at(s.firstRequestReceivedTimestamp), selected: pair ? s.id === pair.id : false });
      });
      return pairs;
    });
    return { ms, marks, ice };
  };
  const cold = [];
  let coldMarks = null;
  let coldIce = null;
  for (let i = 0; i < opens; i++) {
    const open = await coldOpen(p.fundus_case_id ?? p.case_ids[i % p.case_ids.length]);
    cold.push(open.ms);
    coldMarks = open.marks;
    coldIce = open.ice;
  }
  const coldOct = [];
  let coldOctMarks = null;
  if (p.oct_case_id) {
    for (let i = 0; i < opens; i++) {
      const open = await coldOpen(p.oct_case_id);
      coldOct.push(open.ms);
      coldOctMarks = open.marks;
    }
  }

  // 2. The next case, once the worker has it ready.
  const next = [];
  for (let i = 0; i < opens; i++) {
    await page.waitForFunction(() => window.readroomViewer && window.readroomViewer.prefetched, null, { timeout: 60000, polling: 10 });
    const id = await page.evaluate(() => window.readroomViewer.prefetched);
    await page.evaluate(async (target) => {
      const { navigate } = await import(document.querySelector('script[type="module"]').src.replace(/app\.js$/, "router.js"));
      performance.clearMarks();
      performance.mark("bench:navigate");
      navigate(`/cases/${target}`);
    }, id);
    await streamingOn(id);
    next.push(Math.round((await lastMark("readroom:first-frame")) - (await lastMark("bench:navigate"))));
    await sleep(300);
  }

  // 3. Scroll through the OCT volume of the case shown now.
  const caseId = p.scroll_case_id ?? (await page.evaluate(() => window.readroomViewer.caseId));
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

  // 4b. The same volume stepped back to the first B-scan from inside the page: a wheel event
  // dispatched on the stage as soon as the last step's frame is presented and acknowledged (no
  // DevTools round trips, no input-event alignment): the product's own loop.
  const inPage = await page.evaluate(async (n) => {
    const v = window.readroomViewer;
    const stage = document.querySelector(".viewer-stage");
    const rect = stage.getBoundingClientRect();
    const latencies = [];
    const started = performance.now();
    for (let i = 0; i < n; i++) {
      const target = v.state.slice - 1;
      const t0 = performance.now();
      stage.dispatchEvent(new WheelEvent("wheel", { deltaY: -100, deltaMode: 0, clientX: rect.x + rect.width / 2, clientY: rect.y + rect.height / 2, bubbles: true, cancelable: true }));
      const presentedAt = await new Promise((resolve, reject) => {
        const give = setTimeout(() => reject(new Error(`B-scan ${target} was not shown`)), 10000);
        const check = () => {
          if (window.readroomViewer.state.slice === target && window.benchPresentedAt > t0) {
            clearTimeout(give);
            resolve(window.benchPresentedAt);
          } else {
            requestAnimationFrame(check);
          }
        };
        requestAnimationFrame(check);
      });
      latencies.push(Math.round(presentedAt - t0));
    }
    return { ms: Math.round(performance.now() - started), latency_ms: latencies };
  }, shown - 1);

  // 5. Cine from the first B-scan to the last.
  await page.evaluate(() => window.readroomViewer.send({ type: "view", set: { slice: 0 } }));
  await page.waitForFunction(() => window.readroomViewer.state.slice === 0 && window.readroomViewer.badge === "LOSSLESS", null, { timeout: 30000, polling: 5 });
  await recordAcks(page, "benchAcks");
  await page.evaluate(() => {
    const v = window.readroomViewer.owner;
    window.benchFrames = [];
    const count = (now, metadata) => {
      window.benchFrames.push({ now, presented: metadata.presentedFrames });
      v.video.requestVideoFrameCallback(count);
    };
    v.video.requestVideoFrameCallback(count);
  });
  const decodedStats = () => page.evaluate(async () => {
    const report = await window.readroomViewer.owner.conn.pc.getStats();
    let out = { decoded: 0, dropped: 0, bytes: 0 };
    report.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") out = { decoded: s.framesDecoded || 0, dropped: s.framesDropped || 0, bytes: s.bytesReceived || 0 };
    });
    return out;
  });
  const cineBefore = await decodedStats();
  await page.keyboard.down("ArrowDown");
  await page.waitForFunction(() => window.readroomViewer.state.slice === 1, null, { timeout: 10000, polling: "raf" });
  const cineStart = await page.evaluate(() => performance.now());
  await page.keyboard.down("ArrowDown");
  await page.waitForFunction((last) => window.readroomViewer.state.slice === last, shown - 1, { timeout: 60000, polling: "raf" });
  await sleep(300);
  await page.keyboard.up("ArrowDown");
  const cineAfter = await decodedStats();
  const cine = await page.evaluate((from) => {
    const acks = window.benchAcks;
    const seq = acks.length > 1 ? acks[1].seq : null;
    const run = acks.filter((a) => a.seq === seq);
    const frames = window.benchFrames.filter((f) => f.now >= from);
    const first = frames[0];
    const last = frames[frames.length - 1];
    const presented = frames.length ? last.presented - first.presented + 1 : 0;
    const ms = frames.length > 1 ? last.now - first.now : 0;
    return {
      steps: run.length,
      in_order: run.every((a, i) => i === 0 || a.slice === run[i - 1].slice + 1),
      callbacks: frames.length,
      presented,
      ms: Math.round(ms),
      per_second: ms > 0 ? Math.round(((frames.length - 1) * 10000) / ms) / 10 : null,
    };
  }, cineStart);
  cine.frames_decoded = cineAfter.decoded - cineBefore.decoded;
  cine.frames_dropped = cineAfter.dropped - cineBefore.dropped;
  cine.video_bytes = cineAfter.bytes - cineBefore.bytes;

  // 6. Quality of the streamed B-scans against the render.
  const quality = [];
  for (const slice of [16, 48, 80, 112].filter((s) => s < shown)) {
    await page.evaluate((s) => window.readroomViewer.send({ type: "view", set: { slice: s - 1 } }), slice);
    await page.waitForFunction((s) => window.readroomViewer.state.slice === s - 1 && window.readroomViewer.badge === "LOSSLESS", slice, { timeout: 30000, polling: 5 });
    const bytesBefore = (await decodedStats()).bytes;
    await page.evaluate(() => window.readroomViewer.send({ type: "view", set: { slice_delta: 1 } }));
    await page.waitForFunction((s) => window.readroomViewer.state.slice === s && window.readroomViewer.badge === "LOSSLESS", slice, { timeout: 30000, polling: 5 });
    await sleep(100);
    const compared = await compareVideoToLossless(page);
    const measured = {
      psnr: compared.psnr === null ? null : Math.round(100 * compared.psnr) / 100,
      ssim: compared.ssim === null ? null : Math.round(10000 * compared.ssim) / 10000,
    };
    const bytesAfter = (await decodedStats()).bytes;
    quality.push({ slice, ...measured, frame_bytes: bytesAfter - bytesBefore });
  }
  return {
    cold_ms: cold,
    cold_marks: coldMarks,
    cold_oct_ms: coldOct,
    cold_oct_marks: coldOctMarks,
    cold_ice_pairs: coldIce,
    next_ms: next,
    scroll: {
      slices: shown,
      ms: scrollMs,
      step_ms: steps,
      video_bytes: after.video - before.video,
      transport_bytes: after.transport - before.transport,
    },
    settle_ms: Math.round(settle),
    in_page: inPage,
    cine,
    quality,
    page_errors: problems.page_errors,
    console_errors: problems.console_errors,
  };
});
