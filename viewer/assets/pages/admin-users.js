// `/admin/users` (admins): users, their roles and sign-in state; create users, issue one-time
// sign-in links, grant and revoke roles, disable/enable, unlock.

import { api } from "../api.js";
import { busy, confirmDialog, copyText, field, h, statusLine, table } from "../dom.js";
import { errorText } from "../errors.js";
import { formatDateTime, roleLabel, roleName, t } from "../i18n.js";
import { renderToken } from "../router.js";

export const title = "admin.title";

/** Roles in the order the UI offers them; auditor and admin are always global. */
const ROLES = ["grader", "adjudicator", "coordinator", "auditor", "admin"];
const GLOBAL_ROLES = new Set(["auditor", "admin"]);

export async function render(view, _params, me) {
  const current = renderToken();
  const status = statusLine("page-status");
  const linkPanel = h("section", { class: "card link-panel", id: "link-panel", hidden: true, "aria-labelledby": "link-heading" });
  const listArea = h("div", { class: "users-area" });
  view.append(h("h1", { text: t("admin.title") }), status, linkPanel);

  let studies = [];
  try {
    const [users, studyList] = await Promise.all([api("/api/admin/users"), api("/api/studies")]);
    studies = studyList.map((study) => study.code);
    if (!current()) return;
    const page = { me, studies, status, linkPanel, listArea, reload: null };
    page.reload = async (message) => {
      const fresh = await api("/api/admin/users");
      if (!current()) return;
      renderList(page, fresh);
      if (message) status.show("ok", message);
    };
    view.append(createCard(page), h("h2", { id: "users-heading", text: t("admin.users") }), listArea);
    renderList(page, users);
  } catch (err) {
    if (err.redirected) return;
    status.show("error", err.status === 403 ? t("admin.forbidden") : errorText(err));
  }
}

/**
 * Runs an admin action on a user: shows its error, or reloads the list with a message and puts
 * the keyboard focus back on that user's row (the old buttons are gone).
 */
async function act(page, user, work, message, focusAction = null) {
  try {
    const result = await work();
    await page.reload(typeof message === "function" ? message(result) : message);
    const row = page.listArea.querySelector(`tr[data-user-id="${CSS.escape(user.id)}"]`);
    const target = row && ((focusAction && row.querySelector(focusAction)) || row.querySelector("button"));
    if (target) target.focus();
    return result;
  } catch (err) {
    if (!err.redirected) {
      page.status.show("error", errorText(err));
      page.status.scrollIntoView({ block: "nearest" });
    }
    return null;
  }
}

function showLink(page, username, answer) {
  const id = "signin-url";
  const input = h("input", { id, type: "text", readonly: true, value: answer.signin_url, class: "mono wide", spellcheck: "false" });
  const copied = h("span", { class: "muted", "aria-live": "polite" });
  const heading = h("h2", { id: "link-heading", tabindex: "-1", text: t("admin.link_heading", { username }) });
  page.linkPanel.replaceChildren(
    heading,
    h("p", { class: "note", text: t("admin.link_note", { expires: formatDateTime(answer.expires_at) }) }),
    h("div", { class: "inline" },
      h("label", { for: id, class: "visually-hidden", text: t("admin.link_label") }),
      input,
      h("button", {
        type: "button", id: "copy-link", text: t("copy"),
        onclick: async () => {
          copied.textContent = (await copyText(answer.signin_url, input)) ? t("copied") : t("copy_failed");
        },
      }),
      copied),
    h("button", { type: "button", class: "link-button", text: t("admin.link_done"), onclick: () => {
      page.linkPanel.hidden = true;
      page.linkPanel.replaceChildren();
    } }));
  page.linkPanel.hidden = false;
  heading.focus();
}

function studySelect(id, studies) {
  return h("select", { id, name: id },
    h("option", { value: "", text: t("admin.all_studies") }),
    studies.map((code) => h("option", { value: code, text: code })));
}

