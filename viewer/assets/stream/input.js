// Keyboard, wheel and pointer gestures → `control` messages. Pure: takes the current state and
// shape, returns what to send (the viewer adds `v` and `seq`).

import { layoutsFor } from "./protocol.js";

/** Drag tools; the left button drags with the current tool, the right button always does W/L. */
export const TOOLS = ["pan", "window_level", "measure"];

/** The keyboard shortcuts, for the help panel: [keys, message key]. */
export const SHORTCUTS = [
  ["↑ ↓ / wheel", "viewer.key.slice"],
  ["↑ ↓ (hold)", "viewer.key.cine"],
  ["PgUp PgDn", "viewer.key.slice10"],
  ["Home End", "viewer.key.slice_ends"],
  ["← →", "viewer.key.pan"],
  ["+ −", "viewer.key.zoom"],
  ["0", "viewer.key.fit"],
  ["1", "viewer.key.one"],
  ["[ ]", "viewer.key.exam"],
  ["L", "viewer.key.layout"],
  ["R", "viewer.key.red_free"],
  ["I", "viewer.key.invert"],
  ["W", "viewer.key.window_level"],
  ["M", "viewer.key.measure"],
  ["C", "viewer.key.clear"],
  ["G", "viewer.key.grid"],
  ["Esc", "viewer.key.escape"],
  ["Ctrl+Z", "viewer.key.undo"],
  ["?", "viewer.key.help"],
];

/**
 * The display settings Esc steps back through and Reset restores (the worker's initial view),
 * in the order Esc undoes them: zoom and pan, then window/level and gamma, then the filters.
 * Calipers, the ETDRS grid, the exam, layout and B-scan are never touched by Esc or Reset (C
 * clears calipers, G hides the grid, both undoable).
 */
export const ESCAPE_STEPS = [
  { label: "viewer.undo.zoom", set: { zoom: "fit", center: [0.5, 0.5] } },
  { label: "viewer.undo.window_level", set: { window: 1, level: 0.5, gamma: 1 } },
  { label: "viewer.undo.filters", set: { red_free: false, invert: false } },
];

/** How many undoable changes are kept (per case). */
export const UNDO_DEPTH = 20;

const PAN_STEP = 0.05;

function currentExam(state, shape) {
  return ((shape && shape.exams) || []).find((exam) => exam.id === state.exam) || null;
}

function isVolume(state, shape) {
  const exam = currentExam(state, shape);
  return !!exam && exam.slices > 1;
}

function view(set) {
  return { send: { type: "view", set } };
}

function near(a, b) {
  if (typeof a === "number" && typeof b === "number") return Math.abs(a - b) < 1e-3;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => near(x, b[i]));
  return a === b;
}

/** Whether `state` already has every value of `set`. */
function holds(state, set) {
  return Object.entries(set).every(([key, value]) => near(state[key], value));
}

/**
 * An undoable view change: sends `set` and carries `undo`, the change that puts back what `set`
 * replaces (the values `state` has for the same fields), with a message key naming it.
 */
export function undoable(label, set, state) {
  const back = {};
  for (const key of Object.keys(set)) {
    const value = state[key];
    back[key] = Array.isArray(value) ? JSON.parse(JSON.stringify(value)) : value;
  }
  return { send: { type: "view", set }, undo: { label, set: back, exam: state.exam } };
}

/**
 * What Esc does in the image, one thing per press: ends a drag in progress, closes the key
 * list, puts the tool back to pan, then resets one group of display settings (`ESCAPE_STEPS`),
 * each undoable. With nothing left to step back, it says so (calipers and the grid stay).
 */
export function escapeAction({ state, tool, dragging = false, helpOpen = false }) {
  if (dragging) return { cancelDrag: true };
  if (helpOpen) return { help: true };
  if (tool && tool !== "pan") return { tool: "pan" };
  if (!state) return null;
  const step = ESCAPE_STEPS.find((s) => !holds(state, s.set));
  if (!step) return { info: "viewer.escape_nothing" };
  return undoable(step.label, step.set, state);
}

/** The Reset button: every display setting of `ESCAPE_STEPS` at once (one undo), tool pan. */
export function resetAction({ state }) {
  if (!state) return null;
  const set = Object.assign({}, ...ESCAPE_STEPS.map((s) => s.set));
  if (holds(state, set)) return { tool: "pan" };
  return { ...undoable("viewer.undo.reset", set, state), tool: "pan" };
}

