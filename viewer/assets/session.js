// The signed-in user (`Me`), loaded once per page load and refreshed after changes.

import { api, setCsrfToken } from "./api.js";

let me = null;

/**
 * The signed-in user the server put in the entry page (`<script type="application/json"
 * id="readroom-me">`, the `GET /api/me` answer at page load), taken once and removed from the
 * page; null without one.
 */
function takeEmbedded() {
  if (typeof document === "undefined") return null;
  const element = document.getElementById("readroom-me");
  if (!element) return null;
  element.remove();
  try {
    const user = JSON.parse(element.textContent);
    return user && typeof user === "object" && typeof user.id === "string" ? user : null;
  } catch {
    return null;
  }
}

// Known before the first render: no round trip to `/api/me` on a page load.
const embedded = takeEmbedded();
if (embedded) setSignedIn(embedded, embedded.csrf_token);

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
