// Keyboard, wheel and pointer gestures → `control` messages. Pure: takes the current state and
// shape, returns what to send (the viewer adds `v` and `seq`).

import { layoutsFor } from "./protocol.js";

/** Drag tools; the left button drags with the current tool, the right button always does W/L. */
export const TOOLS = ["pan", "window_level", "measure"];

/** The keyboard shortcuts, for the help panel: [keys, message key]. */
export const SHORTCUTS = [
  ["↑ ↓ / wheel", "viewer.key.slice"],
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
  ["Esc", "viewer.key.reset"],
  ["?", "viewer.key.help"],
];

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

function pan(state, dx, dy) {
  const [x, y] = state.center || [0.5, 0.5];
  const clamp = (v) => Math.min(1, Math.max(0, Math.round(v * 1000) / 1000));
  return view({ center: [clamp(x + dx), clamp(y + dy)] });
}

/**
 * The action for a key (`KeyboardEvent.key`) given `{ state, shape, tool }`:
 * `{ send }` (a message without v/seq), `{ tool }` (a new drag tool), `{ help: true }`, or null
 * when the key is not a viewer shortcut.
 */
export function keyAction(key, { state, shape, tool }) {
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
      return view({ etdrs: !state.etdrs });
    case "c":
    case "C":
      return (state.calipers || []).length ? view({ calipers: [] }) : null;
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
    case "Escape":
      return { send: { type: "view", set: { reset: true } }, tool: "pan" };
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