/**
 * The undo history of one case's view: `push` an action's `undo`, `pop` the latest one that still
 * applies (one made on another exam is dropped: switching exams already cleared its calipers).
 */
export class UndoStack {
  constructor(depth = UNDO_DEPTH) {
    this.depth = depth;
    this.entries = [];
  }

  push(undo) {
    if (!undo) return;
    this.entries.push(undo);
    if (this.entries.length > this.depth) this.entries.splice(0, this.entries.length - this.depth);
  }

  /** The latest entry for `exam` (older entries of other exams are discarded), or null. */
  pop(exam) {
    while (this.entries.length) {
      const entry = this.entries.pop();
      if (entry.exam === undefined || exam === undefined || entry.exam === exam) return entry;
    }
    return null;
  }

  clear() {
    this.entries = [];
  }

  get size() {
    return this.entries.length;
  }
}

function pan(state, dx, dy) {
  const [x, y] = state.center || [0.5, 0.5];
  const clamp = (v) => Math.min(1, Math.max(0, Math.round(v * 1000) / 1000));
  return view({ center: [clamp(x + dx), clamp(y + dy)] });
}

/**
 * The action for a key (`KeyboardEvent.key`) given `{ state, shape, tool, dragging, helpOpen }`:
 * `{ send }` (a message without v/seq; with `undo` when it removes something the grader made or
 * set), `{ tool }` (a new drag tool), `{ help: true }` (toggle the key list), `{ cancelDrag }`,
 * `{ info }` / `{ unavailable }` (a message key to show), or null when the key is not a viewer
 * shortcut.
 */
export function keyAction(key, context) {
  const { state, shape, tool } = context;
  if (key === "Escape") return escapeAction(context);
  if (!state) return null;
  const volume = isVolume(state, shape);
  const exam = currentExam(state, shape);
  switch (key) {
    case "ArrowDown":
      return volume ? view({ slice_delta: 1 }) : pan(state, 0, PAN_STEP);
    case "ArrowUp":
      return volume ? view({ slice_delta: -1 }) : pan(state, 0, -PAN_STEP);
    case "ArrowRight":
      return pan(state, PAN_STEP, 0);
    case "ArrowLeft":
      return pan(state, -PAN_STEP, 0);
    case "PageDown":
      return volume ? view({ slice_delta: 10 }) : null;
    case "PageUp":
      return volume ? view({ slice_delta: -10 }) : null;
    case "Home":
      return volume ? view({ slice: 0 }) : null;
    case "End":
      return volume && exam ? view({ slice: exam.slices - 1 }) : null;
    case "+":
    case "=":
      return view({ zoom_by: 1.25 });
    case "-":
    case "_":
      return view({ zoom_by: 0.8 });
    case "0":
      return view({ zoom: "fit", center: [0.5, 0.5] });
    case "1":
      return view({ zoom: 1 });
    case "r":
    case "R":
      return view({ red_free: !state.red_free });
    case "i":
    case "I":
      return view({ invert: !state.invert });
    case "g":
    case "G":
      return state.etdrs ? undoable("viewer.undo.grid", { etdrs: false }, state) : view({ etdrs: true });
    case "c":
    case "C":
      return (state.calipers || []).length ? undoable("viewer.undo.calipers", { calipers: [] }, state) : null;
    case "l":
    case "L": {
      const layouts = layoutsFor(shape, state.exam);
      if (layouts.length < 2) return { unavailable: "layout" };
      const next = layouts[(layouts.indexOf(state.layout) + 1) % layouts.length];
      return view({ layout: next });
    }
    case "[":
    case "]": {
      const exams = (shape && shape.exams) || [];
      if (exams.length < 2) return null;
      const at = Math.max(0, exams.findIndex((e) => e.id === state.exam));
      const step = key === "]" ? 1 : -1;
      const next = exams[(at + step + exams.length) % exams.length];
      return view({ exam: next.id, layout: "single" });
    }
    case "w":
    case "W":
      return { tool: tool === "window_level" ? "pan" : "window_level" };
    case "m":
    case "M":
      return { tool: tool === "measure" ? "pan" : "measure" };
    case "p":
    case "P":
      return { tool: "pan" };
    case "?":
      return { help: true };
    default:
      return null;
  }
}

/**
 * The action for a wheel turn of `steps` notches (positive = towards the user) at device
 * pixel (x, y): slices on a volume, zoom about the cursor otherwise or with Ctrl.
 */
