// `/account`: who I am, password, TOTP, and signing out everywhere.

import { api } from "../api.js";
import { busy, copyText, dl, field, h, statusLine } from "../dom.js";
import { errorText } from "../errors.js";
import { formatDateTime, formatNumber, roleLabel, t } from "../i18n.js";
import { renderHeader } from "../header.js";
import { clearSession, loadMe } from "../session.js";

export const title = "account.title";

/** Shortest password the server accepts. */
const MIN_PASSWORD = 12;

export async function render(view, _params, user) {
  const profile = h("section", { class: "card", "aria-labelledby": "profile-heading" });
  const password = h("section", { class: "card", "aria-labelledby": "password-heading" });
  const totp = h("section", { class: "card", "aria-labelledby": "totp-heading" });
  const sessions = h("section", { class: "card", "aria-labelledby": "sessions-heading" });
  view.append(h("h1", { text: t("account.title") }), h("div", { class: "cards" }, profile, password, totp, sessions));

  const refresh = async (message) => {
    const fresh = await loadMe();
    renderHeader(fresh, "account");
    fill(fresh, message);
  };
  const fill = (me, message = {}) => {
    profileCard(profile, me);
    passwordCard(password, me, refresh, message.password);
    totpCard(totp, me, refresh, message.totp);
  };
  fill(user);
  sessionsCard(sessions);
}

function profileCard(card, me) {
  const method = String(me.auth_method || "");
  const methodText = method.startsWith("oidc:")
    ? t("account.method_oidc", { provider: method.slice(5) })
    : t(`account.method_${method}`);
  card.replaceChildren(
    h("h2", { id: "profile-heading", text: t("account.profile") }),
    dl([
      [t("account.username"), me.username],
      [t("account.display_name"), me.display_name],
      [t("account.email"), me.email || "—"],
      [t("account.roles"), me.roles.length
        ? h("ul", { class: "roles" }, me.roles.map((grant) => h("li", { class: "chip", text: roleLabel(grant) })))
        : t("user.no_roles")],
      [t("account.method"), methodText.startsWith("account.method_") ? method : methodText],
      [t("account.session_ends"), me.session && me.session.expires_at ? formatDateTime(me.session.expires_at) : "—"],
      [t("account.idle"), me.session ? t("account.minutes", { count: formatNumber(Math.round(me.session.idle_timeout_s / 60)) }) : "—"],
    ]));
}

function passwordNote(me) {
  if (me.password_set) return "account.password_note";
  return String(me.auth_method || "").startsWith("oidc:") ? "account.password_none_oidc" : "account.password_none";
}

function passwordCard(card, me, refresh, message) {
  const status = statusLine();
  const fields = [];
  if (me.password_set) {
    fields.push(field("current-password", t("account.current_password"), { type: "password", autocomplete: "current-password", required: true }));
  }
  fields.push(
    field("new-password", t("account.new_password"), { type: "password", autocomplete: "new-password", required: true, minlength: String(MIN_PASSWORD) },
      t("account.password_rule", { count: MIN_PASSWORD })),
    field("repeat-password", t("account.repeat_password"), { type: "password", autocomplete: "new-password", required: true }));
  const form = h("form", { class: "form", novalidate: true },
    fields,
    h("button", { type: "submit", class: "primary", text: t(me.password_set ? "account.change_password" : "account.set_password") }));
  card.replaceChildren(
    h("h2", { id: "password-heading", text: t("account.password") }),
    h("p", { class: "note", text: t(passwordNote(me)) }),
    status, form);
  if (message) announce(card, status, message);

  const value = (id) => (form.querySelector(`#${id}`) || { value: "" }).value;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const next = value("new-password");
    if (me.password_set && !value("current-password")) {
      status.show("error", t("account.current_required"));
      form.querySelector("#current-password").focus();
      return;
    }
    if ([...next].length < MIN_PASSWORD) {
      status.show("error", t("account.password_rule", { count: MIN_PASSWORD }));
      form.querySelector("#new-password").focus();
      return;
    }
    if (next !== value("repeat-password")) {
      status.show("error", t("account.password_mismatch"));
      form.querySelector("#repeat-password").focus();
      return;
    }
    const body = { new_password: next };
    if (me.password_set) body.current_password = value("current-password");
    try {
      await busy(form, () => api("/api/auth/password", { method: "POST", body }));
      await refresh({ password: t("account.password_saved") });
    } catch (err) {
      if (err.redirected) return;
      status.show("error", err.status === 400 ? t("account.password_refused", { message: err.message }) : errorText(err));
    }
  });
}

/** Shows a success message in a re-rendered card and moves focus to the card's heading. */
function announce(card, status, message) {
  status.show("ok", message);
  const heading = card.querySelector("h2");
  heading.tabIndex = -1;
  heading.focus();
}

