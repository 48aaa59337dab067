// Streaming benchmark on one large case (tests/benches/stream_bench.rs runs it): time to first
// frame, then a human-paced grading session whose bytes the harness compares with the bundle.
//
// Parameters (READROOM_BROWSER_PARAMS):
//   base_url     "http://127.0.0.1:PORT"
//   link_url     one-time sign-in URL of a grader
//   case_id      the case (fundus photographs and OCT volumes of both eyes)
//   window       {width, height} of the browser window
//   opens        how many times to open the case cold (time to first frame)
//   scroll_hz    B-scans per second while scrolling a volume (a grader's wheel)
//   stops        B-scans per volume the grader stops on and looks at (the view settles)
//   look_ms      how long the grader looks at a settled view
//
// The session: the first view (fundus OD) settles; 1:1 zoom, two pans, red-free on and off,
// back to fit; fundus OS; then for each eye's first OCT volume: the volume scrolled end to end
// at `scroll_hz`, stopping on `stops` evenly spaced B-scans; then both eyes side by side.
//
// Prints RESULT {...}: first_frame_ms[], open_windows[] ([start, streaming] epoch ms per open),
// quiet_window ([start, end] epoch ms: a second with nothing going on), phases[] ({open, offer-sent, answer, ice-connected,
// connected, channel-open, ready, first-frame}: ms since navigation, per open), session {stream_id, ms, settles, video_bytes_received,
// frames_decoded, inputs, slices_scrolled}, viewport.

import { newUser, params, run, waitForPage } from "./lib/browser.mjs";

const p = params();
for (const key of ["base_url", "link_url", "case_id"]) if (!p[key]) throw new Error(`${key} is required`);

const opens = p.opens ?? 5;
const scrollHz = p.scroll_hz ?? 15;
const stops = p.stops ?? 5;
const lookMs = p.look_ms ?? 1500;

run(async (browser) => {
  const { page } = await newUser(browser, { baseURL: p.base_url, viewport: p.window || { width: 1920, height: 1080 } });
  await page.goto(p.link_url);
  await waitForPage(page, "worklist");

  // Each open's wall-clock window (epoch ms), for the harness's samples of the bytes the server
  // process read meanwhile (the ciphertext the worker fetched for the first frame).
  const openWindows = [];
  const openCase = async () => {
    const t0 = Date.now();
    await page.goto(`/cases/${p.case_id}`);
    await page.waitForFunction(() => document.querySelector('.viewer[data-state="streaming"]') !== null, null, { timeout: 30000, polling: 5 });
    const t1 = Date.now();
    openWindows.push([t0, t1]);
    return t1 - t0;
  };

  // A quiet second on the worklist: what the server process reads with nothing going on.
  await page.waitForTimeout(300);
  const quietWindow = [Date.now()];
  await page.waitForTimeout(1000);
  quietWindow.push(Date.now());

  // Time to first frame, cold: each open is a new viewer session. The viewer's User Timing
  // marks (`readroom:<phase>`, ms since the page's navigation started) say where it went.
  const firstFrame = [];
  const phases = [];
  for (let i = 0; i < opens; i += 1) {
    if (i > 0) {
      await page.goto("/");
      await waitForPage(page, "worklist");
      // The previous session's end and the worklist's requests are done before the next open.
      await page.waitForTimeout(300);
    }
    firstFrame.push(await openCase());
    phases.push(await page.evaluate(() => Object.fromEntries(
      performance.getEntriesByType("mark").filter((m) => m.name.startsWith("readroom:")).map((m) => [m.name.slice(9), m.startTime]),
    )));
  }

  // The grading session runs in the last open.
  const started = Date.now();
  let inputs = 0;
  let settles = 0;
  const send = async (set) => {
    inputs += 1;
    await page.evaluate((s) => window.readroomViewer.send({ type: "view", set: s }), set);
  };
  // Waits for the current view's lossless frame to be verified, then looks at it.
  const settle = async () => {
    const before = await page.evaluate(() => window.readroomViewer.frame);
    await page.waitForFunction((after) => {
      const v = window.readroomViewer;
      return v.frame >= after && v.lossless && v.lossless.verified && v.lossless.frame === v.frame;
    }, before, { timeout: 20000, polling: 10 });
    settles += 1;
    await page.waitForTimeout(lookMs);
  };
  const change = async (set) => {
    const before = await page.evaluate(() => window.readroomViewer.frame);
    await send(set);
    await page.waitForFunction((after) => window.readroomViewer.frame > after, before, { timeout: 20000, polling: 10 });
  };

  const shape = await page.evaluate(() => window.readroomViewer.shape);
  const viewport = await page.evaluate(() => window.readroomViewer.state.viewport);
  const exam = (kind, eye) => shape.exams.find((e) => e.kind === kind && e.eye === eye);
  const fundusOd = exam("fundus", "OD");
  const fundusOs = exam("fundus", "OS");
  const octs = [exam("oct", "OD"), exam("oct", "OS")].filter(Boolean);
  if (!fundusOd || !fundusOs || octs.length !== 2) throw new Error(`the case needs fundus and OCT of both eyes: ${JSON.stringify(shape.exams)}`);

  // Fundus OD.
  if (await page.evaluate(() => window.readroomViewer.state.exam) !== fundusOd.id) await change({ exam: fundusOd.id });
  await settle();
  await change({ zoom: 1 });
  await settle();
  await change({ center: [0.4, 0.45] });
  await settle();
  await change({ center: [0.6, 0.55] });
  await settle();
  await change({ red_free: true });
  await settle();
  await change({ red_free: false, zoom: "fit" });
  await settle();
  // Fundus OS.
  await change({ exam: fundusOs.id });
  await settle();

  // OCT volumes: scrolled end to end, with stops.
  let slicesScrolled = 0;
  for (const oct of octs) {
    await change({ exam: oct.id, slice: 0 });
    await settle();
    const stopAt = new Set(Array.from({ length: stops }, (_, i) => Math.round(((i + 1) * (oct.slices - 1)) / (stops + 1))));
    for (let s = 1; s < oct.slices; s += 1) {
      const t = Date.now();
      await send({ slice: s });
      slicesScrolled += 1;
      if (stopAt.has(s)) {
        await settle();
      } else {
        await page.waitForTimeout(Math.max(0, 1000 / scrollHz - (Date.now() - t)));
      }
    }
    await settle();
  }

  // Both eyes side by side.
  await change({ layout: "both_eyes" });
  await settle();

  const stats = await page.evaluate(() => window.readroomViewer.stats());
  const streamId = await page.evaluate(() => window.readroomViewer.streamId);
  const ms = Date.now() - started;
  await page.goto("/");
  await waitForPage(page, "worklist");
  return {
    first_frame_ms: firstFrame,
    open_windows: openWindows,
    quiet_window: quietWindow,
    phases,
    session: {
      stream_id: streamId,
      ms,
      settles,
      inputs,
      slices_scrolled: slicesScrolled,
      video_bytes_received: stats.bytesReceived || 0,
      frames_decoded: stats.framesDecoded || 0,
    },
    viewport,
  };
});
