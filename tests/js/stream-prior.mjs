// A grader compares a case with the subject's prior visit: the real viewer opens the case, shows
// the `prior` layout (current | prior side by side) of an exam the prior visit has too, waits for
// that frame, then leaves the page so the worker ends and reports the session. The Rust test reads
// the audit log: the prior visit's case must record that it was shown.
//
// Parameters (READROOM_BROWSER_PARAMS):
//   base_url   "http://127.0.0.1:PORT"
//   link_url   one-time sign-in URL of a grader
//   case_id    a case assigned to that grader, whose subject has a prior visit
//
// Prints: RESULT { exam, errors, frame_before, frame_after, problems }

import { newUser, params, run, waitForPage } from "./lib/browser.mjs";

const p = params();
for (const key of ["base_url", "link_url", "case_id"]) if (!p[key]) throw new Error(`${key} is required`);

run(async (browser) => {
  const { page, problems } = await newUser(browser, { baseURL: p.base_url });
  await page.goto(p.link_url);
  await waitForPage(page, "worklist");
  await page.goto(`/cases/${p.case_id}`);
  await page.waitForFunction(() => document.querySelector('.viewer[data-state="streaming"]') !== null, null, { timeout: 30000, polling: 20 });
  const shape = await page.evaluate(() => window.readroomViewer.shape);
  // An exam of this visit that the prior visit has too (same kind and eye).
  const exam = shape.exams.find((e) => (shape.prior || []).some((q) => q.kind === e.kind && q.eye === e.eye));
  if (!exam) return { error: "the case's shape has no exam with a prior-visit counterpart", shape };
  const frameBefore = await page.evaluate(() => window.readroomViewer.frame);
  await page.evaluate((id) => window.readroomViewer.send({ type: "view", set: { layout: "prior", exam: id } }), exam.id);
  await page.waitForFunction((before) => window.readroomViewer.frame > before, frameBefore, { timeout: 10000, polling: 10 });
  const frameAfter = await page.evaluate(() => window.readroomViewer.frame);
  const errors = await page.evaluate(() => window.readroomViewer.errors);
  // Leaving the case page closes the connection; the worker reports the session.
  await page.goto("/");
  await waitForPage(page, "worklist");
  return { exam: exam.id, errors, frame_before: frameBefore, frame_after: frameAfter, problems };
});
