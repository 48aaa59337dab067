// The streamed image viewer of a case: the worker's H.264 video in a `<video>` at exact device
// pixels, the verified lossless frame over it once the view settles, the toolbar, keyboard and
// pointer input, the connection quality indicator and automatic reconnection with the same view.
//
// `window.readroomViewer` exposes the live state to the browser tests (the frame numbers,
// lossless verification, errors, getStats) in test builds only: the server built with its
// `test-hooks` feature marks the page with `<meta name="readroom-test-hooks">`, which a build
// for users never carries (scripts/check-api-build checks that the feature stays off).

import { api } from "../api.js";
import { h } from "../dom.js";
import { currentLanguage, examLabel, formatNumber, t } from "../i18n.js";
import { StreamConnection, mark } from "./connection.js";
import { LosslessAssembler, canVerify, drawAndHash, serially } from "./lossless.js";
import { MAX_MESSAGE, VERSION, changesView, layoutsFor, parseChunk, parseServerMessage, restoreChange, viewportFor } from "./protocol.js";
import { CineKeys, DragCoalescer, SHORTCUTS, TOOLS, UndoStack, WheelSteps, keyAction, resetAction, wheelAction } from "./input.js";

/** Waits between reconnection attempts, then the last one repeats. The first is short: a lost
 * worker is replaced by another at once (the server places the new session elsewhere). */
const BACKOFF_MS = [100, 1000, 2000, 4000, 8000, 15000];
/** Attempts in a row before giving up (a button offers to try again). */
const MAX_ATTEMPTS = 10;
const PING_MS = 2000;
/** How often the worker is checked for liveness, and how long it may stay silent (while the
 * page is visible) before the connection counts as lost. A worker answers every ping at once;
 * UDP says nothing when a worker dies, and ICE would take ~5 s (Chromium) to notice. */
const LIVENESS_MS = 500;
const SILENCE_MS = 1500;
const HIDDEN_SILENCE_MS = 10000;
const RESIZE_DEBOUNCE_MS = 250;
/** A change not acknowledged within this long no longer holds back the lossless frame. */
const ACK_PATIENCE_MS = 3000;
/** How long the "Undo" offer stays in the status bar (Ctrl+Z works after that too). */
const UNDO_OFFER_MS = 8000;
/** Movement (device px) before a press becomes a drag. */
const DRAG_THRESHOLD = 4;
const SVG = "http://www.w3.org/2000/svg";
/** A next-case ticket younger than this is used as it is; an older one is replaced (tickets
 * live 60 s from issue, checked on the worker's clock). */
const TICKET_FRESH_MS = 40000;

export class Viewer {
  /** `caseId`; `onStreaming()` is called when the first frame of a connection is shown. */
  constructor({ caseId, onStreaming = () => {} }) {
    /** The language its controls are labelled in (a page in another language makes a new one). */
    this.lang = currentLanguage();
    this.caseId = caseId;
    this.onStreaming = onStreaming;
    this.conn = null;
    this.sessionId = null;
    this.streamId = null;
    this.shape = null;
    /** Called with each case's shape as it is opened (the case page's measurements). */
    this.onShape = null;
    this.state = null;
    this.savedState = null;
    this.frame = 0;
    this.measurements = [];
    this.lossless = null;
    this.badge = "LOSSY";
    this.errors = [];
    this.seq = 0;
    this.tool = "pan";
    this.awaiting = new Map();
    this.pings = new Map();
    this.rtt = null;
    this.quality = null;
    this.failures = 0;
    this.timers = new Set();
    this.destroyed = false;
    this.readyReceived = false;
    this.framePresented = false;
    this.assembler = new LosslessAssembler();
    this.verifying = Promise.resolve();
    this.undoStack = new UndoStack();
    this.wheelSteps = new WheelSteps();
    this.cineKeys = new CineKeys();
    this.viewport = null;
    this.switching = null;
    /** The grader's next case and its ticket (see `prefetch`). */
    this.next = null;
    /** The case the worker has ready (`prefetched`), if any. */
    this.prefetched = null;
    this.listeners = [];
    this.parked = false;
    this.build();
  }

  // ---- DOM ----------------------------------------------------------------------------------

