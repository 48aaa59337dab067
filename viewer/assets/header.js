// The header of signed-in pages: navigation, the user menu (name, roles, account, sign out) and
// the "no password yet" notice. The language switch is static in index.html.

import { api } from "./api.js";
import { h } from "./dom.js";
import { roleLabel, t } from "./i18n.js";
import { clearSession, hasRole, isAdmin } from "./session.js";

/** Fills (or, without a user, hides) the header parts that depend on who is signed in. */
export function renderHeader(user, routeName) {
  const nav = document.getElementById("nav");
  const menu = document.getElementById("user");
  const notice = document.getElementById("notice");
  notice.replaceChildren();
  if (!user) {
    nav.hidden = true;
    nav.replaceChildren();
    menu.hidden = true;
    menu.replaceChildren();
    return;
  }
  nav.setAttribute("aria-label", t("nav.label"));
  const links = [navLink("/", "nav.worklist", routeName === "worklist" || routeName === "case")];
  if (isAdmin(user)) links.push(navLink("/admin/users", "nav.users", routeName === "admin-users"));
  const study = studyLink(user, routeName === "study");
  if (study) links.push(study);
  if (hasRole(user, "auditor")) links.push(navLink("/audit", "nav.audit", routeName === "audit"));
  nav.replaceChildren(...links);
  nav.hidden = false;
  menu.replaceChildren(userMenu(user));
  menu.hidden = false;
  if (!user.password_set && !String(user.auth_method || "").startsWith("oidc:") && routeName !== "account" && !dismissed(user)) {
    const banner = h("div", { class: "notice", role: "note" },
      h("span", { text: t("notice.no_password") }), " ",
      h("a", { href: "/account", text: t("notice.set_password") }));
    banner.append(h("button", {
      type: "button", class: "notice-dismiss", id: "notice-dismiss",
      "aria-label": t("notice.dismiss"), title: t("notice.dismiss"), text: "×",
      onclick: () => {
        dismiss(user);
        banner.remove();
        const main = document.getElementById("main");
        if (main) main.focus({ preventScroll: true });
      },
    }));
    notice.append(banner);
  }
}

/** The "no password yet" notice, once dismissed, stays away for this browser tab's session. */
function noticeKey(user) {
  return `readroom.notice.no_password.${user.id || user.username}`;
}

function dismissed(user) {
  try {
    return sessionStorage.getItem(noticeKey(user)) === "1";
  } catch {
    return false;
  }
}

function dismiss(user) {
  try {
    sessionStorage.setItem(noticeKey(user), "1");
  } catch {
    // Without storage it is dismissed for this page only.
  }
}

let studies = null;

/**
 * The study dashboard link for coordinators and auditors: the first study they coordinate, or
 * (auditors, coordinators of every study) the first study `GET /api/studies` lists, filled in
 * when that answers (asked once per page load).
 */
function studyLink(user, current) {
  const coordinated = user.roles.filter((g) => g.role === "coordinator").map((g) => g.study);
  const auditor = hasRole(user, "auditor");
  if (!coordinated.length && !auditor) return null;
  const here = current ? decodeURIComponent(location.pathname.split("/")[2] || "") : null;
  const code = here || coordinated.find(Boolean);
  const link = navLink(code ? `/studies/${encodeURIComponent(code)}` : "/", "nav.study", current);
  link.id = "nav-study";
  if (!code) {
    link.hidden = true;
    studies = studies || api("/api/studies").catch(() => []);
    studies.then((list) => {
      if (!list.length) return;
      link.href = `/studies/${encodeURIComponent(list[0].code)}`;
      link.hidden = false;
    });
  }
  return link;
}

function navLink(href, key, current) {
  return h("a", { href, text: t(key), "aria-current": current ? "page" : null });
}

function userMenu(user) {
  const roles = user.roles.length
    ? h("ul", { class: "roles" }, user.roles.map((grant) => h("li", { class: "chip", text: roleLabel(grant) })))
    : h("p", { class: "muted", text: t("user.no_roles") });
  const signOut = h("button", { type: "button", id: "sign-out", text: t("user.sign_out"), onclick: () => signOutNow(signOut) });
  return h("details", { class: "usermenu" },
    h("summary", {},
      h("span", { id: "user-name", class: "user-name", text: user.display_name || user.username })),
    h("div", { class: "menu", role: "group", "aria-label": t("user.menu") },
      h("p", { class: "user-login" }, t("user.signed_in_as"), " ", h("strong", { id: "user-login", text: user.username })),
      roles,
      h("a", { href: "/account", id: "account-link", text: t("nav.account") }),
      signOut));
}

async function signOutNow(button) {
  button.disabled = true;
  let redirect = null;
  try {
    const answer = await api("/api/auth/logout", { method: "POST", redirectOn401: false });
    redirect = answer && answer.redirect;
  } catch {
    // The session is gone either way (expired, or the server ended it).
  }
  clearSession();
  location.assign(redirect || "/signin?signed_out=1");
}

/** Closes the user menu on Escape or a click elsewhere. */
export function installMenuBehaviour() {
  document.addEventListener("click", (event) => {
    for (const open of document.querySelectorAll("details.usermenu[open]")) {
      if (!open.contains(event.target)) open.open = false;
    }
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    for (const open of document.querySelectorAll("details.usermenu[open]")) {
      open.open = false;
      open.querySelector("summary").focus();
    }
  });
}
