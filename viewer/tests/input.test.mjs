// stream/input.js: keys → messages, Esc one step at a time with undo, Reset, the undo stack, and
// the coalescing of wheel and drag input.

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  CINE_FPS, CineKeys, DragCoalescer, ESCAPE_STEPS, SHORTCUTS, UNDO_DEPTH, UndoStack, WheelSteps, escapeAction, keyAction, resetAction,
  wheelAction,
} from "../assets/stream/input.js";
import { catalogue } from "../assets/i18n.js";

const shape = {
  exams: [
    { id: "fod", kind: "fundus", eye: "OD", slices: 1 },
    { id: "fos", kind: "fundus", eye: "OS", slices: 1 },
    { id: "ood", kind: "oct", eye: "OD", slices: 128 },
  ],
  prior: [],
};
const defaults = { exam: "fod", layout: "single", slice: 0, zoom: "fit", center: [0.5, 0.5], window: 1, level: 0.5, gamma: 1, red_free: false, invert: false, etdrs: false, etdrs_center: null, calipers: [] };
const ctx = (state, extra = {}) => ({ state: { ...defaults, ...state }, shape, tool: "pan", ...extra });
const caliper = { a: [0.1, 0.2], b: [0.3, 0.4] };

test("every shortcut and undo message has English and Korean text", () => {
  const en = catalogue("en");
  const ko = catalogue("ko");
  const keys = [...SHORTCUTS.map(([, key]) => key), ...ESCAPE_STEPS.map((s) => s.label), "viewer.undo.reset", "viewer.undo.grid", "viewer.undo.calipers", "viewer.escape_nothing"];
  for (const key of keys) {
    assert.ok(en[key] && ko[key], key);
  }
  assert.ok(SHORTCUTS.some(([keys]) => keys === "Ctrl+Z"));
});

test("keys: B-scans on a volume, pan on a photo, zoom, toggles, tools", () => {
  assert.deepEqual(keyAction("ArrowDown", ctx({ exam: "ood" })), { send: { type: "view", set: { slice_delta: 1 } } });
  assert.deepEqual(keyAction("ArrowDown", ctx({})), { send: { type: "view", set: { center: [0.5, 0.55] } } });
  assert.deepEqual(keyAction("End", ctx({ exam: "ood" })), { send: { type: "view", set: { slice: 127 } } });
  assert.equal(keyAction("PageDown", ctx({})), null);
  assert.deepEqual(keyAction("+", ctx({})).send.set, { zoom_by: 1.25 });
  assert.deepEqual(keyAction("r", ctx({ red_free: true })).send.set, { red_free: false });
  assert.deepEqual(keyAction("W", ctx({})), { tool: "window_level" });
  assert.deepEqual(keyAction("w", ctx({}, { tool: "window_level" })), { tool: "pan" });
  assert.deepEqual(keyAction("]", ctx({ exam: "ood" })).send.set, { exam: "fod", layout: "single" });
  assert.deepEqual(keyAction("l", ctx({ exam: "ood" })), { unavailable: "layout" });
  assert.deepEqual(keyAction("l", ctx({})).send.set, { layout: "both_eyes" });
  assert.equal(keyAction("x", ctx({})), null);
  assert.equal(keyAction("ArrowDown", { state: null, shape, tool: "pan" }), null);
});

test("C and G-off are undoable and the undo puts back exactly what they removed", () => {
  const clear = keyAction("c", ctx({ calipers: [caliper] }));
  assert.deepEqual(clear.send.set, { calipers: [] });
  assert.deepEqual(clear.undo, { label: "viewer.undo.calipers", set: { calipers: [caliper] }, exam: "fod" });
  assert.equal(keyAction("c", ctx({})), null, "nothing to clear");
  const hide = keyAction("g", ctx({ etdrs: true, etdrs_center: [0.4, 0.5] }));
  assert.deepEqual(hide.send.set, { etdrs: false });
  assert.deepEqual(hide.undo.set, { etdrs: true });
  assert.deepEqual(keyAction("g", ctx({})), { send: { type: "view", set: { etdrs: true } } });
});

test("the undo's calipers are a copy (a later change of the state does not alter it)", () => {
  const state = { ...defaults, calipers: [{ a: [0.1, 0.2], b: [0.3, 0.4] }] };
  const action = keyAction("c", { state, shape, tool: "pan" });
  state.calipers[0].a[0] = 0.9;
  assert.equal(action.undo.set.calipers[0].a[0], 0.1);
});