  build() {
    this.video = h("video", { class: "viewer-video", muted: true, autoplay: true, playsinline: true, disablepictureinpicture: true, "aria-hidden": "true" });
    this.video.muted = true;
    this.canvas = h("canvas", { class: "viewer-lossless", hidden: true, "aria-hidden": "true" });
    this.rubber = document.createElementNS(SVG, "svg");
    this.rubber.setAttribute("class", "viewer-rubber");
    this.rubberLine = document.createElementNS(SVG, "line");
    this.rubber.append(this.rubberLine);
    this.rubber.setAttribute("hidden", "");
    this.screen = h("div", { class: "viewer-screen" }, this.video, this.canvas, this.rubber);
    this.overlayText = h("p", { class: "viewer-overlay-text" });
    this.retryButton = h("button", { type: "button", class: "primary", hidden: true, text: t("viewer.retry"), onclick: () => this.retry() });
    this.overlay = h("div", { class: "viewer-overlay", role: "status", "aria-live": "polite" }, this.overlayText, this.retryButton);
    this.stage = h("div", {
      class: "viewer-stage",
      tabindex: "0",
      "aria-label": t("viewer.stage_label"),
      "aria-describedby": "viewer-help",
    }, this.screen, this.overlay);

    this.examSelect = h("select", { class: "viewer-exam", "aria-label": t("viewer.exam"), onchange: () => this.sendView({ exam: this.examSelect.value, layout: "single" }) });
    this.layoutButton = h("button", { type: "button", onclick: () => this.runKey("l") });
    this.toolButtons = Object.fromEntries(TOOLS.map((tool) => [tool, h("button", {
      type: "button",
      "aria-pressed": "false",
      text: t(`viewer.tool.${tool}`),
      onclick: () => this.setTool(tool),
    })]));
    this.toggleButtons = {
      red_free: h("button", { type: "button", "aria-pressed": "false", text: t("viewer.red_free"), onclick: () => this.runKey("r") }),
      invert: h("button", { type: "button", "aria-pressed": "false", text: t("viewer.invert"), onclick: () => this.runKey("i") }),
      etdrs: h("button", { type: "button", "aria-pressed": "false", text: t("viewer.grid"), onclick: () => this.runKey("g") }),
    };
    this.helpButton = h("button", { type: "button", "aria-expanded": "false", "aria-controls": "viewer-help", text: "?", title: t("viewer.key.help"), onclick: () => this.toggleHelp() });
    const tools = h("div", { class: "viewer-tools", role: "toolbar", "aria-label": t("viewer.tools") },
      this.examSelect,
      this.layoutButton,
      h("span", { class: "viewer-group" }, Object.values(this.toolButtons)),
      h("span", { class: "viewer-group" },
        h("button", { type: "button", text: "−", title: t("viewer.key.zoom"), onclick: () => this.runKey("-") }),
        h("button", { type: "button", text: t("viewer.fit"), onclick: () => this.runKey("0") }),
        h("button", { type: "button", text: "1:1", onclick: () => this.runKey("1") }),
        h("button", { type: "button", text: "+", title: t("viewer.key.zoom"), onclick: () => this.runKey("+") })),
      h("span", { class: "viewer-group" }, Object.values(this.toggleButtons)),
      h("button", { type: "button", text: t("viewer.reset"), title: t("viewer.reset_title"), onclick: () => this.runAction(resetAction(this.context())) }),
      this.helpButton);

    this.badgeEl = h("span", { class: "viewer-badge lossy", title: t("viewer.badge_lossy_title") });
    this.positionEl = h("span", { class: "viewer-position" });
    this.zoomEl = h("span", { class: "viewer-zoom" });
    this.wlEl = h("span", { class: "viewer-wl" });
    this.measureEl = h("span", { class: "viewer-measure" });
    this.qualityEl = h("span", { class: "viewer-quality", dataset: { level: "unknown" } });
    this.messageEl = h("span", { class: "viewer-message", role: "alert" });
    this.undoText = h("span", {});
    this.undoButton = h("button", { type: "button", class: "link-button", text: t("viewer.undo"), title: "Ctrl+Z", onclick: () => {
      this.undo();
      this.stage.focus({ preventScroll: true });
    } });
    this.undoEl = h("span", { class: "viewer-undo", role: "status", hidden: true }, this.undoText, " ", this.undoButton);
    const status = h("div", { class: "viewer-status" },
      this.badgeEl, this.positionEl, this.zoomEl, this.wlEl, this.measureEl, h("span", { class: "spacer" }), this.undoEl, this.messageEl, this.qualityEl);

    this.help = h("div", { id: "viewer-help", class: "viewer-help", hidden: true },
      h("h3", { text: t("viewer.shortcuts") }),
      h("dl", {}, SHORTCUTS.flatMap(([keys, label]) => [h("dt", {}, h("kbd", { text: keys })), h("dd", { text: t(label) })]),
        h("dt", {}, h("kbd", { text: t("viewer.key.right_drag_keys") })), h("dd", { text: t("viewer.key.right_drag") }),
        h("dt", {}, h("kbd", { text: t("viewer.key.shift_click_keys") })), h("dd", { text: t("viewer.key.shift_click") })));

    this.element = h("section", { class: "viewer", dataset: { state: "connecting" }, "aria-label": t("case.images") },
      tools, this.stage, status, this.help);
    this.updateControls();
    this.updateBadge();
  }

  // ---- life cycle ---------------------------------------------------------------------------

  /** Starts streaming once the element is in the document. */
  start() {
    if (typeof RTCPeerConnection === "undefined") {
      this.setPhase("ended", t("viewer.unsupported"));
      return;
    }
    this.attach();
    this.viewport = this.measure();
    this.every(PING_MS, () => this.heartbeat());
    this.every(LIVENESS_MS, () => this.checkLiveness());
    this.connect();
  }

  /** Listens to the page's keyboard, the stage's pointer and its size; exposes the debug API. */
  attach() {
    this.listeners = [
      [document, "keydown", (event) => this.onKey(event)],
      [document, "keyup", (event) => this.onKeyUp(event)],
      [window, "blur", () => this.stopCine()],
      [window, "pagehide", () => this.conn && this.conn.close()],
      [this.stage, "pointerdown", (event) => this.onPointerDown(event)],
      [this.stage, "pointermove", (event) => this.onPointerMove(event)],
      [this.stage, "pointerup", (event) => this.onPointerUp(event)],
      [this.stage, "pointercancel", () => this.endDrag()],
      [this.stage, "contextmenu", (event) => event.preventDefault()],
      [this.stage, "wheel", (event) => this.onWheel(event), { passive: false }],
    ];
    for (const [target, type, fn, options] of this.listeners) target.addEventListener(type, fn, options);
    this.resizeObserver = new ResizeObserver(() => this.onResize());
    this.resizeObserver.observe(this.stage);
    if (document.querySelector('meta[name="readroom-test-hooks"]')) this.installDebugApi();
  }

