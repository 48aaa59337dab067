// A browser that cannot decode H.264 gets VP8: H.264 is removed from the browser's receive
// capabilities before the viewer loads (so its offer lists no H.264, as in a Chromium built
// without proprietary codecs), then the case is opened, an OCT B-scan stepped and the
// lossless settle verified, as in stream.mjs.
//
// Parameters (READROOM_BROWSER_PARAMS): base_url, link_url, case_id (a case with an OCT exam).
// Prints: RESULT {...}.

import { compareVideoToLossless, newUser, params, run, waitForPage } from "./lib/browser.mjs";

const p = params();
for (const key of ["base_url", "link_url", "case_id"]) if (!p[key]) throw new Error(`${key} is required`);

run(async (browser) => {
  const { page, problems } = await newUser(browser, { baseURL: p.base_url });
  await page.addInitScript(() => {
    const noH264 = (caps) => caps && { ...caps, codecs: caps.codecs.filter((c) => c.mimeType.toLowerCase() !== "video/h264") };
    const capabilities = RTCRtpReceiver.getCapabilities.bind(RTCRtpReceiver);
    RTCRtpReceiver.getCapabilities = (kind) => (kind === "video" ? noH264(capabilities(kind)) : capabilities(kind));
    const prefer = RTCRtpTransceiver.prototype.setCodecPreferences;
    RTCRtpTransceiver.prototype.setCodecPreferences = function (codecs) {
      return prefer.call(this, codecs.filter((c) => c.mimeType.toLowerCase() !== "video/h264"));
    };
    // A viewer that sets no preferences still must not offer H.264.
    const addTransceiver = RTCPeerConnection.prototype.addTransceiver;
    RTCPeerConnection.prototype.addTransceiver = function (...args) {
      const transceiver = addTransceiver.apply(this, args);
      if (args[0] === "video") prefer.call(transceiver, noH264(capabilities("video")).codecs);
      return transceiver;
    };
  });
  let offeredH264 = null;
  page.on("request", (request) => {
    if (request.method() === "POST" && new URL(request.url()).pathname.endsWith("/stream")) {
      const sdp = JSON.parse(request.postData() || "{}")?.offer?.sdp || "";
      offeredH264 = / H264\/90000/i.test(sdp);
    }
  });

  await page.goto(p.link_url);
  await waitForPage(page, "worklist");
  await page.goto(`/cases/${p.case_id}`);
  await page.waitForFunction(() => document.querySelector('.viewer[data-state="streaming"]') !== null, null, { timeout: 30000, polling: 5 });

  const waitFor = (fn, arg, timeout = 15000) => page.waitForFunction(fn, arg, { timeout, polling: 20 });
  const settled = async (after) => {
    await waitFor((a) => {
      const v = window.readroomViewer;
      return v && v.lossless && v.lossless.verified && v.lossless.frame > a && v.lossless.frame === v.frame;
    }, after);
    return page.evaluate(() => {
      const v = window.readroomViewer;
      return { frame: v.lossless.frame, sha256: v.lossless.sha256, badge: v.badge, slice: v.state.slice };
    });
  };
  const psnr = async () => (await compareVideoToLossless(page)).psnr ?? 0;

  const initial = await settled(0);
  const shape = await page.evaluate(() => window.readroomViewer.shape);
  const oct = shape.exams.find((exam) => exam.kind === "oct");
  if (!oct) return { error: "the case has no OCT exam" };
  await page.evaluate((id) => window.readroomViewer.send({ type: "view", set: { exam: id } }), oct.id);
  const onOct = await settled(initial.frame);
  await page.keyboard.press("ArrowDown");
  const stepped = await settled(onOct.frame);
  let best = await psnr();
  for (let tries = 0; best <= 30 && tries < 50; tries += 1) {
    await page.waitForTimeout(100);
    best = Math.max(best, await psnr());
  }
  const stats = await page.evaluate(() => window.readroomViewer.stats());
  return {
    offered_h264: offeredH264,
    mime_type: stats.mimeType,
    frames_decoded: stats.framesDecoded,
    frame_width: stats.frameWidth,
    initial_badge: initial.badge,
    slice_before: onOct.slice,
    slice_after: stepped.slice,
    stepped_badge: stepped.badge,
    video_psnr: best,
    console_errors: problems.console_errors,
    page_errors: problems.page_errors,
  };
});