test("Esc twice never wipes calipers, grid, zoom and W/L: one undoable step per press", () => {
  const worked = { zoom: 2.5, center: [0.3, 0.6], window: 0.4, level: 0.3, gamma: 1.4, red_free: true, etdrs: true, etdrs_center: [0.45, 0.5], calipers: [caliper] };
  let state = { ...defaults, ...worked };
  const steps = [];
  for (let press = 0; press < 5; press += 1) {
    const action = keyAction("Escape", { state, shape, tool: "pan" });
    steps.push(action);
    if (!action.send) break;
    for (const key of Object.keys(action.send.set)) assert.ok(!["calipers", "etdrs", "etdrs_center", "exam", "slice", "layout"].includes(key), key);
    state = { ...state, ...action.send.set };
  }
  assert.deepEqual(steps.map((s) => (s.undo ? s.undo.label : s.info)), ["viewer.undo.zoom", "viewer.undo.window_level", "viewer.undo.filters", "viewer.escape_nothing"]);
  assert.deepEqual(steps[0].undo.set, { zoom: 2.5, center: [0.3, 0.6] });
  assert.deepEqual(steps[1].undo.set, { window: 0.4, level: 0.3, gamma: 1.4 });
  assert.deepEqual(steps[2].undo.set, { red_free: true, invert: false });
  assert.deepEqual(state.calipers, [caliper]);
  assert.equal(state.etdrs, true);
});

test("Esc first ends a drag, closes the key list and puts the tool back to pan", () => {
  const state = { ...defaults, zoom: 2 };
  assert.deepEqual(escapeAction({ state, tool: "measure", dragging: true, helpOpen: true }), { cancelDrag: true });
  assert.deepEqual(escapeAction({ state, tool: "measure", helpOpen: true }), { help: true });
  assert.deepEqual(escapeAction({ state, tool: "measure" }), { tool: "pan" });
  assert.equal(escapeAction({ state, tool: "pan" }).undo.label, "viewer.undo.zoom");
  assert.equal(escapeAction({ state: null, tool: "pan" }), null);
  assert.deepEqual(keyAction("Escape", { state: null, shape, tool: "measure" }), { tool: "pan" });
});

test("Esc treats a panned fit as not at its defaults, and tiny float noise as at them", () => {
  assert.equal(escapeAction({ state: { ...defaults, center: [0.55, 0.5] }, tool: "pan" }).undo.label, "viewer.undo.zoom");
  assert.deepEqual(escapeAction({ state: { ...defaults, level: 0.50001, center: [0.5, 0.4999] }, tool: "pan" }), { info: "viewer.escape_nothing" });
});

test("Reset: every display setting in one undoable change; calipers, grid and B-scan stay", () => {
  const state = { ...defaults, exam: "ood", slice: 90, zoom: 3, window: 0.5, invert: true, etdrs: true, calipers: [caliper] };
  const action = resetAction({ state });
  assert.deepEqual(action.send.set, { zoom: "fit", center: [0.5, 0.5], window: 1, level: 0.5, gamma: 1, red_free: false, invert: false });
  assert.equal(action.tool, "pan");
  assert.equal(action.undo.label, "viewer.undo.reset");
  assert.deepEqual(action.undo.set, { zoom: 3, center: [0.5, 0.5], window: 0.5, level: 0.5, gamma: 1, red_free: false, invert: true });
  assert.deepEqual(resetAction({ state: defaults }), { tool: "pan" });
  assert.equal(resetAction({ state: null }), null);
});

test("UndoStack: last in, first out; bounded; entries of another exam are skipped", () => {
  const stack = new UndoStack(3);
  for (let i = 0; i < 5; i += 1) stack.push({ label: `l${i}`, set: { i }, exam: "fod" });
  stack.push(null);
  assert.equal(stack.size, 3);
  assert.equal(stack.pop("fod").label, "l4");
  stack.push({ label: "other", set: {}, exam: "ood" });
  assert.equal(stack.pop("fod").label, "l3", "the other exam's entry is dropped");
  assert.equal(stack.size, 1);
  assert.equal(stack.pop("fod").label, "l2");
  assert.equal(stack.pop("fod"), null);
  stack.push({ label: "x", set: {}, exam: "fod" });
  stack.clear();
  assert.equal(stack.pop("fod"), null);
  assert.equal(new UndoStack().depth, UNDO_DEPTH);
});