  /** Stops listening to the page (the connection stays up: see `park` in keeper.js). */
  detach() {
    for (const [target, type, fn, options] of this.listeners || []) target.removeEventListener(type, fn, options);
    this.listeners = [];
    if (this.resizeObserver) this.resizeObserver.disconnect();
    this.resizeObserver = null;
    this.endDrag();
    if (window.readroomViewer && window.readroomViewer.owner === this) delete window.readroomViewer;
  }

  /**
   * Opens `caseId` on this viewer's open connection (the next case): a ticket for this viewer
   * session (the prefetched one while fresh, see `prefetch`), sent to the worker as
   * `open_case`; the worker answers with `ready` for the
   * new case and its first frame, with no new peer connection. Re-attaches to the page.
   * Returns false (and changes nothing) when the connection cannot take it; the caller then
   * starts a new viewer. A refusal after this is answered by reconnecting on the new case.
   */
  async switchCase(caseId) {
    if (this.destroyed || !this.conn || !this.conn.ready() || !this.readyReceived || !this.sessionId) return false;
    // The prefetched ticket is used at once (no await: the message goes out in the same task
    // as the navigation); otherwise one is fetched.
    let ticket = this.readyTicketFor(caseId);
    if (!ticket) {
      try {
        ticket = await this.ticketFor(caseId);
      } catch {
        return false;
      }
    }
    if (this.destroyed || !this.conn || !this.conn.ready()) return false;
    mark("open-case");
    this.caseId = caseId;
    this.savedState = null;
    this.readyReceived = false;
    this.framePresented = false;
    this.shape = null;
    this.state = null;
    this.lossless = null;
    this.measurements = [];
    this.undoStack.clear();
    this.cineKeys.reset();
    this.hideUndo();
    this.hideLossless();
    this.setPhase("opening", t("viewer.opening"));
    this.prefetched = null;
    const seq = this.sendMessage({ type: "open_case", ticket });
    if (seq === null) return false;
    this.switching = seq;
    this.attach();
    // Taking the element out of the old page paused the video (as for any media element).
    this.video.play().catch(() => {});
    this.watchFirstFrame();
    this.updateControls();
    return true;
  }

  /**
   * Gets `caseId`, the grader's next case, ready on this connection while they work on this
   * one: a ticket for this viewer session (`purpose: prefetch`), sent as `prefetch_case`; the
   * worker opens and renders that case beside this one, and `switchCase(caseId)` then shows it
   * at once (with the same ticket while it is fresh). Asked again for the same case, it only
   * renews an old ticket (the case page asks when the form loads and when the grade is
   * submitted). Waits for the stream to be up; best effort: a failure changes nothing.
   */
  prefetch(caseId) {
    if (this.destroyed || !caseId || caseId === this.caseId) return;
    const held = this.next;
    if (held && held.caseId === caseId && (held.at === null || performance.now() - held.at < TICKET_FRESH_MS)) return;
    this.next = { caseId, at: null, ticket: null, seq: null };
    this.sendPrefetch();
  }

  /** Asks for the next case's ticket and sends it, once the stream is up. */
  sendPrefetch() {
    const next = this.next;
    if (!next || next.ticket || next.promise || !this.readyReceived || !this.sessionId || !this.conn || !this.conn.ready()) return;
    next.promise = api(`/api/cases/${encodeURIComponent(next.caseId)}/ticket`, {
      method: "POST",
      body: { viewer_session: this.sessionId, purpose: "prefetch" },
    }).then((answer) => {
      next.at = performance.now();
      next.ticket = answer.ticket;
      if (this.next === next && this.conn && this.conn.ready()) {
        next.seq = this.sendMessage({ type: "prefetch_case", ticket: answer.ticket });
      }
      return answer.ticket;
    });
    next.promise.catch((err) => {
      console.info("prefetch failed:", err && err.status, err && err.message);
      if (this.next === next) this.next = null;
    });
  }

  /** The prefetched ticket for `caseId` if it is in hand and fresh (taken), else null. */
  readyTicketFor(caseId) {
    const held = this.next;
    if (!held || held.caseId !== caseId || !held.ticket || performance.now() - held.at >= TICKET_FRESH_MS) return null;
    this.next = null;
    return held.ticket;
  }

  /** A ticket to open `caseId` now: the prefetched one while fresh, else a new one. */
  async ticketFor(caseId) {
    const held = this.next;
    this.next = null;
    if (held && held.caseId === caseId && held.promise) {
      const ticket = await held.promise.catch(() => null);
      if (ticket && performance.now() - held.at < TICKET_FRESH_MS) return ticket;
    }
    const answer = await api(`/api/cases/${encodeURIComponent(caseId)}/ticket`, {
      method: "POST",
      body: { viewer_session: this.sessionId, purpose: "open_case" },
    });
    return answer.ticket;
  }