function totpCard(card, me, refresh, message) {
  const status = statusLine();
  card.replaceChildren(
    h("h2", { id: "totp-heading", text: t("account.totp") }),
    h("p", { class: "note", text: t(me.totp_enabled ? "account.totp_on" : "account.totp_off") }),
    status);
  if (message) announce(card, status, message);
  if (me.totp_enabled) {
    card.append(codeForm("totp-disable-code", t("account.totp_disable"), async (code, password) => {
      await api("/api/auth/totp/disable", { method: "POST", body: { code, current_password: password } });
      await refresh({ totp: t("account.totp_disabled") });
    }, status));
    return;
  }
  if (!me.password_set) {
    // TOTP changes need the current password: set one first.
    card.append(h("p", { class: "note", text: t("account.totp_needs_password") }));
    return;
  }
  const area = h("div", { class: "totp-setup" });
  const start = h("button", {
    type: "button", id: "totp-setup", text: t("account.totp_setup"),
    onclick: async () => {
      start.disabled = true;
      try {
        const setup = await api("/api/auth/totp/setup", { method: "POST" });
        status.clear();
        start.hidden = true;
        area.replaceChildren(...pendingSetup(setup, status, refresh));
        area.querySelector("#totp-enable-code").focus();
      } catch (err) {
        if (!err.redirected) status.show("error", errorText(err));
      } finally {
        start.disabled = false;
      }
    },
  });
  card.append(start, area);
}

function pendingSetup(setup, status, refresh) {
  return [
    h("p", { text: t("account.totp_instructions") }),
    secretRow("totp-secret", t("account.totp_secret"), setup.secret, true),
    secretRow("totp-url", t("account.totp_url"), setup.otpauth_url),
    codeForm("totp-enable-code", t("account.totp_enable"), async (code, password) => {
      await api("/api/auth/totp/enable", { method: "POST", body: { code, current_password: password } });
      await refresh({ totp: t("account.totp_enabled") });
    }, status),
  ];
}

/** A secret shown as wrapping text (grouped for reading aloud or typing) with a copy button. */
function secretRow(id, label, value, grouped = false) {
  const shown = grouped ? value.replace(/(.{4})(?=.)/g, "$1 ") : value;
  const text = h("code", { id, class: "secret mono", text: shown });
  const copied = h("span", { class: "muted", "aria-live": "polite" });
  return h("div", { class: "field" },
    h("span", { class: "label", id: `${id}-label`, text: label }),
    h("div", { class: "inline secret-row" }, text,
      h("button", {
        type: "button", text: t("copy"), "aria-describedby": `${id}-label`,
        onclick: async () => {
          copied.textContent = (await copyText(value, text)) ? t("copied") : t("copy_failed");
        },
      }),
      copied));
}

/** A TOTP change: the current password (TOTP changes need it) and a code from the app. */
function codeForm(id, submitLabel, send, status) {
  const passwordId = `${id}-password`;
  const form = h("form", { class: "form inline-form", novalidate: true },
    field(passwordId, t("account.current_password"), { type: "password", autocomplete: "current-password", required: true }),
    field(id, t("account.totp_code"), { inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{6}", maxlength: "6", required: true }),
    h("button", { type: "submit", class: "primary", text: submitLabel }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = form.querySelector(`#${id}`);
    const passwordInput = form.querySelector(`#${passwordId}`);
    if (!passwordInput.value) {
      status.show("error", t("account.current_required"));
      passwordInput.focus();
      return;
    }
    const code = input.value.replace(/\s+/g, "");
    if (!/^[0-9]{6}$/.test(code)) {
      status.show("error", t("signin.totp_format"));
      input.focus();
      return;
    }
    try {
      await busy(form, () => send(code, passwordInput.value));
    } catch (err) {
      if (err.redirected) return;
      status.show("error", err.status === 400 ? t("account.totp_refused", { message: err.message }) : errorText(err));
      input.value = "";
      passwordInput.value = "";
      passwordInput.focus();
    }
  });
  return form;
}

function sessionsCard(card) {
  const status = statusLine();
  const button = h("button", {
    type: "button", id: "logout-all", class: "danger", text: t("account.logout_all"),
    onclick: async () => {
      button.disabled = true;
      try {
        await api("/api/auth/logout-all", { method: "POST" });
        clearSession();
        location.assign("/signin?signed_out=1");
      } catch (err) {
        button.disabled = false;
        if (!err.redirected) status.show("error", errorText(err));
      }
    },
  });
  card.replaceChildren(
    h("h2", { id: "sessions-heading", text: t("account.sessions") }),
    h("p", { class: "note", text: t("account.logout_all_note") }),
    status, button);
}
