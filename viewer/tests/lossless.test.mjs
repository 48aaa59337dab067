// stream/lossless.js: chunk reassembly, the RGB hash, and the verification queue (`serially`),
// which must go on after a failed verification.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { LosslessAssembler, hashRgb, serially } from "../assets/stream/lossless.js";

const announce = (extra = {}) => ({ type: "lossless", frame: 7, width: 2, height: 1, sha256: "x", format: "image/webp", bytes: 5, chunks: 2, ...extra });
const part = (frame, index, bytes) => ({ frame, index, data: new Uint8Array(bytes) });

test("LosslessAssembler: a frame completes when every chunk of the announced size is in", async () => {
  const a = new LosslessAssembler();
  assert.equal(a.progress(), null);
  a.announce(announce());
  assert.equal(a.add(part(6, 0, [1, 2, 3])), null, "another frame's chunk is ignored");
  assert.equal(a.add(part(7, 1, [4, 5])), null);
  assert.equal(a.progress(), 2 / 5);
  assert.equal(a.add(part(7, 1, [4, 5])), null, "a repeated chunk is ignored");
  const done = a.add(part(7, 0, [1, 2, 3]));
  assert.equal(done.meta.frame, 7);
  assert.deepEqual([...new Uint8Array(await done.blob.arrayBuffer())], [1, 2, 3, 4, 5]);
  assert.equal(done.blob.type, "image/webp");
  assert.equal(a.progress(), null);
});

test("LosslessAssembler: a wrong size, a bad announcement or a drop yields nothing", () => {
  const a = new LosslessAssembler();
  a.announce(announce({ bytes: 6 }));
  a.add(part(7, 0, [1, 2, 3]));
  assert.equal(a.add(part(7, 1, [4, 5])), null);
  for (const bad of [{ format: "image/jpeg" }, { chunks: 0 }, { chunks: 1.5 }, { bytes: 0 }, { chunks: 200000 }]) {
    a.announce(announce(bad));
    assert.equal(a.pending, null, JSON.stringify(bad));
  }
  a.announce(announce());
  a.drop();
  assert.equal(a.add(part(7, 0, [1, 2, 3])), null);
});

test("hashRgb: SHA-256 of the RGB bytes (alpha left out), as the worker hashes", async () => {
  const rgba = new Uint8ClampedArray([10, 20, 30, 255, 40, 50, 60, 0]);
  const expected = createHash("sha256").update(Buffer.from([10, 20, 30, 40, 50, 60])).digest("hex");
  assert.equal(await hashRgb(rgba), expected);
});

test("serially: a rejected verification does not stop the later ones", async () => {
  const ran = [];
  const errors = [];
  const onError = (err) => errors.push(err.message);
  let chain = Promise.resolve();
  chain = serially(chain, async () => { ran.push(1); }, onError);
  chain = serially(chain, async () => { ran.push(2); throw new Error("draw failed"); }, onError);
  chain = serially(chain, () => { ran.push(3); throw new Error("sync throw"); }, onError);
  chain = serially(chain, async () => { ran.push(4); }, onError);
  await chain;
  assert.deepEqual(ran, [1, 2, 3, 4]);
  assert.deepEqual(errors, ["draw failed", "sync throw"]);
});

test("serially: tasks run one at a time, in order, even when earlier ones are slower", async () => {
  const log = [];
  let chain = Promise.resolve();
  const task = (name, ms) => async () => {
    log.push(`start ${name}`);
    await new Promise((resolve) => setTimeout(resolve, ms));
    log.push(`end ${name}`);
  };
  chain = serially(chain, task("a", 30));
  chain = serially(chain, task("b", 1));
  await chain;
  assert.deepEqual(log, ["start a", "end a", "start b", "end b"]);
});

test("serially: an already rejected chain and a failing reporter do not break the queue", async () => {
  let ran = false;
  const rejected = Promise.reject(new Error("old"));
  const chain = serially(rejected, async () => { throw new Error("again"); }, () => { throw new Error("reporter"); });
  await serially(chain, () => { ran = true; });
  assert.equal(ran, true);
});

test("the old `chain.then(task)` pattern would have stopped (why `serially` exists)", async () => {
  let ran = false;
  let chain = Promise.resolve().then(() => { throw new Error("first"); });
  chain = chain.then(() => { ran = true; });
  await chain.catch(() => {});
  assert.equal(ran, false);
});
