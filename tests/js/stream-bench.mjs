// Streaming benchmark in the real viewer (tests/benches/stream_bench.rs runs it).
//
// Parameters (READROOM_BROWSER_PARAMS):
//   base_url     "http://127.0.0.1:PORT"
//   link_url     one-time sign-in URL of a grader
//   case_id      a case assigned to that grader with an OCT exam
//   load_cases   case ids for the concurrent sessions (repeats allowed)
//   window       {width, height} of the browser window
//   opens        how many times to open the case cold (time to first frame)
//   steps        slice steps to time (input → next presented video frame)
//   settles      slice steps to time until the lossless frame is verified
//   scroll_ms    how long to scroll the OCT volume as fast as input comes (presented fps)
//   idle_ms      how long the concurrent sessions stay idle, then how long they get one input/s
//
// Prints RESULT {...}: first_frame_ms[], latencies_ms[] (input → presented), decoded_ms[]
// (input → decoded, from getStats), decoded_rvfc_ms[] (receiveTime + processingDuration, a lower
// bound), received_ms[], jitter_buffer_ms[], decode_ms[] (per frame), decoded_skipped (steps
// without exactly one decoded frame), settle_ms[], scroll {frames, ms},
// viewport, phases {baseline, open, idle, active, end} (epoch ms, for the harness's CPU/RSS
// samples), sessions.

import { newUser, params, run, waitForPage } from "./lib/browser.mjs";

const p = params();
for (const key of ["base_url", "link_url", "case_id"]) if (!p[key]) throw new Error(`${key} is required`);

const opens = p.opens ?? 5;
const steps = p.steps ?? 100;
const settles = p.settles ?? 10;
const scrollMs = p.scroll_ms ?? 3000;
const idleMs = p.idle_ms ?? 5000;
const loadCases = p.load_cases || [];