  /** Ends the session and releases everything (leaving the page). */
  destroy() {
    this.destroyed = true;
    if (this.conn) this.conn.close();
    for (const timer of this.timers) {
      clearTimeout(timer);
      clearInterval(timer);
    }
    this.timers.clear();
    this.detach();
    this.video.srcObject = null;
  }

  later(ms, fn) {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
    return timer;
  }

  every(ms, fn) {
    const timer = setInterval(fn, ms);
    this.timers.add(timer);
  }

  setPhase(phase, text = "", { retry = false } = {}) {
    this.element.dataset.state = phase;
    this.overlayText.textContent = text;
    this.overlay.hidden = !text && !retry;
    this.retryButton.hidden = !retry;
  }

  // ---- connection ---------------------------------------------------------------------------

  async connect() {
    if (this.destroyed) return;
    if (this.conn) this.conn.close();
    this.readyReceived = false;
    this.framePresented = false;
    this.lastHeard = null;
    this.assembler.drop();
    this.awaiting.clear();
    this.cineKeys.reset();
    const conn = new StreamConnection({
      onTrack: (stream) => conn === this.conn && this.onTrack(stream),
      onOpen: () => conn === this.conn && this.heartbeat(),
      onText: (text) => conn === this.conn && this.onText(text),
      onBinary: (data) => conn === this.conn && this.onBinary(data),
      onLost: (reason) => conn === this.conn && this.onLost(reason),
    });
    this.conn = conn;
    this.setPhase(this.failures ? "reconnecting" : "connecting", t(this.failures ? "viewer.reconnecting" : "viewer.connecting"));
    try {
      const answer = await conn.open(this.caseId, this.viewport, this.sessionId);
      if (conn !== this.conn) return;
      this.sessionId = answer.viewer_session;
      this.streamId = answer.session_id;
      this.setPhase("opening", t("viewer.opening"));
    } catch (err) {
      if (conn !== this.conn || this.destroyed) return;
      conn.close();
      if (err && err.redirected) return;
      if (err && (err.status === 400 || err.status === 403 || err.status === 404)) {
        this.setPhase("ended", t(err.status === 400 ? "viewer.refused" : "viewer.not_allowed", { reason: err.message || "" }), { retry: err.status === 400 });
        return;
      }
      this.scheduleReconnect(err && err.status === 503 ? "viewer.busy" : "viewer.unreachable");
    }
  }

  onLost(reason) {
    if (this.destroyed) return;
    if (this.parked) {
      // Nobody is looking: no reconnect (the next case page starts a new connection).
      this.destroy();
      return;
    }
    if (this.state) this.savedState = this.state;
    this.hideLossless();
    console.info("stream connection lost:", reason);
    this.scheduleReconnect("viewer.lost");
  }

  scheduleReconnect(messageKey) {
    this.failures += 1;
    if (this.failures > MAX_ATTEMPTS) {
      this.setPhase("ended", t("viewer.gave_up"), { retry: true });
      return;
    }
    const wait = BACKOFF_MS[Math.min(this.failures - 1, BACKOFF_MS.length - 1)];
    this.setPhase("reconnecting", `${t(messageKey)} ${t("viewer.retrying_in", { seconds: formatNumber(wait / 1000, 1) })}`);
    this.later(wait, () => this.connect());
  }

  retry() {
    this.failures = 0;
    this.connect();
  }

  onTrack(stream) {
    this.video.srcObject = stream;
    this.lastFrame = null;
    this.video.play().catch(() => {});
    this.watchFirstFrame();
  }

  /**
   * Marks the first new frame presented (of a connection, or of a case opened on it). Frames
   * are followed with `requestVideoFrameCallback`; the one shown before (which Chromium can
   * report again when the element moves to the next case's page) does not count. The mark is
   * the callback's time (the animation frame that shows it); `expectedDisplayTime` was tried and
   * is sometimes ~300 ms in the past for a frame decoded while the page changed.
   */
  watchFirstFrame() {
    const presented = (at) => {
      if (this.conn && !this.framePresented) {
        mark("first-frame", at);
        this.framePresented = true;
        this.maybeStreaming();
      }
    };
    if (!this.video.requestVideoFrameCallback) {
      this.video.addEventListener("playing", () => presented(undefined), { once: true });
      return;
    }
    const before = this.lastFrame;
    this.firstFrameWaiter = (frame, at) => {
      const fresh = !before || (frame.count > before.count && (frame.rtp === undefined || frame.rtp !== before.rtp));
      if (fresh) presented(at);
      return fresh;
    };
    if (this.followingFrames) return;
    this.followingFrames = true;
    const next = (now, metadata) => {
      if (this.destroyed) return;
      const frame = { count: metadata.presentedFrames, rtp: metadata.rtpTimestamp };
      this.lastFrame = frame;
      if (this.firstFrameWaiter && this.firstFrameWaiter(frame, now)) this.firstFrameWaiter = null;
      this.video.requestVideoFrameCallback(next);
    };
    this.video.requestVideoFrameCallback(next);
  }

  maybeStreaming() {
    if (!this.readyReceived || !this.framePresented) return;
    this.failures = 0;
    this.setPhase("streaming");
    this.onStreaming();
    this.sendPrefetch();
  }

  // ---- messages from the worker -------------------------------------------------------------