export function wheelAction(steps, x, y, { state, shape }, zoomModifier) {
  if (!state || steps === 0) return null;
  if (!zoomModifier && isVolume(state, shape) && state.layout === "single") {
    return view({ slice_delta: steps });
  }
  return { send: { type: "pointer", action: "zoom", x, y, dx: 0, dy: steps } };
}

/** B-scans a second that a held ↑/↓ plays (the worker paces the run). */
export const CINE_FPS = 30;

/**
 * A held ↑/↓ on a volume plays it (cine). The first press steps one B-scan as any key does;
 * the key's first auto-repeat (the system's hold delay, ~0.5 s) starts a run that the worker
 * paces (a `cine` message: every B-scan rendered, whatever the round trip), and the key's
 * later repeats are swallowed. Releasing the key, another key or the page losing focus stops it.
 */
export class CineKeys {
  constructor() {
    this.key = null;
  }

  /** Whether a run was started and not yet stopped. */
  get playing() {
    return this.key !== null;
  }

  /**
   * A keydown: `{ send, consumed: true }` starts a run; `{ consumed: true }` is a repeat of the
   * key playing; `{ send }` stops the run before another key does its own action; null: a key
   * cine leaves alone.
   */
  down(key, repeat, { state, shape }) {
    if (this.key !== null) {
      if (key === this.key) return { consumed: true };
      return this.stop();
    }
    if (!repeat || (key !== "ArrowDown" && key !== "ArrowUp") || !isVolume(state, shape)) return null;
    this.key = key;
    return { send: { type: "cine", step: key === "ArrowDown" ? 1 : -1, fps: CINE_FPS }, consumed: true };
  }

  /** A keyup: the stop when it releases the key playing. */
  up(key) {
    return key === this.key ? this.stop() : null;
  }

  /** The stop message of a run in progress (then forgotten), or null. */
  stop() {
    if (this.key === null) return null;
    this.key = null;
    return { send: { type: "cine", step: 0 } };
  }

  /** Forgets a run without a message (the connection or the case it played on is gone). */
  reset() {
    this.key = null;
  }
}

/** Pixels of wheel travel per notch, and the most notches one event may turn. */
const WHEEL_NOTCH = 100;
const WHEEL_MAX_STEPS = 10;

/**
 * Wheel events → whole notches. Trackpads send many small deltas: they are summed until they
 * make a notch (100 px; lines and pages converted), the remainder kept for the next event, so
 * a slow scroll still steps and a fast one is at most 10 notches per event.
 */
export class WheelSteps {
  constructor() {
    this.rest = 0;
  }

  /** Adds one event's `deltaY` (in `deltaMode` units); returns the notches to act on (0: none yet). */
  add(deltaY, deltaMode = 0) {
    const unit = deltaMode === 1 ? 33 : deltaMode === 2 ? 400 : 1;
    this.rest += (Number(deltaY) || 0) * unit;
    const steps = Math.trunc(this.rest / WHEEL_NOTCH);
    if (steps === 0) return 0;
    this.rest -= steps * WHEEL_NOTCH;
    return Math.max(-WHEEL_MAX_STEPS, Math.min(WHEEL_MAX_STEPS, steps));
  }
}

/**
 * The moves of one pan or window/level drag, coalesced: pointer moves between two animation
 * frames are summed and sent as one `pointer` message (relative to where the drag started), so
 * a 1000 Hz mouse does not flood the worker with messages it would render one frame for.
 */
export class DragCoalescer {
  /** `mode`: `pan` or `window_level`; `start`: `{ x, y }` in device pixels. */
  constructor(mode, start) {
    this.mode = mode;
    this.start = { x: start.x, y: start.y };
    this.dx = 0;
    this.dy = 0;
  }

  /** Adds a move of (dx, dy) device pixels. */
  move(dx, dy) {
    this.dx += dx;
    this.dy += dy;
  }

  /** Whether moves are waiting to be sent. */
  get pending() {
    return this.dx !== 0 || this.dy !== 0;
  }

  /** The message for the moves so far (then forgotten), or null when there were none. */
  flush() {
    if (!this.pending) return null;
    const message = { type: "pointer", action: this.mode, x: this.start.x, y: this.start.y, dx: this.dx, dy: this.dy };
    this.dx = 0;
    this.dy = 0;
    return message;
  }
}