run(async (browser) => {
  const { page, context } = await newUser(browser, { baseURL: p.base_url, viewport: p.window || { width: 1920, height: 1080 } });
  await page.goto(p.link_url);
  await waitForPage(page, "worklist");

  // The streaming state is polled in the page every 5 ms: waitForSelector re-checks on a
  // backoff that grows to 500 ms steps, which rounded every open up to ~1 s.
  const openCase = async (target, id) => {
    const t0 = Date.now();
    await target.goto(`/cases/${id}`);
    await target.waitForFunction(() => document.querySelector('.viewer[data-state="streaming"]') !== null, null, { timeout: 30000, polling: 5 });
    return Date.now() - t0;
  };
  const waitFor = (target, fn, arg, timeout = 15000) => target.waitForFunction(fn, arg, { timeout, polling: 10 });

  // Time to first frame, cold: each open is a new viewer session (new peer connection, ICE,
  // DTLS, ticket, ranged reads and decryption of what the first view needs).
  const firstFrame = [];
  for (let i = 0; i < opens; i += 1) {
    firstFrame.push(await openCase(page, p.case_id));
    if (i + 1 < opens) {
      await page.goto("/");
      await waitForPage(page, "worklist");
    }
  }

  // On the OCT exam.
  const shape = await page.evaluate(() => window.readroomViewer.shape);
  const oct = shape.exams.find((exam) => exam.kind === "oct");
  if (!oct) throw new Error("the case has no OCT exam");
  await page.evaluate((id) => window.readroomViewer.send({ type: "view", set: { exam: id } }), oct.id);
  await waitFor(page, () => { const v = window.readroomViewer; return v.lossless && v.lossless.verified && v.lossless.frame === v.frame; });
  const viewport = await page.evaluate(() => window.readroomViewer.state.viewport);

  // Input → next video frame (encode on change: no other frame can come), timed three ways:
  // - received: requestVideoFrameCallback's `receiveTime` (arrival of the frame's last packet);
  // - decoded: from the inbound-rtp stats deltas over the step (exactly one frame decoded):
  //   first packet = receiveTime − Δ`totalAssemblyTime`, decoded = first packet +
  //   Δ`totalProcessingDelay` (first packet → decoded, jitter buffer included). The rVFC
  //   `receiveTime + processingDuration` is kept as `decoded_rvfc_ms`, but it is a lower bound:
  //   Chromium fills `processingDuration` with WebRTC's decode start → decode end only, so the
  //   wait between the last packet and the start of decoding is not in it;
  // - presented: the rVFC callback time (the next vsync after compositing).
  // The stats are read 40 ms after each frame, so two reads are always more than WebRTC's
  // 50 ms stats cache apart; a step with another frame count than one is left out of `decoded`.
  const timing = await page.evaluate(async (n) => {
    const v = window.readroomViewer;
    // The debug API has no raw stats; the peer connection is reached through its owner.
    const inbound = async () => {
      const pc = v.owner && v.owner.conn ? v.owner.conn.pc : null;
      if (!pc) return null;
      let found = null;
      (await pc.getStats()).forEach((e) => { if (e.type === "inbound-rtp" && e.kind === "video") found = e; });
      return found;
    };
    const out = { presented: [], decoded: [], decoded_rvfc: [], received: [], jitter_buffer: [], decode: [], skipped: 0 };
    const nextFrame = () => new Promise((resolve) => v.video.requestVideoFrameCallback((now, meta) => resolve({ now, meta })));
    let before = await inbound();
    for (let i = 0; i < n; i += 1) {
      const wait = nextFrame();
      const t0 = performance.now();
      v.send({ type: "view", set: { slice_delta: i % 20 < 10 ? 1 : -1 } });
      const { now, meta } = await wait;
      out.presented.push(now - t0);
      if (meta.receiveTime !== undefined) {
        out.received.push(meta.receiveTime - t0);
        if (meta.processingDuration !== undefined) out.decoded_rvfc.push(meta.receiveTime + meta.processingDuration * 1000 - t0);
      }
      await new Promise((r) => setTimeout(r, 40));
      const after = await inbound();
      const d = (key) => ((after && after[key]) || 0) - ((before && before[key]) || 0);
      if (after && before && meta.receiveTime !== undefined && d("framesDecoded") === 1 && after.totalProcessingDelay !== undefined) {
        const firstPacket = meta.receiveTime - d("totalAssemblyTime") * 1000;
        out.decoded.push(firstPacket + d("totalProcessingDelay") * 1000 - t0);
        out.decode.push(d("totalDecodeTime") * 1000);
        if (d("jitterBufferEmittedCount") === 1) out.jitter_buffer.push(d("jitterBufferDelay") * 1000);
      } else {
        out.skipped += 1;
      }
      before = after;
    }
    return out;
  }, steps);
  const latencies = timing.presented;

  // Input → lossless frame drawn and its hash verified in the browser.
  const settle = [];
  for (let i = 0; i < settles; i += 1) {
    const before = await page.evaluate(() => window.readroomViewer.frame);
    const t0 = Date.now();
    await page.evaluate((d) => window.readroomViewer.send({ type: "view", set: { slice_delta: d } }), i % 2 ? -1 : 1);
    await waitFor(page, (after) => { const v = window.readroomViewer; return v.frame > after && v.lossless && v.lossless.verified && v.lossless.frame === v.frame; }, before);
    settle.push(Date.now() - t0);
  }

  // Sustained scroll: an input every 16 ms (a fast wheel), frames presented per second.
  const scroll = await page.evaluate(async ({ ms, slices }) => {
    const v = window.readroomViewer;
    let frames = 0;
    let running = true;
    const count = () => { frames += 1; if (running) v.video.requestVideoFrameCallback(count); };
    v.video.requestVideoFrameCallback(count);
    const t0 = performance.now();
    let i = 0;
    while (performance.now() - t0 < ms) {
      v.send({ type: "view", set: { slice_delta: Math.floor(i / (slices - 1)) % 2 ? -1 : 1 } });
      i += 1;
      await new Promise((r) => setTimeout(r, 16));
    }
    const elapsed = performance.now() - t0;
    running = false;
    return { frames, ms: elapsed, inputs: i };
  }, { ms: scrollMs, slices: oct.slices });

  await page.goto("/");
  await waitForPage(page, "worklist");
  // Let the scroll session end and its last work (lossless frame, report) finish.
  await page.waitForTimeout(6000);

  // Concurrent sessions: a baseline with none, then N open and idle, then one input per second each.
  const phases = { baseline: Date.now() };
  await page.waitForTimeout(3000);
  phases.open = Date.now();
  const pages = [];
  for (const id of loadCases) {
    const extra = await context.newPage();
    await openCase(extra, id);
    pages.push(extra);
  }
  phases.idle = Date.now();
  await page.waitForTimeout(idleMs);
  phases.active = Date.now();
  const ticks = Math.max(1, Math.round(idleMs / 1000));
  for (let t = 0; t < ticks; t += 1) {
    const started = Date.now();
    await Promise.all(pages.map((pg, i) => pg.evaluate((d) => window.readroomViewer.send({ type: "view", set: { slice_delta: d } }), (t + i) % 2 ? -1 : 1)));
    await page.waitForTimeout(Math.max(0, 1000 - (Date.now() - started)));
  }
  phases.end = Date.now();
  const streaming = await Promise.all(pages.map((pg) => pg.evaluate(() => !!window.readroomViewer && window.readroomViewer.badge !== undefined)));
  for (const pg of pages) await pg.close();

  return {
    first_frame_ms: firstFrame,
    latencies_ms: latencies,
    decoded_ms: timing.decoded,
    decoded_rvfc_ms: timing.decoded_rvfc,
    received_ms: timing.received,
    jitter_buffer_ms: timing.jitter_buffer,
    decode_ms: timing.decode,
    decoded_skipped: timing.skipped,
    settle_ms: settle,
    scroll,
    viewport,
    phases,
    sessions: streaming.filter(Boolean).length,
  };
});