function createCard(page) {
  const status = statusLine();
  const roleBoxes = h("fieldset", { class: "roles-choice" },
    h("legend", { text: t("admin.initial_roles") }),
    ROLES.map((role) => h("label", { class: "check" },
      h("input", { type: "checkbox", name: "role", value: role, id: `new-role-${role}` }), " ", roleName(role))));
  const studyField = h("div", { class: "field" },
    h("label", { for: "new-study", text: t("admin.study") }),
    studySelect("new-study", page.studies),
    h("small", { class: "hint", text: t("admin.study_hint") }));
  const form = h("form", { class: "form create-user", novalidate: true, "aria-labelledby": "create-heading" },
    h("div", { class: "grid" },
      field("new-username", t("account.username"), { required: true, autocomplete: "off", autocapitalize: "none", spellcheck: "false", maxlength: "64" },
        t("admin.username_hint")),
      field("new-display-name", t("account.display_name"), { required: true, autocomplete: "off", maxlength: "128" }),
      field("new-email", t("account.email"), { type: "email", autocomplete: "off" })),
    roleBoxes, studyField,
    h("button", { type: "submit", class: "primary", text: t("admin.create") }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const username = form.querySelector("#new-username").value.trim();
    const displayName = form.querySelector("#new-display-name").value.trim();
    const email = form.querySelector("#new-email").value.trim();
    if (!/^[A-Za-z0-9.\-_@]{1,64}$/.test(username)) {
      status.show("error", t("admin.username_hint"));
      form.querySelector("#new-username").focus();
      return;
    }
    if (!displayName) {
      status.show("error", t("admin.display_name_required"));
      form.querySelector("#new-display-name").focus();
      return;
    }
    const study = form.querySelector("#new-study").value;
    const roles = [...form.querySelectorAll("input[name=role]:checked")].map((box) => {
      const grant = { role: box.value };
      if (study && !GLOBAL_ROLES.has(box.value)) grant.study = study;
      return grant;
    });
    const body = { username, display_name: displayName, roles };
    if (email) body.email = email;
    try {
      const created = await busy(form, () => api("/api/admin/users", { method: "POST", body }));
      form.reset();
      status.show("ok", t("admin.created", { username: created.user.username }));
      await page.reload();
      showLink(page, created.user.username, created);
    } catch (err) {
      if (!err.redirected) status.show("error", err.status === 409 ? t("admin.username_taken") : errorText(err));
    }
  });
  return h("section", { class: "card", "aria-labelledby": "create-heading" },
    h("h2", { id: "create-heading", text: t("admin.create_heading") }),
    h("p", { class: "note", text: t("admin.create_note") }),
    status, form);
}

function renderList(page, users) {
  if (!users.length) {
    page.listArea.replaceChildren(h("p", { class: "muted", text: t("admin.no_users") }));
    return;
  }
  const list = table("users", [t("col.user"), t("col.roles"), t("admin.signin_state"), t("col.status"), t("admin.actions")]);
  list.querySelector("tbody").append(...users.map((user) => userRow(page, user)));
  page.listArea.replaceChildren(h("div", { class: "table-wrap" }, list));
}

function userRow(page, user) {
  const self = user.id === page.me.id;
  return h("tr", { dataset: { userId: user.id, username: user.username }, class: user.disabled ? "disabled" : null },
    h("td", {},
      h("div", { class: "strong", text: user.username }),
      h("div", { text: user.display_name }),
      user.email ? h("div", { class: "muted", text: user.email }) : null),
    h("td", {}, rolesCell(page, user)),
    h("td", {}, signinCell(user)),
    h("td", {}, statusCell(user)),
    h("td", {}, h("div", { class: "actions" }, actionButtons(page, user, self))));
}

