// One-time sign-in links carry their token in the URL fragment (`/signin#token=…`), which the
// browser never sends to the server. This module takes it out of the address bar (and so out of
// the history and any later copy of the URL) as soon as the page starts.

let captured = null;

/** Removes `#token=…` from the address bar; remembers the token for the sign-in page. */
export function captureLinkToken() {
  if (!location.hash || location.hash.length < 2) return;
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  if (!token) return;
  history.replaceState(history.state, "", location.pathname + location.search);
  captured = token;
}

/** The captured token, once: a second call returns null. */
export function takeLinkToken() {
  const token = captured;
  captured = null;
  return token;
}
