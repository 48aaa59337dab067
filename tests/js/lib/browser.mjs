// Shared Chromium driver for readroom's browser tests (started by tests/src/browser.rs).
//
// - `params()`: the JSON parameters the Rust harness passes in READROOM_BROWSER_PARAMS.
// - `launch()`: headless Debian Chromium through playwright-core (no downloaded browser).
// - `newUser(browser, options)`: a fresh context (own cookies and storage) and page per user,
//   recording console errors, page errors, failed requests, HTTP error answers and CSP
//   violations, so tests can assert there are none.
// - `pageApi(page, path, options)`: an API call from the page through the viewer's own client.
// - `waitForFile(dir, name)`: waits for the harness to write a coordination file.
// - `run(main)`: runs `main(browser)`, prints its result as the final line `RESULT {...}`, closes
//   the browser, and exits non-zero with the error on stderr if anything throws.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.READROOM_CHROMIUM || "/usr/bin/chromium";

/** The parameters from the Rust harness (`{}` when run by hand without any). */
export function params() {
  const raw = process.env.READROOM_BROWSER_PARAMS;
  if (!raw) return {};
  try {
    return JSON.parse(raw);
  } catch (err) {
    throw new Error(`READROOM_BROWSER_PARAMS is not JSON: ${err.message}`);
  }
}

/** Launches headless Chromium. */
export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-dev-shm-usage"],
  });
}

/**
 * A new browser context and page for one user. `options.locale` (default `en-US`) sets the
 * browser language the viewer picks up; `options.baseURL` lets `page.goto("/path")` work.
 * Returns `{ context, page, problems }`; `problems` holds `console_errors`, `page_errors`,
 * `failed_requests`, `http_errors` and `csp_violations` (arrays of strings), updated live.
 */
export async function newUser(browser, { baseURL, locale = "en-US", viewport = { width: 1280, height: 800 } } = {}) {
  const context = await browser.newContext({ baseURL, locale, viewport });
  const problems = {
    console_errors: [],
    page_errors: [],
    failed_requests: [],
    http_errors: [],
    csp_violations: [],
    duplicate_ids: [],
  };
  // CSP violations reach the page as `securitypolicyviolation` events; a binding (installed
  // through the DevTools protocol, so the page's CSP does not block it) reports them here.
  await context.exposeBinding("__readroomCspViolation", (_source, violation) => {
    problems.csp_violations.push(violation);
  });
  // Two elements with one id break labels, ARIA references and tests alike: every change of
  // the document is checked (at most every 50 ms) and an id found twice is reported.
  await context.exposeBinding("__readroomDuplicateIds", (_source, ids) => {
    for (const id of ids) if (!problems.duplicate_ids.includes(id)) problems.duplicate_ids.push(id);
  });
  await context.addInitScript(() => {
    let pending = false;
    const check = () => {
      pending = false;
      const seen = new Set();
      const twice = new Set();
      for (const el of document.querySelectorAll("[id]")) (seen.has(el.id) ? twice : seen).add(el.id);
      if (twice.size) window.__readroomDuplicateIds([...twice]);
    };
    new MutationObserver(() => {
      if (pending) return;
      pending = true;
      setTimeout(check, 50);
    }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ["id"] });
  });
  await context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (event) => {
      const where = event.sourceFile ? ` at ${event.sourceFile}:${event.lineNumber}` : "";
      window.__readroomCspViolation(`${event.effectiveDirective} blocked ${event.blockedURI || "inline"}${where}`);
    });
  });
  const page = await context.newPage();
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    const text = message.text();
    // HTTP error answers are recorded (with their URL) by the response listener below; an
    // expected 401 (wrong password) is not a script error.
    if (text.startsWith("Failed to load resource: the server responded with a status of")) return;
    // Chromium also logs each CSP violation (the event above records it too).
    if (text.includes("Content Security Policy")) {
      problems.csp_violations.push(text);
      return;
    }
    problems.console_errors.push(text);
  });
  page.on("pageerror", (error) => problems.page_errors.push(String(error && error.stack ? error.stack : error)));
  page.on("requestfailed", (request) => {
    const failure = request.failure();
    const reason = failure ? failure.errorText : "failed";
    // Navigating away aborts requests still in flight; that is not a failure of the page.
    if (reason === "net::ERR_ABORTED") return;
    problems.failed_requests.push(`${request.method()} ${request.url()}: ${reason}`);
  });
  page.on("response", (response) => {
    if (response.status() >= 400) {
      problems.http_errors.push(`${response.status()} ${response.request().method()} ${new URL(response.url()).pathname}`);
    }
  });
  return { context, page, problems };
}

/** Waits until the viewer finished rendering a page (`<main data-state="ready">`) of `name`. */
export async function waitForPage(page, name, timeout = 15000) {
  const selector = name ? `main[data-state="ready"][data-page="${name}"]` : `main[data-state="ready"]`;
  await page.waitForSelector(selector, { timeout });
}