  onText(text) {
    this.lastHeard = performance.now();
    const message = parseServerMessage(text);
    if (!message) {
      console.warn("ignored a malformed message from the worker");
      return;
    }
    switch (message.type) {
      case "ready":
        mark("ready");
        this.onReady(message);
        break;
      case "ack":
        this.awaiting.delete(message.seq);
        this.frame = Math.max(this.frame, Number(message.frame) || 0);
        this.state = message.state;
        this.measurements = Array.isArray(message.measurements) ? message.measurements : [];
        this.refreshLossless();
        this.updateControls();
        break;
      case "lossless":
        if (message.frame === this.frame) this.assembler.announce(message);
        this.updateBadge();
        break;
      case "lossless_withheld":
        // The worker's lossless budget: this view stays compressed (for a while, or for this
        // case), and the grader is told why.
        if (message.frame === this.frame) {
          this.withheld = { frame: message.frame, reason: message.reason, retryAfterMs: message.retry_after_ms ?? null };
          const seconds = Math.max(1, Math.ceil((message.retry_after_ms || 0) / 1000));
          this.flash(t(message.reason === "case_budget" ? "viewer.withheld_case" : "viewer.withheld_rate", { seconds }), "warn");
          this.updateBadge();
        }
        break;
      case "prefetched":
        // The case as the viewer named it (a hidden repeat's address, not the case behind it).
        if (this.next && message.seq === this.next.seq) this.prefetched = this.next.caseId;
        break;
      case "pong": {
        const sent = this.pings.get(message.seq);
        this.pings.delete(message.seq);
        if (sent !== undefined) this.rtt = performance.now() - sent;
        break;
      }
      case "error":
        this.onError(message);
        break;
      default:
        break;
    }
  }

  onReady(message) {
    this.switching = null;
    this.readyReceived = true;
    this.sessionId = message.session;
    this.shape = message.shape;
    if (this.onShape) this.onShape(this.shape);
    this.state = message.state;
    this.frame = Math.max(this.frame, Number(message.frame) || 0);
    this.fillExams();
    if (this.savedState) {
      const change = restoreChange(this.savedState, this.state);
      this.savedState = null;
      if (Object.keys(change).length) this.sendView(change);
    }
    this.updateControls();
    this.maybeStreaming();
  }

  onError(message) {
    if (message.seq !== null && message.seq !== undefined) this.awaiting.delete(message.seq);
    if (this.next && this.next.seq !== null && message.seq === this.next.seq) {
      // The next case could not be made ready: it is opened from scratch when asked for.
      console.info("prefetch_case refused:", message.code);
      return;
    }
    if (this.switching !== null && message.seq === this.switching) {
      // The worker could not open the next case on this connection: a new one on that case.
      this.switching = null;
      console.info("open_case refused, reconnecting:", message.code);
      this.failures = 0;
      this.connect();
      return;
    }
    this.errors.push({ code: message.code, seq: message.seq ?? null, message: message.message });
    if (this.errors.length > 200) this.errors.splice(0, this.errors.length - 200);
    this.flash(t(`viewer.error.${message.code}`, { message: message.message }), "error");
    this.refreshLossless();
  }

  onBinary(data) {
    this.lastHeard = performance.now();
    const chunk = parseChunk(data);
    if (!chunk) return;
    const complete = this.assembler.add(chunk);
    this.updateBadge();
    if (complete) this.verifying = serially(this.verifying, () => this.verify(complete));
  }

  async verify({ meta, blob }) {
    if (meta.frame !== this.frame || this.destroyed) return;
    if (!canVerify()) {
      this.flash(t("viewer.cannot_verify"), "warn");
      return;
    }
    let sha = null;
    try {
      sha = await drawAndHash(this.canvas, blob, meta.width, meta.height);
    } catch (err) {
      console.warn("lossless frame could not be drawn:", err.message);
    }
    const ok = sha === meta.sha256;
    this.lossless = { frame: meta.frame, sha256: meta.sha256, drawn: sha, verified: ok, width: meta.width, height: meta.height, format: meta.format, bytes: Number(meta.bytes) };
    this.sendMessage({ type: "verified", frame: meta.frame, ok });
    if (!ok) this.flash(t("viewer.verify_failed"), "error");
    this.refreshLossless();
  }

  // ---- the lossless overlay and badge -------------------------------------------------------

  /** Shows the verified lossless frame if it is the current frame and nothing is pending. */
  refreshLossless() {
    const now = performance.now();
    for (const [seq, at] of this.awaiting) if (now - at > ACK_PATIENCE_MS) this.awaiting.delete(seq);
    const l = this.lossless;
    const show = !!l && l.verified && l.frame === this.frame && this.awaiting.size === 0;
    this.canvas.hidden = !show;
    this.badge = show ? "LOSSLESS" : "LOSSY";
    this.updateBadge();
  }

  hideLossless() {
    this.canvas.hidden = true;
    this.badge = "LOSSY";
    this.updateBadge();
  }

  updateBadge() {
    const lossless = this.badge === "LOSSLESS";
    this.badgeEl.className = `viewer-badge ${lossless ? "lossless" : "lossy"}`;
    const withheld = !lossless && this.withheld && this.withheld.frame === this.frame ? this.withheld : null;
    this.badgeEl.title = withheld
      ? t(withheld.reason === "case_budget" ? "viewer.withheld_case_title" : "viewer.withheld_rate_title")
      : t(lossless ? "viewer.badge_lossless_title" : "viewer.badge_lossy_title");
    this.badgeEl.dataset.withheld = withheld ? withheld.reason : "";
    const progress = this.assembler.progress();
    this.badgeEl.textContent = !lossless && progress !== null
      ? `${t("viewer.lossy")} · ${formatNumber(Math.floor(progress * 100))} %`
      : t(lossless ? "viewer.lossless" : "viewer.lossy");
  }

