// stream/protocol.js: viewport sizing, binary chunk and text message parsing, layouts, restore.

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  CHUNK_HEADER, MAX_MESSAGE, VERSION, VIEWPORT, changesView, layoutsFor, parseChunk, parseServerMessage,
  restoreChange, viewportFor,
} from "../assets/stream/protocol.js";

test("constants match docs/streaming.md", () => {
  assert.equal(VERSION, 1);
  assert.equal(CHUNK_HEADER, 16);
  assert.equal(MAX_MESSAGE, 8192);
});

test("changesView: view, pointer, open_case and a cine start change the picture; ping and a cine stop do not", () => {
  for (const type of ["view", "pointer", "open_case"]) assert.equal(changesView({ type }), true, type);
  for (const type of ["ping", "verified", "prefetch_case"]) assert.equal(changesView({ type }), false, type);
  assert.equal(changesView({ type: "cine", step: -1 }), true);
  assert.equal(changesView({ type: "cine", step: 0 }), false);
  assert.equal(changesView(null), false);
});

test("viewportFor: device pixels, even, clamped to the worker's limits", () => {
  assert.deepEqual(viewportFor(880, 519, 1), { width: 880, height: 518, dpr: 1 });
  assert.deepEqual(viewportFor(880.7, 519.9, 2), { width: 1760, height: 1038, dpr: 2 });
  assert.deepEqual(viewportFor(10, 10, 1), { width: VIEWPORT.minWidth, height: VIEWPORT.minHeight, dpr: 1 });
  assert.deepEqual(viewportFor(5000, 3000, 1), { width: VIEWPORT.maxWidth, height: VIEWPORT.maxHeight, dpr: 1 });
  assert.equal(viewportFor(100, 100, 9).dpr, VIEWPORT.maxDpr);
  assert.equal(viewportFor(100, 100, 0.1).dpr, VIEWPORT.minDpr);
  assert.equal(viewportFor(100, 100, NaN).dpr, 1);
  assert.equal(viewportFor(801, 601, 1.25).width % 2, 0);
  assert.equal(viewportFor(-5, 200, 1).width, VIEWPORT.minWidth);
});

function chunk(frame, index, payload, magic = 0x52524c46) {
  const buffer = new ArrayBuffer(CHUNK_HEADER + payload.length);
  const view = new DataView(buffer);
  view.setUint32(0, magic);
  view.setBigUint64(4, BigInt(frame));
  view.setUint32(12, index);
  new Uint8Array(buffer, CHUNK_HEADER).set(payload);
  return buffer;
}

test("parseChunk: header fields and the payload; anything else is null", () => {
  const parsed = parseChunk(chunk(42, 3, [1, 2, 3]));
  assert.equal(parsed.frame, 42);
  assert.equal(parsed.index, 3);
  assert.deepEqual([...parsed.data], [1, 2, 3]);
  assert.equal(parseChunk(chunk(1, 0, [1], 0x12345678)), null);
  assert.equal(parseChunk(new ArrayBuffer(8)), null);
  assert.equal(parseChunk("RRLF"), null);
  assert.equal(parseChunk(new Uint8Array(32)), null, "a typed array is not the ArrayBuffer the channel gives");
});

test("parseServerMessage: version-1 JSON objects with a type only", () => {
  assert.deepEqual(parseServerMessage('{"v":1,"type":"pong","seq":4}'), { v: 1, type: "pong", seq: 4 });
  for (const bad of ["{nope", "null", "[]", '"text"', '{"v":1}', '{"v":2,"type":"ack"}', '{"type":"ack"}', '{"v":1,"type":5}']) {
    assert.equal(parseServerMessage(bad), null, bad);
  }
});

const shape = {
  exams: [
    { id: "fod", kind: "fundus", eye: "OD", slices: 1 },
    { id: "fos", kind: "fundus", eye: "OS", slices: 1 },
    { id: "ood", kind: "oct", eye: "OD", slices: 128 },
  ],
  prior: [{ id: "fod", kind: "fundus", eye: "OD" }],
};

test("layoutsFor: both eyes needs the fellow eye of the same kind, prior a prior of it", () => {
  assert.deepEqual(layoutsFor(shape, "fod"), ["single", "both_eyes", "prior"]);
  assert.deepEqual(layoutsFor(shape, "fos"), ["single", "both_eyes"]);
  assert.deepEqual(layoutsFor(shape, "ood"), ["single"]);
  assert.deepEqual(layoutsFor(shape, "missing"), ["single"]);
  assert.deepEqual(layoutsFor(null, "fod"), ["single"]);
});

test("restoreChange: only what differs, never the viewport, never a null ETDRS centre", () => {
  const current = { exam: "fod", layout: "single", slice: 0, zoom: "fit", center: [0.5, 0.5], window: 1, level: 0.5, gamma: 1, red_free: false, invert: false, etdrs: false, etdrs_center: null, calipers: [], viewport: { width: 800, height: 600, dpr: 1 } };
  const saved = { ...current, zoom: 2, center: [0.3, 0.4], etdrs: true, calipers: [{ a: [0.1, 0.1], b: [0.2, 0.2] }], viewport: { width: 1, height: 1, dpr: 1 } };
  assert.deepEqual(restoreChange(saved, current), { zoom: 2, center: [0.3, 0.4], etdrs: true, calipers: [{ a: [0.1, 0.1], b: [0.2, 0.2] }] });
  assert.deepEqual(restoreChange(current, current), {});
  assert.deepEqual(restoreChange({ ...current, etdrs_center: null }, { ...current, etdrs_center: [0.5, 0.5] }), {});
});