function rolesCell(page, user) {
  const chips = user.roles.length
    ? h("ul", { class: "roles" }, user.roles.map((grant) => h("li", { class: "chip" },
      h("span", { text: roleLabel(grant) }),
      grant.source && grant.source !== "manual" ? h("span", { class: "source", text: t("admin.from_idp", { source: grant.source.replace(/^idp:/, "") }) }) : null,
      h("button", {
        type: "button", class: "chip-remove", dataset: { grantId: grant.id },
        "aria-label": t("admin.revoke_label", { role: roleLabel(grant), username: user.username }),
        title: t("admin.revoke"), text: "×",
        onclick: () => revokeRole(page, user, grant),
      }))))
    : h("p", { class: "muted", text: t("user.no_roles") });
  const roleId = `grant-role-${user.id}`;
  const studyId = `grant-study-${user.id}`;
  const studies = studySelect(studyId, page.studies);
  const roleSelect = h("select", { id: roleId, name: "role" }, ROLES.map((role) => h("option", { value: role, text: roleName(role) })));
  const syncStudy = () => {
    studies.disabled = GLOBAL_ROLES.has(roleSelect.value);
    if (studies.disabled) studies.value = "";
  };
  roleSelect.addEventListener("change", syncStudy);
  syncStudy();
  const form = h("form", { class: "grant", "aria-label": t("admin.grant_label", { username: user.username }) },
    h("label", { for: roleId, class: "visually-hidden", text: t("col.role") }), roleSelect,
    h("label", { for: studyId, class: "visually-hidden", text: t("admin.study") }), studies,
    h("button", { type: "submit", text: t("admin.grant") }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { role: roleSelect.value };
    if (studies.value && !GLOBAL_ROLES.has(body.role)) body.study = studies.value;
    await busy(form, () => act(page, user, () => api(`/api/admin/users/${user.id}/roles`, { method: "POST", body }),
      (grant) => t("admin.granted", { role: roleLabel(grant), username: user.username }), "form.grant select"));
  });
  return [chips, form];
}

/** Removes a role after the admin confirms it, naming the user and the role. */
async function revokeRole(page, user, grant) {
  const role = roleLabel(grant);
  const yes = await confirmDialog({
    id: "revoke-confirm",
    title: t("admin.revoke_confirm_title"),
    text: t("admin.revoke_confirm", { role, username: user.username, name: user.display_name || user.username }),
    confirmLabel: t("admin.revoke_confirm_yes", { role }),
    cancelLabel: t("confirm.cancel"),
  });
  if (!yes) return null;
  return act(page, user, () => api(`/api/admin/users/${user.id}/roles/${grant.id}`, { method: "DELETE" }),
    t("admin.revoked", { role, username: user.username }), "form.grant select");
}

function signinCell(user) {
  const yes = (key, on) => h("li", { class: on ? "yes" : "no", text: t(`${key}_${on ? "yes" : "no"}`) });
  return h("ul", { class: "plain" },
    yes("admin.password", user.password_set),
    yes("admin.totp", user.totp_enabled),
    user.identities.length ? h("li", { text: t("admin.identities", { list: user.identities.join(", ") }) }) : null);
}

function statusCell(user) {
  const badges = [];
  if (user.disabled) badges.push(h("span", { class: "badge bad", text: t("admin.disabled") }));
  if (user.locked_until) badges.push(h("span", { class: "badge warn", text: t("admin.locked_until", { time: formatDateTime(user.locked_until) }) }));
  if (!badges.length) badges.push(h("span", { class: "badge ok", text: t("admin.active") }));
  return badges;
}

function actionButtons(page, user, self) {
  const buttons = [
    h("button", {
      type: "button", dataset: { action: "link" }, text: t("admin.new_link"),
      onclick: async () => {
        const answer = await act(page, user, () => api(`/api/admin/users/${user.id}/signin-link`, { method: "POST" }),
          t("admin.link_issued", { username: user.username }), "[data-action=link]");
        if (answer) showLink(page, user.username, answer);
      },
    }),
  ];
  if (!self) {
    buttons.push(h("button", {
      type: "button", dataset: { action: user.disabled ? "enable" : "disable" }, class: user.disabled ? null : "danger",
      text: t(user.disabled ? "admin.enable" : "admin.disable"),
      onclick: () => act(page, user, () => api(`/api/admin/users/${user.id}`, { method: "PATCH", body: { disabled: !user.disabled } }),
        t(user.disabled ? "admin.enabled" : "admin.disabled_done", { username: user.username }),
        user.disabled ? "[data-action=disable]" : "[data-action=enable]"),
    }));
  }
  if (user.locked_until) {
    buttons.push(h("button", {
      type: "button", dataset: { action: "unlock" }, text: t("admin.unlock"),
      onclick: () => act(page, user, () => api(`/api/admin/users/${user.id}/unlock`, { method: "POST" }),
        t("admin.unlocked", { username: user.username }), "[data-action=link]"),
    }));
  }
  return buttons;
}
