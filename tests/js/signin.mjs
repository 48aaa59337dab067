// Signs in through the viewer's real UI and reports what the user sees.
//
// Parameters (READROOM_BROWSER_PARAMS):
//   base_url     "http://127.0.0.1:PORT" (required)
//   mode         "local" | "link" | "oidc"
//   username, password, totp   for "local" (totp only if the account asks for it)
//   link_url     for "link": the one-time URL ("…/signin#token=…")
//   provider_id, login_hint    for "oidc": clicks that provider's button; the test provider
//                picks the user named by login_hint and approves without a prompt
//   return_to    optional page to ask for first (e.g. "/account"): opens it signed out, follows
//                the redirect to /signin, signs in, and must come back there
//   locale       optional browser language ("en-US" default, "ko-KR")
//   screenshot   optional PNG path of the final page
//
// Prints: RESULT {"signed_in", "username", "display_name", "worklist_rows", "url", "page",
//   "link_token_in_url", "console_errors", "page_errors", "failed_requests", "http_errors",
//   "csp_violations", "message"}

import { newUser, params, pathOf, run, waitForPage } from "./lib/browser.mjs";

const p = params();
if (!p.base_url) throw new Error("base_url is required");
const mode = p.mode || "local";

run(async (browser) => {
  const { page, problems, context } = await newUser(browser, { baseURL: p.base_url, locale: p.locale || "en-US" });
  const target = p.return_to || "/";
  const expectedPage = target === "/" ? "worklist" : undefined;
  const startPath = mode === "link" ? null : p.return_to ? p.return_to : "/signin";

  if (mode === "link") {
    if (!p.link_url) throw new Error("link_url is required for mode link");
    await page.goto(p.link_url);
  } else {
    await page.goto(startPath);
    if (p.return_to) await page.waitForURL((url) => url.pathname === "/signin", { timeout: 15000 });
    if (mode === "oidc" && p.login_hint) {
      // The sign-in page passes ?login_hint= on to the provider's start URL.
      const url = new URL(page.url());
      url.searchParams.set("login_hint", p.login_hint);
      await page.goto(url.pathname + url.search);
    }
    await waitForPage(page, "signin");
  }

  let message = null;
  let linkTokenInUrl = false;
  if (mode === "local") {
    await page.fill("#username", p.username || "");
    await page.fill("#password", p.password || "");
    await page.press("#password", "Enter");
    if (p.totp) {
      await page.waitForSelector("#totp:visible", { timeout: 15000 });
      await page.fill("#totp", p.totp);
      await page.press("#totp", "Enter");
    }
  } else if (mode === "oidc") {
    if (!p.provider_id) throw new Error("provider_id is required for mode oidc");
    const button = `button[data-provider="${p.provider_id}"]`;
    if (!(await page.$(button))) {
      const offered = await page.$$eval("button[data-provider]", (buttons) => buttons.map((b) => b.dataset.provider));
      throw new Error(`the sign-in page offers no provider ${p.provider_id} (offered: ${offered.join(", ") || "none"})`);
    }
    await page.click(button);
  } else if (mode === "link") {
    // The token must leave the address bar at once, before the sign-in answer arrives.
    linkTokenInUrl = page.url().includes("token=");
  } else {
    throw new Error(`unknown mode ${mode}`);
  }

  // Either a signed-in page (the user menu is there) or the sign-in page showing an error.
  const outcomeHandle = await page.waitForFunction(
    () => {
      const main = document.querySelector("main");
      if (main && main.dataset.state === "ready" && main.dataset.page !== "signin" && document.querySelector("#user-login")) {
        return "signed_in";
      }
      const status = document.querySelector('.signin-status[data-kind="error"]');
      return status && !status.hidden ? "refused" : null;
    },
    null,
    { timeout: p.timeout_ms || 20000 },
  );
  const signedIn = (await outcomeHandle.jsonValue()) === "signed_in";
  if (!signedIn) message = (await page.textContent(".signin-status")).trim();
  if (signedIn && expectedPage) await waitForPage(page, expectedPage);
  linkTokenInUrl = linkTokenInUrl || page.url().includes("token=");

  const username = signedIn ? (await page.textContent("#user-login")).trim() : null;
  const displayName = signedIn ? (await page.textContent("#user-name")).trim() : null;
  const worklistRows = signedIn ? await page.locator("table.worklist tbody tr").count() : 0;
  const pageName = await page.getAttribute("main", "data-page");
  if (p.screenshot) await page.screenshot({ path: p.screenshot, fullPage: true });
  const outcome = {
    signed_in: signedIn,
    username,
    display_name: displayName,
    worklist_rows: worklistRows,
    url: pathOf(page),
    page: pageName,
    link_token_in_url: linkTokenInUrl,
    message,
    ...problems,
  };
  await context.close();
  return outcome;
});
