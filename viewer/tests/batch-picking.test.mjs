// batch-picking.js: the coordinator's case picker for a new batch.

import assert from "node:assert/strict";
import { test } from "node:test";
import { batched, examKinds, pickable } from "../assets/pages/batch-picking.js";

const grader = { role: "grader" };
const cases = [
  { case_id: "c10", label: "C-0010", subject: "S-A", visit: "V1", exams: [{ kind: "fundus" }], assignments: [grader] },
  { case_id: "c2", label: "C-0002", subject: "S-B", visit: "V2", exams: [{ kind: "oct" }, { kind: "fundus" }], assignments: [] },
  { case_id: "c3", label: "C-0003", subject: "S-A", visit: "V2", exams: [{ kind: "measurement" }], assignments: [{ role: "adjudicator" }] },
];

test("batched: a case is in a batch when a grader has it (an adjudicator alone does not count)", () => {
  assert.deepEqual(cases.map(batched), [true, false, false]);
  assert.equal(batched({}), false);
});

test("pickable: text over label, subject and visit; exam kind; not yet batched; label order", () => {
  assert.deepEqual(pickable(cases).map((c) => c.case_id), ["c2", "c3", "c10"], "numeric label order");
  assert.deepEqual(pickable(cases, { text: " s-a " }).map((c) => c.case_id), ["c3", "c10"]);
  assert.deepEqual(pickable(cases, { text: "v2" }).map((c) => c.case_id), ["c2", "c3"]);
  assert.deepEqual(pickable(cases, { text: "c-0010" }).map((c) => c.case_id), ["c10"]);
  assert.deepEqual(pickable(cases, { kind: "fundus" }).map((c) => c.case_id), ["c2", "c10"]);
  assert.deepEqual(pickable(cases, { unbatchedOnly: true }).map((c) => c.case_id), ["c2", "c3"]);
  assert.deepEqual(pickable(cases, { kind: "fundus", unbatchedOnly: true, text: "S-B" }).map((c) => c.case_id), ["c2"]);
  assert.deepEqual(pickable(cases, { text: "nothing" }), []);
});

test("examKinds: each kind once, sorted", () => {
  assert.deepEqual(examKinds(cases), ["fundus", "measurement", "oct"]);
  assert.deepEqual(examKinds([{ exams: null }, {}]), []);
});