  // ---- sending ------------------------------------------------------------------------------

  /** Sends a message (v and seq added); returns its seq, or null when it could not be sent. */
  sendMessage(message) {
    if (!this.conn || !this.conn.ready()) return null;
    const seq = ++this.seq;
    const text = JSON.stringify({ ...message, v: VERSION, seq });
    if (text.length > MAX_MESSAGE) {
      this.flash(t("viewer.error.too_large"), "error");
      return null;
    }
    if (!this.conn.send(text)) return null;
    if (changesView(message)) {
      this.awaiting.set(seq, performance.now());
      this.assembler.drop();
      this.hideLossless();
    }
    return seq;
  }

  sendView(set) {
    return this.sendMessage({ type: "view", set });
  }

  /** Pings a quiet worker, and gives up on one silent for too long (a dead worker process). */
  checkLiveness() {
    if (!this.conn || !this.conn.ready() || !this.readyReceived) return;
    const now = performance.now();
    const quiet = now - (this.lastHeard ?? now);
    const limit = document.visibilityState === "visible" ? SILENCE_MS : HIDDEN_SILENCE_MS;
    if (quiet > limit) {
      const conn = this.conn;
      this.conn = null;
      conn.close();
      this.onLost("worker_silent");
      return;
    }
    if (quiet >= LIVENESS_MS) {
      const seq = this.sendMessage({ type: "ping" });
      if (seq !== null) this.pings.set(seq, now);
    }
  }

  heartbeat() {
    if (!this.conn || !this.conn.ready()) return;
    const seq = this.sendMessage({ type: "ping" });
    if (seq !== null) this.pings.set(seq, performance.now());
    for (const [old, at] of this.pings) if (performance.now() - at > 30000) this.pings.delete(old);
    this.conn.stats().then((stats) => this.updateQuality(stats)).catch(() => {});
  }

  updateQuality(stats) {
    const previous = this.quality || {};
    const received = (stats.packetsReceived || 0) - (previous.packetsReceived || 0);
    const lost = (stats.packetsLost || 0) - (previous.packetsLost || 0);
    const loss = received + lost > 0 ? Math.max(0, lost) / (received + lost) : 0;
    const rtt = this.rtt ?? stats.roundTripMs ?? null;
    this.quality = { ...stats, loss, rtt };
    let level = "unknown";
    if (rtt !== null) level = rtt < 80 && loss < 0.01 ? "good" : rtt < 200 && loss < 0.05 ? "fair" : "poor";
    this.qualityEl.dataset.level = level;
    this.qualityEl.textContent = rtt === null ? "" : t("viewer.quality", { rtt: formatNumber(rtt), loss: formatNumber(loss * 100, 1) });
    this.qualityEl.title = t(`viewer.quality_${level}`);
  }

  flash(text, kind = "info") {
    this.messageEl.textContent = text;
    this.messageEl.dataset.kind = kind;
    clearTimeout(this.flashTimer);
    this.flashTimer = this.later(4000, () => {
      this.messageEl.textContent = "";
    });
  }

  // ---- input --------------------------------------------------------------------------------

  context() {
    return { state: this.state, shape: this.shape, tool: this.tool, dragging: !!this.drag, helpOpen: !this.help.hidden };
  }

  /** Runs the viewer action of a key (see `keyAction` in input.js); false when it has none. */
  runKey(key, repeat = false) {
    const cine = this.cineKeys.down(key, repeat, this.context());
    if (cine && cine.send) this.sendMessage(cine.send);
    if (cine && cine.consumed) return true;
    return this.runAction(keyAction(key, this.context()));
  }

  runAction(action) {
    if (!action) return false;
    if (action.cancelDrag) this.endDrag();
    if (action.tool) this.setTool(action.tool);
    if (action.help) this.toggleHelp();
    if (action.unavailable) this.flash(t("viewer.layout_unavailable"), "info");
    if (action.info) this.flash(t(action.info), "info");
    if (action.send) {
      const seq = this.sendMessage(action.send);
      if (seq !== null && action.undo) {
        this.undoStack.push(action.undo);
        this.offerUndo(action.undo);
      }
    }
    return true;
  }

  /** Puts back what the last undoable change (Esc, Reset, C, G) removed. */
  undo() {
    const entry = this.undoStack.pop(this.state ? this.state.exam : undefined);
    if (!entry) {
      this.hideUndo();
      this.flash(t("viewer.undo_nothing"), "info");
      return false;
    }
    if (this.sendView(entry.set) === null) {
      this.undoStack.push(entry);
      return false;
    }
    this.hideUndo();
    this.flash(t("viewer.undone", { what: t(entry.label) }), "info");
    return true;
  }

  offerUndo(entry) {
    this.undoText.textContent = t(entry.label);
    this.undoEl.hidden = false;
    clearTimeout(this.undoTimer);
    this.undoTimer = this.later(UNDO_OFFER_MS, () => this.hideUndo());
  }

