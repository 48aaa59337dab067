// A grader whose network allows nothing but the TURN relay: the server hands out
// `ice_transport_policy: "relay"` and short-lived TURN credentials (`GET /api/stream/config`),
// so the viewer's peer connection gathers relayed candidates only. The stream must play, the
// selected candidate pair's local candidate must be `relay`, a view change must be answered,
// and the grade must be submitted. Then credentials the relay must refuse (forged, expired)
// are tried from the same page: no relayed candidate, a 401 from the relay instead.
//
// Parameters (READROOM_BROWSER_PARAMS): base_url, link_url, case_id, values (the grade),
// refused: [{label, urls, username, credential}].
// Prints: RESULT {...} (see the end).

import { newUser, pageApi, params, run, waitForPage } from "./lib/browser.mjs";

const p = params();
for (const key of ["base_url", "link_url", "case_id", "values", "refused"]) if (!p[key]) throw new Error(`${key} is required`);

/** Gathers with relay-only policy and `server`; returns the candidates and the ICE errors. */
function tryRelay(page, server) {
  return page.evaluate(async (server) => {
    const pc = new RTCPeerConnection({
      iceTransportPolicy: "relay",
      iceServers: [{ urls: server.urls, username: server.username, credential: server.credential }],
    });
    const candidates = [];
    const errors = [];
    pc.addEventListener("icecandidate", (event) => {
      if (event.candidate && event.candidate.candidate) candidates.push(event.candidate.candidate);
    });
    pc.addEventListener("icecandidateerror", (event) => errors.push({ code: event.errorCode, text: event.errorText }));
    pc.createDataChannel("probe");
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, 8000);
      pc.addEventListener("icegatheringstatechange", () => {
        if (pc.iceGatheringState === "complete") {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    pc.close();
    return { candidates, errors };
  }, server);
}

run(async (browser) => {
  const { page, problems } = await newUser(browser, { baseURL: p.base_url, viewport: { width: 1280, height: 800 } });
  await page.goto(p.link_url);
  await waitForPage(page, "worklist");
  const config = await pageApi(page, "/api/stream/config");
  if (!config.ok) throw new Error(`stream config: ${JSON.stringify(config)}`);

  const opened = Date.now();
  await page.goto(`/cases/${p.case_id}`);
  await page.waitForFunction(
    () => document.querySelector('.viewer[data-state="streaming"]') !== null,
    null,
    { timeout: 30000, polling: 10 },
  );
  await page.waitForFunction(
    async () => ((await window.readroomViewer.stats()).framesDecoded || 0) > 0,
    null,
    { timeout: 20000, polling: 50 },
  );
  const firstFrameMs = Date.now() - opened;
  const stats = await page.evaluate(() => window.readroomViewer.stats());

  // A view change goes over the relayed data channel and is answered.
  const wanted = { zoom: 2, window: 0.5, level: 0.375 };
  const changeSent = Date.now();
  await page.evaluate((set) => window.readroomViewer.send({ type: "view", set }), wanted);
  await page.waitForFunction(
    (w) => {
      const s = window.readroomViewer.state;
      return s && s.window === w.window && s.level === w.level && s.zoom !== "fit";
    },
    wanted,
    { timeout: 15000, polling: 10 },
  );
  const viewChangeMs = Date.now() - changeSent;
  const framesBefore = stats.framesDecoded;
  await page.waitForFunction(
    async (before) => ((await window.readroomViewer.stats()).framesDecoded || 0) > before,
    framesBefore,
    { timeout: 10000, polling: 50 },
  );
  const after = await page.evaluate(() => window.readroomViewer.stats());

  const grade = await pageApi(page, `/api/cases/${p.case_id}/grade`, { method: "POST", body: { values: p.values } });
  const phase = await page.evaluate(() => window.readroomViewer.phase);

  const refused = [];
  for (const server of p.refused) {
    const outcome = await tryRelay(page, server);
    refused.push({ label: server.label, ...outcome });
  }

  return {
    config: config.body,
    first_frame_ms: firstFrameMs,
    selected: {
      local_candidate_type: stats.localCandidateType ?? null,
      remote_candidate_type: stats.remoteCandidateType ?? null,
      relay_protocol: stats.relayProtocol ?? null,
    },
    frames_decoded: after.framesDecoded,
    selected_after_view_change: after.localCandidateType ?? null,
    view_change_ms: viewChangeMs,
    grade: grade.ok ? { ok: true, kind: grade.body.kind, version: grade.body.version } : grade,
    phase,
    refused,
    console_errors: problems.console_errors,
    page_errors: problems.page_errors,
    http_errors: problems.http_errors,
    failed_requests: problems.failed_requests,
  };
});
