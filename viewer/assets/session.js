// The signed-in user (`Me`), loaded once per page load and refreshed after changes.

import { api, setCsrfToken, takeEmbeddedAnswer } from "./api.js";

let me = null;

// Known before the first render when the entry page carries `GET /api/me`'s answer (api.js,
// takeEmbeddedAnswer): no round trip to `/api/me` on a page load.
const embedded = takeEmbeddedAnswer("readroom-me");
if (embedded && typeof embedded.id === "string") setSignedIn(embedded, embedded.csrf_token);

/** Fetches `/api/me` (redirects to sign-in without a session) and remembers it. */
export async function loadMe() {
  const user = await api("/api/me");
  setSignedIn(user, user.csrf_token);
  return user;
}

/** The remembered user, or null. */
export function currentUser() {
  return me;
}

/** Remembers a user and CSRF token from a sign-in answer. */
export function setSignedIn(user, csrfToken) {
  me = user;
  setCsrfToken(csrfToken || (user && user.csrf_token));
}

/** Forgets the user (after signing out). */
export function clearSession() {
  me = null;
  setCsrfToken(null);
}

/** Whether the user holds a role, in any study. */
export function hasRole(user, role) {
  return Boolean(user && Array.isArray(user.roles) && user.roles.some((grant) => grant.role === role));
}

/** Admins hold a (global) `admin` grant. */
export function isAdmin(user) {
  return hasRole(user, "admin");
}