  hideUndo() {
    clearTimeout(this.undoTimer);
    this.undoEl.hidden = true;
  }

  onKey(event) {
    if (event.defaultPrevented || event.isComposing) return;
    const target = event.target instanceof Element ? event.target : null;
    // Form fields keep their keys (the grading form sits beside the viewer and forwards the
    // image keys itself); buttons and links keep Enter and Space.
    if (target && target.closest("input, textarea, select, [contenteditable]")) return;
    if ((event.ctrlKey || event.metaKey) && !event.altKey && !event.shiftKey && (event.key === "z" || event.key === "Z")) {
      event.preventDefault();
      this.undo();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (target && target.closest("button, a[href], summary") && (event.key === "Enter" || event.key === " ")) return;
    if (this.runKey(event.key, event.repeat)) event.preventDefault();
  }

  /** A released key: ends the cine run it was playing (wherever the focus is now). */
  onKeyUp(event) {
    const action = this.cineKeys.up(event.key);
    if (action) this.sendMessage(action.send);
  }

  /** Ends a cine run in progress (the page lost focus: its keyup would never come). */
  stopCine() {
    const action = this.cineKeys.stop();
    if (action) this.sendMessage(action.send);
  }

  setTool(tool) {
    this.tool = TOOLS.includes(tool) ? tool : "pan";
    this.updateControls();
  }

  toggleHelp() {
    this.help.hidden = !this.help.hidden;
    this.helpButton.setAttribute("aria-expanded", String(!this.help.hidden));
  }

  /** Device-pixel position of a pointer event on the screen element. */
  devicePoint(event) {
    const rect = this.screen.getBoundingClientRect();
    const dpr = this.viewport ? this.viewport.dpr : window.devicePixelRatio || 1;
    return { x: (event.clientX - rect.left) * dpr, y: (event.clientY - rect.top) * dpr, cssX: event.clientX - rect.left, cssY: event.clientY - rect.top };
  }

  onPointerDown(event) {
    if (!this.state || (event.button !== 0 && event.button !== 2)) return;
    // The gesture ends a cine run at the worker; a key still held starts another at its next repeat.
    this.cineKeys.reset();
    this.stage.focus({ preventScroll: true });
    this.stage.setPointerCapture(event.pointerId);
    const at = this.devicePoint(event);
    const mode = event.button === 2 ? "window_level" : event.shiftKey ? "place_grid" : this.tool;
    this.drag = { mode, start: at, last: at, moved: false, moves: new DragCoalescer(mode, at), frame: null };
    event.preventDefault();
  }

  onPointerMove(event) {
    const drag = this.drag;
    if (!drag) return;
    const at = this.devicePoint(event);
    if (!drag.moved && Math.hypot(at.x - drag.start.x, at.y - drag.start.y) < DRAG_THRESHOLD) return;
    drag.moved = true;
    if (drag.mode === "measure") {
      this.drawRubber(drag.start, at);
      drag.last = at;
      return;
    }
    if (drag.mode !== "pan" && drag.mode !== "window_level") return;
    drag.moves.move(at.x - drag.last.x, at.y - drag.last.y);
    drag.last = at;
    if (drag.frame === null) drag.frame = requestAnimationFrame(() => this.flushDrag());
  }

  flushDrag() {
    const drag = this.drag;
    if (!drag) return;
    drag.frame = null;
    const message = drag.moves.flush();
    if (message) this.sendMessage(message);
  }

  onPointerUp(event) {
    const drag = this.drag;
    if (!drag) return;
    const at = this.devicePoint(event);
    if (!drag.moved) {
      if (drag.mode === "place_grid") {
        this.sendMessage({ type: "pointer", action: "place_grid", x: at.x, y: at.y });
      } else if (this.isVolume()) {
        // A click on the en-face locator jumps to that B-scan.
        this.sendMessage({ type: "pointer", action: "click", x: at.x, y: at.y });
      }
    } else if (drag.mode === "measure") {
      this.sendMessage({ type: "pointer", action: "measure", x: drag.start.x, y: drag.start.y, dx: at.x - drag.start.x, dy: at.y - drag.start.y });
    } else {
      if (drag.frame !== null) cancelAnimationFrame(drag.frame);
      drag.frame = null;
      this.flushDrag();
    }
    this.endDrag();
  }

  endDrag() {
    if (this.drag && this.drag.frame !== null) cancelAnimationFrame(this.drag.frame);
    this.drag = null;
    this.rubber.setAttribute("hidden", "");
  }

  drawRubber(from, to) {
    const line = this.rubberLine;
    line.setAttribute("x1", String(from.cssX));
    line.setAttribute("y1", String(from.cssY));
    line.setAttribute("x2", String(to.cssX));
    line.setAttribute("y2", String(to.cssY));
    this.rubber.removeAttribute("hidden");
  }

  onWheel(event) {
    if (!this.state) return;
    event.preventDefault();
    const steps = this.wheelSteps.add(event.deltaY, event.deltaMode);
    if (steps === 0) return;
    const at = this.devicePoint(event);
    const action = wheelAction(steps, at.x, at.y, this.context(), event.ctrlKey);
    if (action) {
      this.cineKeys.reset();
      this.sendMessage(action.send);
    }
  }

  isVolume() {
    const exam = this.shape && this.state && this.shape.exams.find((e) => e.id === this.state.exam);
    return !!exam && exam.slices > 1;
  }

  // ---- size ---------------------------------------------------------------------------------

  measure() {
    const rect = this.stage.getBoundingClientRect();
    const viewport = viewportFor(rect.width, rect.height, window.devicePixelRatio || 1);
    this.screen.style.width = `${viewport.width / viewport.dpr}px`;
    this.screen.style.height = `${viewport.height / viewport.dpr}px`;
    return viewport;
  }

  onResize() {
    clearTimeout(this.resizeTimer);
    this.resizeTimer = this.later(RESIZE_DEBOUNCE_MS, () => {
      const next = this.measure();
      const now = this.viewport;
      if (now && next.width === now.width && next.height === now.height && next.dpr === now.dpr) return;
      this.viewport = next;
      if (this.state) this.sendView({ viewport: next });
    });
  }

  // ---- controls -----------------------------------------------------------------------------

  fillExams() {
    const exams = (this.shape && this.shape.exams) || [];
    this.examSelect.replaceChildren(...exams.map((exam) => h("option", {
      value: exam.id,
      text: examLabel({ kind: exam.kind, eye: exam.eye, frames: exam.slices > 1 ? exam.slices : 0 }),
    })));
    this.examSelect.hidden = exams.length < 2;
  }

  updateControls() {
    const s = this.state;
    for (const [tool, button] of Object.entries(this.toolButtons)) button.setAttribute("aria-pressed", String(this.tool === tool));
    this.stage.dataset.tool = this.tool;
    if (!s) {
      this.layoutButton.textContent = t("viewer.layout.single");
      return;
    }
    if (this.examSelect.value !== s.exam) this.examSelect.value = s.exam;
    for (const [key, button] of Object.entries(this.toggleButtons)) button.setAttribute("aria-pressed", String(!!s[key]));
    this.layoutButton.textContent = t(`viewer.layout.${s.layout}`);
    this.layoutButton.disabled = layoutsFor(this.shape, s.exam).length < 2;
    const exam = this.shape && this.shape.exams.find((e) => e.id === s.exam);
    // Red-free (the green channel) and the ETDRS grid mean nothing on a B-scan.
    const onBscan = !!exam && exam.kind === "oct";
    for (const key of ["red_free", "etdrs"]) {
      const button = this.toggleButtons[key];
      if (!button) continue;
      button.disabled = onBscan;
      button.title = onBscan ? t("viewer.not_on_bscan") : "";
    }
    this.positionEl.textContent = exam && exam.slices > 1 ? t("viewer.bscan", { index: s.slice + 1, count: exam.slices }) : "";
    this.zoomEl.textContent = s.zoom === "fit" ? t("viewer.fit") : `${formatNumber(s.zoom * 100)} %`;
    const defaultWl = Math.abs(s.window - 1) < 1e-3 && Math.abs(s.level - 0.5) < 1e-3 && Math.abs(s.gamma - 1) < 1e-3;
    this.wlEl.textContent = defaultWl ? "" : t("viewer.wl", { window: formatNumber(s.window, 2), level: formatNumber(s.level, 2), gamma: formatNumber(s.gamma, 2) });
    this.measureEl.textContent = this.measurements
      .map((um, i) => `${i + 1}: ${um === null ? "?" : `${formatNumber(um)} µm`}`)
      .join("  ");
  }

  // ---- grading context ----------------------------------------------------------------------

  /**
   * What a grade is made on: the current view state (null before the stream is ready) and the
   * SHA-256 of the lossless frame on screen (null unless the LOSSLESS badge is showing).
   */
  gradingContext() {
    const l = this.lossless;
    const shown = this.badge === "LOSSLESS" && !!l && l.verified && l.frame === this.frame;
    return { render_state: this.state || null, lossless_sha256: shown ? l.sha256 : null };
  }

  // ---- automation hook ----------------------------------------------------------------------

  installDebugApi() {
    const viewer = this;
    window.readroomViewer = {
      owner: viewer,
      get state() { return viewer.state; },
      get shape() { return viewer.shape; },
      get frame() { return viewer.frame; },
      get lossless() { return viewer.lossless; },
      get badge() { return viewer.badge; },
      /** The worker's last `lossless_withheld` for the frame on screen ({frame, reason, retryAfterMs}), or null. */
      get withheld() { return viewer.withheld && viewer.withheld.frame === viewer.frame ? viewer.withheld : null; },
      get sessionId() { return viewer.sessionId; },
      get streamId() { return viewer.streamId; },
      get caseId() { return viewer.caseId; },
      /** The case the worker has ready for the next `open_case` (`prefetch`), or null. */
      get prefetched() { return viewer.prefetched; },
      get errors() { return viewer.errors; },
      get phase() { return viewer.element.dataset.state; },
      get quality() { return viewer.quality; },
      get video() { return viewer.video; },
      get canvas() { return viewer.canvas; },
      stats: () => (viewer.conn ? viewer.conn.stats() : Promise.resolve({})),
      send: (message) => viewer.sendMessage(message),
      sendRaw: (text) => (viewer.conn ? viewer.conn.send(text) : false),
      /** Simulates a lost connection (the viewer reconnects with the same view). */
      drop: () => {
        const conn = viewer.conn;
        if (!conn || !conn.pc) return;
        conn.pc.close();
        conn.lost("dropped");
      },
    };
  }
}
