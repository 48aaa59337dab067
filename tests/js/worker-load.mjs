// Worker-tier benchmark, load phase (tests/benches/worker_bench.rs): several graders' pages
// stream at once, each changing its view once a second (a B-scan or zoom step), while the
// harness measures the worker processes' CPU. Every page signs in with its own link and opens
// the first case of its worklist.
//
// Parameters (READROOM_BROWSER_PARAMS): base_url, links[], seconds, dir. Writes `loaded` in
// `dir` once every page streams (the harness starts measuring), `done` when the inputs stop.
// Prints: RESULT {pages, inputs, acked, page_errors}.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { newUser, params, run, waitForPage } from "./lib/browser.mjs";

const p = params();
for (const key of ["base_url", "links", "seconds", "dir"]) if (!p[key]) throw new Error(`${key} is required`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

run(async (browser) => {
  const pages = [];
  const problems = [];
  for (const link of p.links) {
    const user = await newUser(browser, { baseURL: p.base_url, viewport: { width: 1024, height: 768 } });
    await user.page.goto(link);
    await waitForPage(user.page, "worklist");
    const worklist = await user.page.evaluate(async () => (await import(document.querySelector('script[type="module"]').src.replace(/app\.js$/, "api.js"))).api("/api/worklist"));
    const item = worklist[pages.length % worklist.length];
    await user.page.goto(`/cases/${item.case_id}`);
    pages.push(user.page);
    problems.push(user.problems);
  }
  await Promise.all(pages.map((page) => page.waitForFunction(
    () => window.readroomViewer && window.readroomViewer.phase === "streaming",
    null,
    { timeout: 60000, polling: 50 },
  )));
  writeFileSync(join(p.dir, "loaded"), String(Date.now()));
  let inputs = 0;
  const until = Date.now() + p.seconds * 1000;
  let step = 0;
  while (Date.now() < until) {
    step += 1;
    const zoom = step % 2 ? 2 : "fit";
    await Promise.all(pages.map((page) => page.evaluate((z) => window.readroomViewer.send({ type: "view", set: { zoom: z } }), zoom)));
    inputs += pages.length;
    await sleep(1000);
  }
  writeFileSync(join(p.dir, "done"), String(Date.now()));
  const acked = await Promise.all(pages.map((page) => page.evaluate(() => window.readroomViewer.frame)));
  return { pages: pages.length, inputs, frames: acked, page_errors: problems.flatMap((x) => x.page_errors) };
});
