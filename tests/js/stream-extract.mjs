// A grader's script trying to export an OCT volume through the lossless settle: it opens the
// case in the real viewer, goes to the OCT exam, and steps through the B-scans, waiting on each
// for the lossless frame (or the worker's `lossless_withheld`). The worker's lossless budget
// must stop it; the Rust test reads what was sent from the audit log (the worker's record).
//
// Parameters (READROOM_BROWSER_PARAMS):
//   base_url   "http://127.0.0.1:PORT"
//   link_url   one-time sign-in URL of a grader
//   case_id    a case assigned to that grader, with an OCT exam
//   steps      how many B-scans to step through
//   wait_ms    how long to wait on each for its lossless frame
//
// Prints: RESULT { steps, lossless_verified, withheld: [{frame, reason, retry_after_ms}], badge,
//   badge_title: {title, withheld}, viewer_withheld, phase, problems }

import { newUser, params, run, waitForPage } from "./lib/browser.mjs";

const p = params();
for (const key of ["base_url", "link_url", "case_id"]) if (!p[key]) throw new Error(`${key} is required`);
const steps = p.steps || 12;
const waitMs = p.wait_ms || 1500;

run(async (browser) => {
  const { page, problems } = await newUser(browser, { baseURL: p.base_url });
  await page.goto(p.link_url);
  await waitForPage(page, "worklist");
  await page.goto(`/cases/${p.case_id}`);
  await page.waitForFunction(() => document.querySelector('.viewer[data-state="streaming"]') !== null, null, { timeout: 30000, polling: 20 });
  const shape = await page.evaluate(() => window.readroomViewer.shape);
  const oct = shape.exams.find((exam) => exam.kind === "oct");
  if (!oct) return { error: "the case has no OCT exam" };

  // Every `lossless_withheld` the worker sends, as the page receives it.
  await page.evaluate(() => {
    window.__withheld = [];
    const viewer = window.readroomViewer.owner;
    const onText = viewer.onText.bind(viewer);
    viewer.onText = (text) => {
      try {
        const message = JSON.parse(text);
        if (message.type === "lossless_withheld") window.__withheld.push(message);
      } catch {}
      onText(text);
    };
  });

  let verified = 0;
  for (let slice = 0; slice < Math.min(steps, oct.slices); slice += 1) {
    const frameBefore = await page.evaluate(() => window.readroomViewer.frame);
    await page.evaluate(
      ([id, s]) => window.readroomViewer.send({ type: "view", set: { exam: id, slice: s } }),
      [oct.id, slice],
    );
    await page.waitForFunction((before) => window.readroomViewer.frame > before, frameBefore, { timeout: 10000, polling: 10 });
    const frame = await page.evaluate(() => window.readroomViewer.frame);
    // The lossless frame of this view, or the worker's word that it is withheld.
    const got = await page
      .waitForFunction(
        (f) => {
          const v = window.readroomViewer;
          if (v.lossless && v.lossless.verified && v.lossless.frame === f) return "lossless";
          if (window.__withheld.some((m) => m.frame === f)) return "withheld";
          return false;
        },
        frame,
        { timeout: waitMs, polling: 20 },
      )
      .then((handle) => handle.jsonValue())
      .catch(() => "nothing");
    if (got === "lossless") verified += 1;
  }
  const withheld = await page.evaluate(() => window.__withheld.map(({ frame, reason, retry_after_ms }) => ({ frame, reason, retry_after_ms })));
  const badge = await page.evaluate(() => window.readroomViewer.badge);
  // What the grader is told: the badge's explanation while the frame on screen is withheld.
  const badgeTitle = await page.evaluate(() => {
    const el = document.querySelector(".viewer-badge");
    return el ? { title: el.title, withheld: el.dataset.withheld || "" } : null;
  });
  const viewerWithheld = await page.evaluate(() => window.readroomViewer.withheld);
  const phase = await page.evaluate(() => window.readroomViewer.phase);
  return { steps: Math.min(steps, oct.slices), lossless_verified: verified, withheld, badge, badge_title: badgeTitle, viewer_withheld: viewerWithheld, phase, problems };
});
