// `/signin`: identity-provider buttons, the local form (with a TOTP step), one-time links
// (`#token=…`, taken from the address bar by link-token.js) and the messages that lead here.

import { api, safeReturnTo } from "../api.js";
import { busy, field, h, statusLine } from "../dom.js";
import { errorText } from "../errors.js";
import { formatWait, t } from "../i18n.js";
import { takeLinkToken } from "../link-token.js";
import { navigate } from "../router.js";
import { setSignedIn } from "../session.js";

export const title = "signin.title";

export async function render(view) {
  const query = new URLSearchParams(location.search);
  const returnTo = safeReturnTo(query.get("return_to"));
  const status = statusLine("signin-status");
  const card = h("section", { class: "card signin", "aria-labelledby": "signin-heading" },
    h("h1", { id: "signin-heading", text: t("signin.heading") }),
    status);
  view.append(card);

  const token = takeLinkToken();
  if (token) {
    status.show("info", t("signin.link_checking"));
    try {
      const answer = await api("/api/auth/link", { method: "POST", body: { token }, redirectOn401: false });
      signedIn(answer, returnTo);
      return;
    } catch (err) {
      if (err.code === "totp_required") {
        // The link is a first factor: an account with two-step verification also needs a code.
        card.append(linkTotpForm(token, status, returnTo));
        status.show("info", t("signin.totp_required"));
        card.querySelector("#link-totp").focus();
        return;
      }
      status.show("error", linkError(err));
    }
  } else {
    const message = arrivalMessage(query);
    if (message) status.show(message.kind, message.text);
  }

  let methods = { local: true, providers: [] };
  try {
    methods = await api("/api/auth/providers", { redirectOn401: false });
  } catch {
    // Offer the local form anyway; its own answer will say what is wrong.
  }
  const providers = providerButtons(methods.providers || [], returnTo, query.get("login_hint"));
  if (providers) card.append(providers);
  if (methods.local) {
    if (providers) card.append(h("p", { class: "divider", text: t("signin.or") }));
    const form = localForm(status, returnTo);
    card.append(form);
    if (!token) form.querySelector("#username").focus();
  } else if (!providers) {
    status.show("error", t("signin.no_methods"));
  }
}

/** The message for a refused link. */
function linkError(err) {
  switch (err.code) {
    case "invalid_link": return t("signin.invalid_link");
    case "local_accounts_disabled": return t("signin.link_local_disabled");
    case "locked":
    case "throttled":
      return t(`signin.${err.code}`, { wait: formatWait(err.retryAfter ?? waitFromMessage(err.message)) });
    default: return errorText(err);
  }
}

/** The second step of a link sign-in: the code, posted with the (still unused) link. */
function linkTotpForm(token, status, returnTo) {
  const form = h("form", { class: "form local", novalidate: true },
    field("link-totp", t("signin.totp"), {
      inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{6}", maxlength: "6", required: true,
    }, t("signin.totp_hint")),
    h("button", { type: "submit", class: "primary", text: t("signin.submit") }));
  const input = form.querySelector("#link-totp");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const code = input.value.replace(/\s+/g, "");
    if (!/^[0-9]{6}$/.test(code)) {
      status.show("error", t("signin.totp_format"));
      input.focus();
      return;
    }
    status.show("info", t("signin.checking"));
    try {
      const answer = await busy(form, () => api("/api/auth/link", { method: "POST", body: { token, totp: code }, redirectOn401: false }));
      signedIn(answer, returnTo);
    } catch (err) {
      input.value = "";
      if (err.code === "invalid_totp") {
        status.show("error", t("signin.invalid_totp"));
        input.focus();
        return;
      }
      status.show("error", linkError(err));
      if (err.code === "invalid_link" || err.code === "locked") form.remove();
      else input.focus();
    }
  });
  return form;
}

