// Input → frame latency probe (tests/tests/stream_latency.rs runs it; not part of the suite).
//
// Opens the OCT case, waits for its first lossless frame, then times `steps` slice steps one at
// a time, 40 ms apart (the loop of stream-bench.mjs). Per step, from requestVideoFrameCallback's
// metadata, in ms after the input was sent:
//   received   the frame's last packet arrived (`receiveTime`)
//   decoded    `receiveTime` + `processingDuration` (decode time only: a frame held in the
//              jitter buffer before decoding is not counted, so this is a lower bound)
//   presented  `presentationTime`: handed to the compositor, every wait included
//   callback   the callback's `now`, the next vsync after that (the loop's fixed 40 ms period
//              locks the input to the vsync phase, so this moves in 16.7 ms steps)
// and `t0_epoch` (the input's wall-clock time, to line up with the worker's debug log).
//
// Parameters: base_url, link_url, case_id, window, steps.
// Result: { steps: [{t0_epoch, received, decoded, presented, callback}], sdp: {local, remote} },
// or { failed, diagnosis, sdp } when the viewer does not reach the streaming state (peer
// connection state, inbound-rtp and transport stats: packets that arrive without making an
// inbound-rtp entry were dropped before the video receiver).

import { newUser, params, run, waitForPage } from "./lib/browser.mjs";

const p = params();
const steps = p.steps ?? 100;

run(async (browser) => {
  const { page } = await newUser(browser, { baseURL: p.base_url, viewport: p.window || { width: 1920, height: 1080 } });
  await page.goto(p.link_url);
  await waitForPage(page, "worklist");
  await page.goto(`/cases/${p.case_id}`);
  const sdp = () =>
    page.evaluate(() => {
      const conn = window.readroomViewer && window.readroomViewer.owner.conn;
      const pc = conn && conn.pc;
      return pc ? { local: pc.localDescription && pc.localDescription.sdp, remote: pc.remoteDescription && pc.remoteDescription.sdp } : null;
    });
  try {
    await page.waitForFunction(() => document.querySelector('.viewer[data-state="streaming"]') !== null, null, { timeout: 10000, polling: 5 });
  } catch (err) {
    const diagnosis = await page.evaluate(async () => {
      const v = window.readroomViewer;
      const out = { phase: v && v.phase, readyState: v && v.video.readyState, videoWidth: v && v.video.videoWidth };
      const pc = v && v.owner.conn && v.owner.conn.pc;
      if (pc) {
        out.connection = pc.connectionState;
        const report = await pc.getStats();
        report.forEach((entry) => {
          if (entry.type === "inbound-rtp" || entry.type === "transport") out[entry.type] = entry;
        });
      }
      return out;
    });
    return { failed: String(err), diagnosis, sdp: await sdp() };
  }
  const shape = await page.evaluate(() => window.readroomViewer.shape);
  const oct = shape.exams.find((exam) => exam.kind === "oct");
  if (!oct) throw new Error("the case has no OCT exam");
  await page.evaluate((id) => window.readroomViewer.send({ type: "view", set: { exam: id } }), oct.id);
  await page.waitForFunction(() => {
    const v = window.readroomViewer;
    return v.lossless && v.lossless.verified && v.lossless.frame === v.frame;
  }, null, { timeout: 15000, polling: 10 });

  const timing = await page.evaluate(async (n) => {
    const v = window.readroomViewer;
    const out = [];
    const nextFrame = () => new Promise((resolve) => v.video.requestVideoFrameCallback((now, meta) => resolve({ now, meta })));
    for (let i = 0; i < n; i += 1) {
      const wait = nextFrame();
      const t0 = performance.now();
      v.send({ type: "view", set: { slice_delta: i % 20 < 10 ? 1 : -1 } });
      const { now, meta } = await wait;
      const row = { t0_epoch: performance.timeOrigin + t0, callback: now - t0, presented: meta.presentationTime - t0 };
      if (meta.receiveTime !== undefined) {
        row.received = meta.receiveTime - t0;
        if (meta.processingDuration !== undefined) row.decoded = meta.receiveTime + meta.processingDuration * 1000 - t0;
      }
      out.push(row);
      await new Promise((r) => setTimeout(r, 40));
    }
    return out;
  }, steps);
  return { steps: timing, sdp: await sdp() };
});