test("WheelSteps: small deltas add up to notches, the remainder is kept, at most 10 per event", () => {
  const wheel = new WheelSteps();
  assert.equal(wheel.add(40), 0);
  assert.equal(wheel.add(40), 0);
  assert.equal(wheel.add(40), 1);
  assert.ok(Math.abs(wheel.rest - 20) < 1e-9);
  assert.equal(wheel.add(-20), 0);
  assert.equal(wheel.add(-100), -1);
  assert.equal(wheel.add(5000), 10);
  assert.equal(new WheelSteps().add(3, 1), 0, "3 lines = 99 px");
  assert.equal(new WheelSteps().add(4, 1), 1, "4 lines = 132 px");
  assert.equal(new WheelSteps().add(1, 2), 4, "a page is 400 px");
  assert.equal(new WheelSteps().add(undefined), 0);
});

test("wheelAction: B-scans on a single volume, zoom about the cursor otherwise or with Ctrl", () => {
  assert.deepEqual(wheelAction(2, 10, 20, ctx({ exam: "ood" }), false), { send: { type: "view", set: { slice_delta: 2 } } });
  assert.deepEqual(wheelAction(2, 10, 20, ctx({ exam: "ood" }), true), { send: { type: "pointer", action: "zoom", x: 10, y: 20, dx: 0, dy: 2 } });
  assert.deepEqual(wheelAction(-1, 1, 2, ctx({}), false).send.action, "zoom");
  assert.equal(wheelAction(0, 1, 2, ctx({}), false), null);
});

test("DragCoalescer: moves between frames become one message from the drag's start", () => {
  const drag = new DragCoalescer("window_level", { x: 100, y: 50 });
  assert.equal(drag.flush(), null);
  drag.move(3, -1);
  drag.move(4, -2);
  drag.move(-2, 0);
  assert.equal(drag.pending, true);
  assert.deepEqual(drag.flush(), { type: "pointer", action: "window_level", x: 100, y: 50, dx: 5, dy: -3 });
  assert.equal(drag.pending, false);
  assert.equal(drag.flush(), null);
  drag.move(1, 1);
  drag.move(-1, -1);
  assert.equal(drag.flush(), null, "moves that cancel out send nothing");
  drag.move(0, 7);
  assert.deepEqual(drag.flush(), { type: "pointer", action: "window_level", x: 100, y: 50, dx: 0, dy: 7 });
});

test("cine: a held ↑/↓ on a volume plays from its first repeat until released", () => {
  const volume = ctx({ exam: "ood" });
  const cine = new CineKeys();
  assert.equal(cine.down("ArrowDown", false, volume), null, "the press itself steps one B-scan");
  assert.deepEqual(cine.down("ArrowDown", true, volume), { send: { type: "cine", step: 1, fps: CINE_FPS }, consumed: true });
  assert.ok(cine.playing);
  assert.deepEqual(cine.down("ArrowDown", true, volume), { consumed: true }, "later repeats are swallowed");
  assert.equal(cine.up("ArrowUp"), null, "another key's release does not stop it");
  assert.deepEqual(cine.up("ArrowDown"), { send: { type: "cine", step: 0 } });
  assert.ok(!cine.playing);
  assert.equal(cine.up("ArrowDown"), null, "stopped once");

  assert.equal(cine.down("ArrowUp", true, volume).send.step, -1, "↑ plays towards the first B-scan");
  assert.deepEqual(cine.down("+", false, volume), { send: { type: "cine", step: 0 } }, "another key stops it and keeps its own action");
  assert.equal(cine.down("ArrowDown", true, ctx({ exam: "fod" })), null, "a photograph has nothing to play: the arrow pans");
  assert.equal(cine.down("PageDown", true, volume), null);
  cine.down("ArrowDown", true, volume);
  assert.deepEqual(cine.stop(), { send: { type: "cine", step: 0 } }, "losing focus stops it");
  cine.down("ArrowDown", true, volume);
  cine.reset();
  assert.equal(cine.stop(), null, "a reset run sends nothing");
});