/** The message for `?expired=1`, `?signed_out=1` or `?error=<code>` (an OIDC callback). */
function arrivalMessage(query) {
  const code = query.get("error");
  if (code) {
    // Only a code the server could have sent is repeated; anything else is not shown.
    if (!/^[a-z0-9_]{1,40}$/.test(code)) return { kind: "error", text: t("signin.oidc_error.sign_in_failed") };
    const key = `signin.oidc_error.${code}`;
    const text = t(key);
    return { kind: "error", text: text === key ? t("signin.oidc_error", { code }) : text };
  }
  if (query.get("expired") === "1") return { kind: "info", text: t("signin.expired") };
  if (query.get("signed_out") === "1") return { kind: "ok", text: t("signin.signed_out") };
  return null;
}

function providerButtons(providers, returnTo, loginHint) {
  if (!providers.length) return null;
  return h("div", { class: "providers" }, providers.map((provider) => {
    const query = new URLSearchParams({ return_to: returnTo });
    if (loginHint) query.set("login_hint", loginHint);
    const target = `/api/auth/oidc/${encodeURIComponent(provider.id)}/start?${query}`;
    return h("button", {
      type: "button",
      class: "provider",
      dataset: { provider: provider.id },
      text: t("signin.with_provider", { name: provider.name }),
      onclick: (event) => {
        event.currentTarget.disabled = true;
        location.assign(target);
      },
    });
  }));
}

function localForm(status, returnTo) {
  const totpField = field("totp", t("signin.totp"), {
    inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{6}", maxlength: "6",
  }, t("signin.totp_hint"));
  totpField.hidden = true;
  const form = h("form", { class: "form local", novalidate: true },
    field("username", t("signin.username"), { autocomplete: "username", required: true, autocapitalize: "none", spellcheck: "false" }),
    field("password", t("signin.password"), { type: "password", autocomplete: "current-password", required: true }),
    totpField,
    h("button", { type: "submit", class: "primary", text: t("signin.submit") }));
  const input = (id) => form.querySelector(`#${id}`);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const username = input("username").value.trim();
    const password = input("password").value;
    if (!username || !password) {
      status.show("error", t("signin.missing"));
      (username ? input("password") : input("username")).focus();
      return;
    }
    const body = { username, password };
    if (!totpField.hidden) {
      const code = input("totp").value.replace(/\s+/g, "");
      if (!/^[0-9]{6}$/.test(code)) {
        status.show("error", t("signin.totp_format"));
        input("totp").focus();
        return;
      }
      body.totp = code;
    }
    status.show("info", t("signin.checking"));
    try {
      const answer = await busy(form, () => api("/api/auth/login", { method: "POST", body, redirectOn401: false }));
      signedIn(answer, returnTo);
    } catch (err) {
      failed(err);
    }
  });

  function failed(err) {
    switch (err.code) {
      case "totp_required":
        totpField.hidden = false;
        status.show("info", t("signin.totp_required"));
        input("totp").focus();
        return;
      case "invalid_totp":
        totpField.hidden = false;
        input("totp").value = "";
        status.show("error", t("signin.invalid_totp"));
        input("totp").focus();
        return;
      case "invalid_credentials":
        input("password").value = "";
        if (!totpField.hidden) input("totp").value = "";
        status.show("error", t("signin.invalid_credentials"));
        input("password").focus();
        return;
      case "locked":
      case "throttled":
        status.show("error", t(`signin.${err.code}`, { wait: formatWait(err.retryAfter ?? waitFromMessage(err.message)) }));
        return;
      case "local_accounts_disabled":
        status.show("error", t("signin.local_disabled"));
        return;
      default:
        status.show("error", errorText(err));
    }
  }
  return form;
}

/** Seconds from a message like "try again in 120 s", when there is no Retry-After header. */
function waitFromMessage(message) {
  const found = /(\d+)\s*s\b/.exec(message || "");
  return found ? Number(found[1]) : null;
}

function signedIn(answer, returnTo) {
  setSignedIn(answer.user, answer.csrf_token);
  navigate(returnTo, { replace: true });
}
