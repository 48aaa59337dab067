// Autosave of a grading draft: `PUT /api/cases/{id}/draft` about 400 ms after the last change,
// naming the revision the last save returned (the server refuses a stale one with 409).
//
// Until the server has them, the values live in sessionStorage (this tab only, gone when the
// tab closes; never localStorage, which would keep grades on the machine), so a reload or a
// sign-in after an expired session restores them. A failed save (network, 5xx, 429) is retried
// with growing waits; leaving the page or hiding the tab sends what is unsent at once with
// `fetch(..., { keepalive: true })`, which outlives the page.
//
// States reported through `onState(state, detail)`: `saved`, `pending` (changed, waiting for
// the debounce), `saving`, `offline` (retrying), `invalid` (422: the server named problems),
// `conflict` (409: another tab or window saved), `error` (anything else; not retried).

import { api } from "../api.js";

const DEBOUNCE_MS = 400;
const RETRY_MS = [1000, 2000, 4000, 8000, 15000];
const STORE_PREFIX = "readroom.grading.unsent.";

function storeKey(assignmentId) {
  return `${STORE_PREFIX}${assignmentId}`;
}

/** The unsent values kept for an assignment (`{ case_id, revision, values, at }`), or null. */
export function readUnsent(assignmentId) {
  try {
    const raw = sessionStorage.getItem(storeKey(assignmentId));
    const kept = raw ? JSON.parse(raw) : null;
    return kept && typeof kept.values === "object" ? kept : null;
  } catch {
    return null;
  }
}

/** Forgets the unsent values of an assignment. */
export function dropUnsent(assignmentId) {
  try {
    sessionStorage.removeItem(storeKey(assignmentId));
  } catch {
    // Storage refused (private mode): nothing was kept.
  }
}

export class Autosave {
  /**
   * `caseId`, `assignmentId`, `revision` (the draft's, or null); `values()` → the values to send;
   * `context()` → `{ render_state, lossless_sha256 }`; `onState(state, detail)`;
   * `onProblems(problems)` (422); `onConflict()` (409).
   */
  constructor({ caseId, assignmentId, revision, values, context, onState, onProblems, onConflict }) {
    Object.assign(this, { caseId, assignmentId, revision: revision ?? null, values, context, onState, onProblems, onConflict });
    this.changes = 0;
    this.saved = 0;
    this.timer = null;
    this.inflight = null;
    this.failures = 0;
    this.paused = false;
    this.state = "saved";
  }

  /** Whether there are changes the server does not have. */
  dirty() {
    return this.changes !== this.saved;
  }

  /** Values changed: keep them in the tab and save soon. */
  changed() {
    if (this.paused) return;
    this.changes += 1;
    this.keep();
    this.failures = 0;
    this.set("pending");
    this.schedule(DEBOUNCE_MS);
  }

  /** Marks restored values (from sessionStorage) as unsent, and saves them now. */
  restored() {
    this.changes += 1;
    this.keep();
    this.set("pending");
    this.schedule(0);
  }

  keep() {
    try {
      sessionStorage.setItem(storeKey(this.assignmentId), JSON.stringify({
        case_id: this.caseId, revision: this.revision, values: this.values(), at: new Date().toISOString(),
      }));
    } catch {
      // Storage full or refused: the values are still in the page.
    }
  }

  set(state, detail = null) {
    this.state = state;
    this.onState(state, detail);
  }

  schedule(ms) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.send(), ms);
  }

  /** Sends the current values unless the server has them; `keepalive` for a page being left. */
  send({ keepalive = false } = {}) {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.paused || !this.dirty()) return this.inflight || Promise.resolve();
    if (this.inflight) {
      // One save at a time (each names the revision the previous one returned).
      this.again = true;
      return this.inflight;
    }
    const sent = this.changes;
    const body = { values: this.values(), revision: this.revision, ...this.context() };
    this.set("saving");
    const path = `/api/cases/${encodeURIComponent(this.caseId)}/draft`;
    this.inflight = api(path, { method: "PUT", body, keepalive })
      .then((answer) => this.succeeded(answer, sent), (err) => this.failed(err))
      .finally(() => {
        this.inflight = null;
        if (this.again && !this.paused) {
          this.again = false;
          if (this.dirty() && this.state !== "conflict" && this.state !== "invalid") this.schedule(0);
        }
      });
    return this.inflight;
  }

  succeeded(answer, sent) {
    this.revision = answer.revision;
    this.saved = Math.max(this.saved, sent);
    this.failures = 0;
    if (this.dirty()) {
      this.keep();
      this.set("pending");
      this.schedule(DEBOUNCE_MS);
    } else {
      dropUnsent(this.assignmentId);
      this.set("saved", answer.updated_at);
    }
  }

  failed(err) {
    if (err.redirected) return; // Signing in again; the values wait in sessionStorage.
    if (err.status === 409) {
      this.paused = true;
      dropUnsent(this.assignmentId);
      this.set("conflict", err.message);
      this.onConflict();
    } else if (err.status === 422 && err.problems) {
      this.set("invalid", err.problems);
      this.onProblems(err.problems);
    } else if (err.status === 0 || err.status === 429 || err.status >= 500) {
      const wait = err.retryAfter ? err.retryAfter * 1000 : RETRY_MS[Math.min(this.failures, RETRY_MS.length - 1)];
      this.failures += 1;
      this.set("offline", wait);
      this.schedule(wait);
    } else {
      this.set("error", err);
    }
  }

  /** Stops saving and waits for a save in flight (before a submission). */
  async settle() {
    this.paused = true;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.inflight) await this.inflight.catch(() => {});
  }

  /** Saves again after `settle()` (a submission that was refused). */
  resume() {
    this.paused = false;
    if (this.dirty()) this.schedule(DEBOUNCE_MS);
  }

  /** The page is being left or hidden: send what is unsent now, in a request that outlives it. */
  leave() {
    if (!this.paused && this.dirty()) this.send({ keepalive: true });
  }

  /** Stops for good (the page is gone; unsent values stay in sessionStorage). */
  stop() {
    this.paused = true;
    clearTimeout(this.timer);
    this.timer = null;
  }
}
