// Turns an API error into a sentence for the user, in their language.

import { formatWait, hasMessage, roleName, t } from "./i18n.js";

/** A translated message for an ApiError (or any error). */
export function errorText(err) {
  if (!err || typeof err.status !== "number") return t("error.unexpected");
  // A refusal the server names (`error.reason`) is worded here, in the user's language.
  if (err.reason && hasMessage(`error.reason.${err.reason}`)) {
    const params = { ...(err.params || {}) };
    if (typeof params.role === "string") params.role = roleName(params.role);
    return t(`error.reason.${err.reason}`, params);
  }
  switch (err.status) {
    case 0:
      return t("error.network");
    case 401:
      if (err.code === "session_expired") return t("signin.expired");
      return t("error.unauthenticated");
    case 403:
      return err.code === "csrf" ? t("error.csrf") : t("error.forbidden");
    case 404:
      return t("error.not_found");
    case 409:
      return t("error.conflict", { message: err.message });
    case 429:
      return t(err.code === "locked" ? "signin.locked" : "signin.throttled", { wait: formatWait(err.retryAfter) });
    case 400:
    case 422:
      return t("error.rejected", { message: err.message });
    case 503:
      return t("error.unavailable");
    default:
      return err.status >= 500 ? t("error.server") : t("error.rejected", { message: err.message });
  }
}
