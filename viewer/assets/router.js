// Client-side routing over the page routes the server serves index.html for.
// Each page module exports `title` (a message key) and `render(main, params, user)`.

import { t } from "./i18n.js";
import { h } from "./dom.js";
import { currentUser, loadMe } from "./session.js";
import { renderHeader } from "./header.js";
import { errorText } from "./errors.js";
import { leave } from "./lifecycle.js";
import * as signin from "./pages/signin.js";
import * as worklist from "./pages/worklist.js";
import * as casePage from "./pages/case.js";
import * as account from "./pages/account.js";
import * as adminUsers from "./pages/admin-users.js";
import * as audit from "./pages/audit.js";
import * as study from "./pages/study.js";

const ROUTES = [
  { name: "signin", pattern: /^\/signin$/, page: signin, signedIn: false },
  { name: "worklist", pattern: /^\/$/, page: worklist, signedIn: true },
  { name: "case", pattern: /^\/cases\/([^/]+)$/, page: casePage, signedIn: true },
  { name: "account", pattern: /^\/account$/, page: account, signedIn: true },
  { name: "admin-users", pattern: /^\/admin\/users$/, page: adminUsers, signedIn: true },
  { name: "audit", pattern: /^\/audit$/, page: audit, signedIn: true },
  { name: "study", pattern: /^\/studies\/([^/]+)$/, page: study, signedIn: true },
];

let generation = 0;

function match(pathname) {
  for (const route of ROUTES) {
    const found = route.pattern.exec(pathname);
    if (found) return { route, params: found.slice(1).map(decodeURIComponent) };
  }
  return null;
}

/** Goes to a local path without reloading the page. */
export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  render({ focus: true });
}

/** Whether the current render is still the latest one (pages check after awaiting). */
export function renderToken() {
  const mine = generation;
  return () => mine === generation;
}

/** Renders the page for the current URL. */
export async function render({ focus = false } = {}) {
  const mine = ++generation;
  leave();
  const main = document.getElementById("main");
  const found = match(location.pathname);
  // A page may start something before the DOM work below (the case page: the next case on the
  // kept connection, whose frame can then be on its way while the page is built).
  if (found && found.route.page.prepare && currentUser()) found.route.page.prepare(found.params);
  if (found && found.route.page.warm) found.route.page.warm(found.params);
  main.dataset.state = "loading";
  main.dataset.page = found ? found.route.name : "not-found";
  main.replaceChildren(h("p", { class: "status", text: t("loading") }));

  let user = null;
  if (found && found.route.signedIn) {
    try {
      user = currentUser() || (await loadMe());
    } catch (err) {
      if (mine !== generation || err.redirected) return;
      main.replaceChildren(h("p", { class: "status", dataset: { kind: "error" }, role: "alert", text: errorText(err) }));
      main.dataset.state = "error";
      return;
    }
    if (mine !== generation) return;
  }
  renderHeader(user, found ? found.route.name : null);

  if (!found) {
    document.title = `${t("notfound.title")} · readroom`;
    main.replaceChildren(h("h1", { text: t("notfound.title") }), h("p", { class: "note", text: t("notfound.text") }),
      h("p", {}, h("a", { href: "/", text: t("nav.worklist") })));
    main.dataset.state = "ready";
    return;
  }
  document.title = `${t(found.route.page.title)} · readroom`;
  const view = h("div", { class: `page page-${found.route.name}` });
  main.replaceChildren(view);
  try {
    await found.route.page.render(view, found.params, user);
  } catch (err) {
    if (err && err.redirected) return;
    if (mine === generation) {
      view.append(h("p", { class: "status", dataset: { kind: "error" }, role: "alert", text: errorText(err) }));
    }
    console.warn("page failed", err);
  }
  if (mine !== generation) return;
  main.dataset.state = "ready";
  const active = document.activeElement;
  if (focus && (active === main || !main.contains(active))) {
    const heading = view.querySelector("h1");
    if (heading) {
      heading.tabIndex = -1;
      heading.focus({ preventScroll: true });
    }
  }
}

/** Follows same-origin page links in place; leaves API links, new-tab clicks and fragments alone. */
function onClick(event) {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
    return;
  }
  const link = event.target.closest("a[href]");
  if (!link || link.target || link.hasAttribute("download")) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/api/") || url.pathname.startsWith("/assets/")) return;
  if (url.pathname === location.pathname && url.search === location.search && url.hash) return;
  if (!match(url.pathname)) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
}

/** Starts routing: link clicks, back/forward, and the first render. */
export function start() {
  document.addEventListener("click", onClick);
  window.addEventListener("popstate", () => render({ focus: true }));
  return render();
}