/** The path (and query) the page is at. */
export function pathOf(page) {
  const url = new URL(page.url());
  return url.pathname + url.search + url.hash;
}

/** Prints the final result line the Rust harness looks for. */
export function result(value) {
  process.stdout.write(`RESULT ${JSON.stringify(value)}\n`);
}

/** Launches the browser, runs `main(browser)`, prints `RESULT`, always closes the browser. */
export async function run(main) {
  let browser;
  let code = 0;
  try {
    browser = await launch();
    const value = await main(browser);
    result(value === undefined ? {} : value);
  } catch (err) {
    process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
    code = 1;
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
  process.exit(code);
}

/**
 * Calls the API from the page, with its session and CSRF token, through the viewer's own client
 * (`/assets/api.js`). Resolves to `{ok: true, body}` or `{ok: false, status, code, message}`.
 */
export function pageApi(page, path, options = {}) {
  return page.evaluate(
    async ({ path, options }) => {
      const { api } = await import(document.querySelector('script[type="module"]').src.replace(/app\.js$/, "api.js"));
      try {
        return { ok: true, body: await api(path, { ...options, redirectOn401: false }) };
      } catch (err) {
        return { ok: false, status: err.status ?? null, code: err.code ?? null, message: String(err.message || err) };
      }
    },
    { path, options },
  );
}

/**
 * Waits for the test harness to write file `name` in `dir` (with content: the harness may be
 * between creating and writing it); resolves to the content, trimmed.
 */
export async function waitForFile(dir, name, timeoutMs = 60000) {
  const path = join(dir, name);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const text = existsSync(path) ? readFileSync(path, "utf8").trim() : "";
    if (text) return text;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`the harness did not write ${name}`);
}

/**
 * The video frame the viewer shows against its lossless canvas (the worker's exact render):
 * `{ psnr }` over R, G, B in dB (99 when identical), `mean_diff` (video − lossless, signed),
 * `ssim` of the luma in 8×8 windows, and `sizes` [video w, h, canvas w, h]; psnr and ssim are
 * null when the sizes differ.
 */
export function compareVideoToLossless(page) {
  return page.evaluate(() => {
    const v = window.readroomViewer;
    const w = v.video.videoWidth;
    const h = v.video.videoHeight;
    const scratch = new OffscreenCanvas(w, h);
    const ctx = scratch.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(v.video, 0, 0);
    const a = ctx.getImageData(0, 0, w, h).data;
    const b = v.canvas.getContext("2d", { willReadFrequently: true }).getImageData(0, 0, v.canvas.width, v.canvas.height).data;
    const sizes = [w, h, v.canvas.width, v.canvas.height];
    if (a.length !== b.length) return { psnr: null, ssim: null, mean_diff: null, sizes };
    let sum = 0;
    let signed = 0;
    for (let i = 0; i < a.length; i += 4) {
      for (let c = 0; c < 3; c += 1) {
        const d = a[i + c] - b[i + c];
        sum += d * d;
        signed += d;
      }
    }
    const n = (a.length / 4) * 3;
    const mse = sum / n;
    const luma = (d, i) => 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
    const c1 = (0.01 * 255) ** 2;
    const c2 = (0.03 * 255) ** 2;
    let ssim = 0;
    let windows = 0;
    for (let y = 0; y + 8 <= h; y += 8) {
      for (let x = 0; x + 8 <= w; x += 8) {
        let ma = 0, mb = 0, va = 0, vb = 0, cov = 0;
        for (let dy = 0; dy < 8; dy += 1) {
          for (let dx = 0; dx < 8; dx += 1) {
            const i = ((y + dy) * w + x + dx) * 4;
            const la = luma(a, i);
            const lb = luma(b, i);
            ma += la; mb += lb; va += la * la; vb += lb * lb; cov += la * lb;
          }
        }
        ma /= 64; mb /= 64;
        va = va / 64 - ma * ma; vb = vb / 64 - mb * mb; cov = cov / 64 - ma * mb;
        ssim += ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
        windows += 1;
      }
    }
    return { psnr: mse === 0 ? 99 : 10 * Math.log10((255 * 255) / mse), mean_diff: signed / n, ssim: windows ? ssim / windows : null, sizes };
  });
}

/**
 * Records every `ack` the viewer receives into `window[name]` (`{seq, slice, frame, at}`, `at`
 * the page's clock), before the viewer handles it.
 */
export function recordAcks(page, name) {
  return page.evaluate((key) => {
    const v = window.readroomViewer.owner;
    const onText = v.onText.bind(v);
    window[key] = [];
    v.onText = (text) => {
      const m = JSON.parse(text);
      if (m.type === "ack") window[key].push({ seq: m.seq, slice: m.state.slice, frame: m.frame, at: performance.now() });
      onText(text);
    };
  }, name);
}
