// Opens a case in the viewer and waits for the first frame and its lossless settle; reports how
// ICE connected. Used by tests/tests/stream_netns.rs (a server and Chromium in a network
// namespace with no route for multicast).
//
// Parameters (READROOM_BROWSER_PARAMS): base_url, link_url, case_id.
// Prints: RESULT {...}: `stream_status` and `stream_error` (the answer to
// POST /api/cases/{id}/stream), `offer_candidates` (the addresses in the browser's offer),
// `frames_decoded`, `badge`, `lossless_verified`, `phase`, `pair` (the selected candidate pair:
// the browser's and the worker's candidate types and addresses), console and page errors.

import { newUser, params, run, waitForPage } from "./lib/browser.mjs";

const p = params();
for (const key of ["base_url", "link_url", "case_id"]) if (!p[key]) throw new Error(`${key} is required`);

run(async (browser) => {
  const { page, problems } = await newUser(browser, { baseURL: p.base_url });
  let offerCandidates = null;
  let streamStatus = null;
  let streamError = null;
  let refused;
  const streamRefused = new Promise((resolve) => {
    refused = resolve;
  });
  page.on("request", (request) => {
    if (request.method() === "POST" && new URL(request.url()).pathname.endsWith("/stream")) {
      const sdp = JSON.parse(request.postData() || "{}")?.offer?.sdp || "";
      offerCandidates = sdp
        .split(/\r?\n/)
        .filter((line) => line.startsWith("a=candidate:"))
        .map((line) => line.split(" ").slice(4, 8).join(" "));
    }
  });
  page.on("response", async (response) => {
    const request = response.request();
    if (request.method() !== "POST" || !new URL(response.url()).pathname.endsWith("/stream")) return;
    streamStatus = response.status();
    if (!response.ok()) {
      try {
        streamError = (await response.json())?.error?.message ?? null;
      } catch {
        streamError = "(no JSON body)";
      }
      refused("refused");
    }
  });

  await page.goto(p.link_url);
  await waitForPage(page, "worklist");
  await page.goto(`/cases/${p.case_id}`);

  // Either the first lossless frame is verified, or the stream request is refused (the viewer
  // would retry; the first refusal is the answer).
  const settled = page
    .waitForFunction(
      () => {
        const v = window.readroomViewer;
        return Boolean(v && v.lossless && v.lossless.verified && v.lossless.frame === v.frame);
      },
      null,
      { timeout: 45000, polling: 20 },
    )
    .then(() => "settled")
    .catch((err) => `timeout: ${err.message.split("\n")[0]}`);
  const outcome = await Promise.race([settled, streamRefused]);

  const state = await page.evaluate(async () => {
    const v = window.readroomViewer;
    if (!v) return { phase: null };
    const stats = await v.stats();
    let pair = null;
    const pc = v.owner && v.owner.conn && v.owner.conn.pc;
    if (pc) {
      const report = await pc.getStats();
      report.forEach((entry) => {
        if (entry.type === "transport" && entry.selectedCandidatePairId) {
          const chosen = report.get(entry.selectedCandidatePairId);
          const local = chosen && report.get(chosen.localCandidateId);
          const remote = chosen && report.get(chosen.remoteCandidateId);
          pair = {
            state: chosen ? chosen.state : null,
            browser: local ? `${local.candidateType} ${local.address}:${local.port}` : null,
            worker: remote ? `${remote.candidateType} ${remote.address}:${remote.port}` : null,
          };
        }
      });
    }
    return {
      phase: v.phase,
      badge: v.badge,
      frame: v.frame,
      lossless_verified: Boolean(v.lossless && v.lossless.verified),
      frames_decoded: stats.framesDecoded || 0,
      frame_width: stats.frameWidth || 0,
      pair,
    };
  });

  return {
    outcome,
    stream_status: streamStatus,
    stream_error: streamError,
    offer_candidates: offerCandidates,
    ...state,
    console_errors: problems.console_errors,
    page_errors: problems.page_errors,
  };
});
