// The one fetch wrapper: JSON in and out, the CSRF header on state-changing requests, and the
// sign-in redirect when the session is missing or expired.

let csrfToken = null;

/** Remembers the session's CSRF token (from `/api/me` or a sign-in answer). */
export function setCsrfToken(token) {
  csrfToken = token || null;
}

/**
 * An API error: HTTP status, the server's error code and message, `Retry-After` seconds, and
 * `problems` (the list a 422 `invalid_grade` carries, else null).
 */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null, problems = null, reason = null, params = null) {
    super(message || code);
    this.status = status;
    this.code = code;
    /** Why it was refused (`nothing_to_assign`), when the server names it, and its values. */
    this.reason = reason;
    this.params = params;
    this.retryAfter = retryAfter;
    this.problems = problems;
    /** True when the wrapper already sent the browser to the sign-in page. */
    this.redirected = false;
  }
}

/** A local path to come back to after signing in (never an absolute or protocol-relative URL). */
export function safeReturnTo(value, fallback = "/") {
  if (typeof value !== "string" || !value.startsWith("/") || value.startsWith("//") || value.startsWith("/\\")) {
    return fallback;
  }
  try {
    const url = new URL(value, location.origin);
    if (url.origin !== location.origin || url.pathname === "/signin" || url.pathname.startsWith("/api/")) {
      return fallback;
    }
    return url.pathname + url.search;
  } catch {
    return fallback;
  }
}

/** Sends the browser to the sign-in page, to come back here afterwards. */
export function sendToSignIn(expired) {
  const here = safeReturnTo(location.pathname + location.search);
  const query = new URLSearchParams({ return_to: here });
  if (expired) query.set("expired", "1");
  location.assign(`/signin?${query}`);
}

/**
 * An API answer the server put in the entry page for a signed-in user (`<script
 * type="application/json" id="…">`, see server/src/http/assets.rs): taken once and removed from
 * the page, so that a later call asks the API. Null without it, or when it is not a JSON object.
 */
export function takeEmbeddedAnswer(id) {
  if (typeof document === "undefined") return null;
  const element = document.getElementById(id);
  if (!element) return null;
  element.remove();
  try {
    const answer = JSON.parse(element.textContent);
    return answer && typeof answer === "object" ? answer : null;
  } catch {
    return null;
  }
}

/**
 * Calls the API. `options.body` is sent as JSON; `options.redirectOn401: false` keeps the caller
 * on the page when there is no session (the sign-in page itself); `options.keepalive: true` lets
 * the request outlive the page (a last save when the tab is closed); `options.preloaded: true`
 * takes the answer of the page's preload of the same GET, if there is one.
 * Resolves to the parsed answer (null for 204); rejects with an ApiError.
 */
export async function api(path, { method = "GET", body, redirectOn401 = true, keepalive = false, preloaded = false } = {}) {
  const headers = { Accept: "application/json" };
  // A GET the page preloads (`<link rel=preload>`, see server/src/http/assets.rs) takes the
  // preloaded answer: a `no-store` fetch would ask again. The server answers every API request
  // with `Cache-Control: no-store`, so nothing else is ever served from a cache.
  const cache = preloaded && method === "GET" ? "default" : "no-store";
  const init = { method, headers, credentials: "same-origin", cache };
  if (keepalive) init.keepalive = true;
  if (method !== "GET" && method !== "HEAD") {
    headers["Content-Type"] = "application/json";
    if (csrfToken) headers["X-CSRF-Token"] = csrfToken;
    if (body !== undefined) init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "network", err.message);
  }
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (response.ok) return data;

  const code = (data && data.error && data.error.code) || `http_${response.status}`;
  const message = (data && data.error && data.error.message) || response.statusText;
  const retryAfter = Number.parseInt(response.headers.get("Retry-After") || "", 10);
  const problems = data && data.error && Array.isArray(data.error.problems) ? data.error.problems : null;
  const reason = data && data.error && typeof data.error.reason === "string" ? data.error.reason : null;
  const params = data && data.error && data.error.params && typeof data.error.params === "object" ? data.error.params : null;
  const error = new ApiError(response.status, code, message, Number.isFinite(retryAfter) ? retryAfter : null, problems, reason, params);
  if (response.status === 401 && redirectOn401 && (code === "unauthenticated" || code === "session_expired")) {
    error.redirected = true;
    sendToSignIn(code === "session_expired");
  }
  throw error;
}
