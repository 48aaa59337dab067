// Opens a case in the real viewer and exercises the stream: frames decoded at the viewport's
// device size, OCT slice steps, a held ↓ playing the volume (cine) and a held ↑ released
// half-way, zoom, red-free, the lossless settle and its badge, bad
// data-channel messages, and that no HTTP response carries source image bytes.
//
// Parameters (READROOM_BROWSER_PARAMS):
//   base_url     "http://127.0.0.1:PORT"
//   link_url     one-time sign-in URL of a grader
//   case_id      a case assigned to that grader (with an OCT exam)
//   probes       hex strings cut from the bundle's source files; no response may contain one
//   screenshot   path for a PNG screenshot of the lossless canvas
//   window       optional {width, height} of the browser window (default 1280×800)
//   dpr          optional device scale factor (default 1)
//
// Prints: RESULT {...} (see the fields at the end).

import { writeFileSync } from "node:fs";
import { compareVideoToLossless as compareVideo, newUser, params, recordAcks, run, waitForPage } from "./lib/browser.mjs";

const p = params();
for (const key of ["base_url", "link_url", "case_id"]) if (!p[key]) throw new Error(`${key} is required`);

const probes = (p.probes || []).map((hex) => Buffer.from(hex, "hex"));

run(async (browser) => {
  const { page, problems, context } = await newUser(browser, {
    baseURL: p.base_url,
    viewport: p.window || { width: 1280, height: 800 },
  });
  if (p.dpr && p.dpr !== 1) {
    // A second context with a device scale factor (newUser fixes 1).
    await context.close();
    return { error: "dpr other than 1 is run through stream-dpr" };
  }

  // Every HTTP response body the browser receives while signed in, checked against the probes.
  const leaks = [];
  let responses = 0;
  page.on("response", async (response) => {
    try {
      const body = await response.body();
      responses += 1;
      for (const probe of probes) {
        if (body.includes(probe)) leaks.push(`${new URL(response.url()).pathname} contains source bytes`);
      }
    } catch {
      // Redirects and aborted requests have no body.
    }
  });

  await page.goto(p.link_url);
  await waitForPage(page, "worklist");

  const opened = Date.now();
  await page.goto(`/cases/${p.case_id}`);
  // Polled in the page (waitForSelector's backoff grows to 500 ms steps).
  await page.waitForFunction(() => document.querySelector('.viewer[data-state="streaming"]') !== null, null, { timeout: 30000, polling: 5 });
  const firstFrameMs = Date.now() - opened;

  const viewer = (expr) => page.evaluate(expr);
  const waitFor = (fn, arg, timeout = 15000) => page.waitForFunction(fn, arg, { timeout, polling: 20 });
  const settled = async (afterFrame) => {
    await waitFor(
      (after) => {
        const v = window.readroomViewer;
        return v && v.lossless && v.lossless.verified && v.lossless.frame > after && v.lossless.frame === v.frame;
      },
      afterFrame,
    );
    return viewer(() => {
      const v = window.readroomViewer;
      return { frame: v.lossless.frame, sha256: v.lossless.sha256, badge: v.badge, state: v.state, width: v.lossless.width, height: v.lossless.height, format: v.lossless.format, bytes: v.lossless.bytes };
    });
  };
  // Pixels of the lossless canvas and of the current video frame, compared (PSNR in dB).
  const compareVideoToLossless = () => compareVideo(page);

  const initial = await settled(0);
  const stats = await page.evaluate(() => window.readroomViewer.stats());
  // The browser's ICE checks on the pair it selected, as it counted them: a check the worker
  // left unanswered stays counted as sent (its first, nominating check once cost ~50 ms on
  // every session). Read until the counts agree, or for 2 s (a check may be in flight).
  const iceChecks = await viewer(async () => {
    const pc = window.readroomViewer.owner.conn.pc;
    let last = null;
    for (let i = 0; i < 40; i++) {
      const report = await pc.getStats();
      report.forEach((s) => {
        if (s.type === "transport" && s.selectedCandidatePairId) {
          const pair = report.get(s.selectedCandidatePairId);
          last = { requests_sent: pair.requestsSent, responses_received: pair.responsesReceived };
        }
      });
      if (last && last.requests_sent === last.responses_received) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return last;
  });
  const shape = await viewer(() => window.readroomViewer.shape);

  // OCT: pick the first OCT exam, step two B-scans down with the keyboard.
  const oct = shape.exams.find((exam) => exam.kind === "oct");
  let octResult = null;
  if (oct) {
    await page.evaluate((id) => window.readroomViewer.send({ type: "view", set: { exam: id } }), oct.id);
    const onOct = await settled(initial.frame);
    await page.keyboard.press("ArrowDown");
    await page.keyboard.press("ArrowDown");
    const stepped = await settled(onOct.frame);
    // The lossless frame can be verified before the <video> has presented the last H.264
    // frame (a loaded machine decodes late): give the video up to 5 s to catch up, keeping
    // the best match, so a video stuck on an older frame still fails.
    let match = await compareVideoToLossless();
    for (let tries = 0; match.psnr <= 30 && tries < 50; tries += 1) {
      await page.waitForTimeout(100);
      const again = await compareVideoToLossless();
      if (again.psnr > match.psnr) match = again;
    }
    octResult = { before: onOct.state.slice, after: stepped.state.slice, slices: oct.slices, sha_before: onOct.sha256, sha_after: stepped.sha256, video_psnr: match.psnr, mean_diff: match.mean_diff, sizes: match.sizes };

    // Cine: ↓ held (a press, then the key's auto-repeat) plays to the last B-scan. Every
    // acknowledgement is recorded as the viewer receives it, and every frame presented.
    await recordAcks(page, "cineAcks");
    await page.evaluate(() => {
      const v = window.readroomViewer.owner;
      window.cinePresented = [];
      const count = (now) => {
        window.cinePresented.push(now);
        v.video.requestVideoFrameCallback(count);
      };
      v.video.requestVideoFrameCallback(count);
    });
    const startSlice = stepped.state.slice;
    await page.keyboard.down("ArrowDown");
    await waitFor((s) => window.readroomViewer.state.slice === s + 1, startSlice);
    await page.keyboard.down("ArrowDown");
    await waitFor((last) => window.readroomViewer.state.slice === last, oct.slices - 1, 30000);
    await page.keyboard.up("ArrowDown");
    const played = await settled(stepped.frame);
    const acks = await viewer(() => window.cineAcks);
    const cineSeq = acks.length > 1 ? acks[1].seq : null;
    const run = acks.filter((a) => a.seq === cineSeq);
    const presented = await page.evaluate((from) => window.cinePresented.filter((t) => t >= from).length, run.length ? run[0].at - 1 : 0);
    // ↑ held for a moment, then released: the run stops where it is and settles.
    await page.keyboard.down("ArrowUp");
    await page.keyboard.down("ArrowUp");
    await page.waitForTimeout(250);
    await page.keyboard.up("ArrowUp");
    const stopped = await settled(played.frame);
    await page.waitForTimeout(300);
    const later = await viewer(() => ({ slice: window.readroomViewer.state.slice, frame: window.readroomViewer.frame }));
    octResult.cine = {
      start: startSlice,
      first_step: acks.length ? acks[0].slice : null,
      played: run.map((a) => a.slice),
      frames: run.map((a) => a.frame),
      ms: run.length > 1 ? Math.round(run[run.length - 1].at - run[0].at) : null,
      presented,
      end_badge: played.badge,
      end_slice: played.state.slice,
      stopped_slice: stopped.state.slice,
      stopped_badge: stopped.badge,
      later,
      stopped_frame: stopped.frame,
    };
  }

  // Fundus: zoom in, then red-free.
  const fundus = shape.exams.find((exam) => exam.kind === "fundus");
  let fundusResult = null;
  if (fundus) {
    const last = await viewer(() => window.readroomViewer.frame);
    await page.evaluate((id) => window.readroomViewer.send({ type: "view", set: { exam: id } }), fundus.id);
    const fit = await settled(last);
    await page.keyboard.press("+");
    const zoomed = await settled(fit.frame);
    await page.keyboard.press("r");
    const redFree = await settled(zoomed.frame);
    // In red-free the image is grey: R = G = B over the central area of the lossless frame.
    const grey = await page.evaluate(() => {
      const c = window.readroomViewer.canvas;
      const ctx = c.getContext("2d", { willReadFrequently: true });
      const w = Math.floor(c.width / 4);
      const h = Math.floor(c.height / 4);
      const d = ctx.getImageData(Math.floor(c.width / 2 - w / 2), Math.floor(c.height / 2 - h / 2), w, h).data;
      let colour = 0;
      for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - d[i + 1]) > 1 || Math.abs(d[i + 1] - d[i + 2]) > 1) colour += 1;
      return { coloured: colour, pixels: d.length / 4 };
    });
    fundusResult = { fit: fit.sha256, zoomed: zoomed.sha256, red_free: redFree.sha256, zoom_before: fit.state.zoom, zoom_after: zoomed.state.zoom, red_free_state: redFree.state.red_free, grey };
    if (p.screenshot) {
      const png = await page.evaluate(() => window.readroomViewer.canvas.toDataURL("image/png"));
      writeFileSync(p.screenshot, Buffer.from(png.split(",")[1], "base64"));
    }
  }

  // Bad messages: each gets an error reply and the session goes on.
  const errorsBefore = await viewer(() => window.readroomViewer.errors.length);
  await page.evaluate(() => {
    const v = window.readroomViewer;
    v.sendRaw("{not json");
    v.sendRaw(JSON.stringify({ v: 1, type: "launch_missiles", seq: 9001 }));
    v.sendRaw(JSON.stringify({ v: 1, type: "view", seq: 9002, set: { slice: 100000 } }));
    v.sendRaw(JSON.stringify({ v: 1, type: "view", seq: 9003, set: { zoom: "enormous" } }));
    v.sendRaw(JSON.stringify({ v: 1, type: "ping", seq: 9004, pad: "x".repeat(12000) }));
  });
  await waitFor((n) => window.readroomViewer.errors.length >= n + 5, errorsBefore);
  const errors = (await viewer(() => window.readroomViewer.errors)).slice(errorsBefore).map((e) => e.code);
  const afterErrors = await viewer(() => window.readroomViewer.frame);
  await page.keyboard.press("0");
  const survived = await settled(afterErrors);

  const final = await viewer(() => ({ session: window.readroomViewer.sessionId, badge: window.readroomViewer.badge }));
  // Leave the page: the session must end on the worker.
  await page.goto("/");
  await waitForPage(page, "worklist");
  await page.waitForTimeout(300);

  return {
    first_frame_ms: firstFrameMs,
    ice_checks: iceChecks,
    frame_width: stats.frameWidth,
    frame_height: stats.frameHeight,
    frames_decoded: stats.framesDecoded,
    viewport: initial.state.viewport,
    initial_badge: initial.badge,
    initial_sha: initial.sha256,
    initial_format: initial.format,
    initial_bytes: initial.bytes,
    oct: octResult,
    fundus: fundusResult,
    errors,
    survived_badge: survived.badge,
    survived_sha: survived.sha256,
    session: final.session,
    responses,
    leaks,
    console_errors: problems.console_errors,
    page_errors: problems.page_errors,
    csp_violations: problems.csp_violations,
  };
});
