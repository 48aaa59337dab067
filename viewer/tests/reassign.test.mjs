// reassign.js: the coordinator's list of unfinished assignments and their possible new holders.

import assert from "node:assert/strict";
import { test } from "node:test";
import { holderKey, holders, openAssignments, targets } from "../assets/pages/reassign.js";

const cases = [
  { case_id: "c10", label: "C-0010", assignments: [
    { id: "a1", username: "kim", role: "grader", status: "assigned" },
    { id: "a2", username: "jung", role: "grader", status: "done" },
    { id: "a3", username: "choi", role: "adjudicator", status: "assigned" }] },
  { case_id: "c2", label: "C-0002", assignments: [
    { id: "a4", username: "kim", role: "grader", status: "in_progress", due_at: "2030-01-01T00:00:00Z" },
    { id: "a5", username: "han", role: "grader", status: "assigned" }] },
];

test("openAssignments: unfinished only, by case label (numeric) then role", () => {
  const rows = openAssignments(cases);
  assert.deepEqual(rows.map((r) => r.id), ["a4", "a5", "a3", "a1"]);
  assert.deepEqual(rows[0], { id: "a4", case_id: "c2", label: "C-0002", username: "kim", role: "grader", status: "in_progress", due_at: "2030-01-01T00:00:00Z" });
  assert.equal(rows[1].due_at, null);
  assert.deepEqual(openAssignments(null), []);
});

test("holders: who holds unfinished assignments in which role, counted", () => {
  assert.deepEqual(holders(openAssignments(cases)), [
    { key: "adjudicator:choi", username: "choi", role: "adjudicator", count: 1 },
    { key: "grader:han", username: "han", role: "grader", count: 1 },
    { key: "grader:kim", username: "kim", role: "grader", count: 2 }]);
  // One person grading some cases and adjudicating others is two holders: each role's work
  // goes to holders of that role.
  const both = [...cases, { case_id: "c3", label: "C-0003", assignments: [
    { id: "a6", username: "kim", role: "adjudicator", status: "assigned" }] }];
  const kim = holders(openAssignments(both)).filter((h) => h.username === "kim");
  assert.deepEqual(kim.map((h) => [h.key, h.count]), [["adjudicator:kim", 1], ["grader:kim", 2]]);
  assert.equal(holderKey("kim", "grader"), "grader:kim");
  assert.deepEqual(targets(both, "kim", "adjudicator"), ["choi"]);
});

test("targets: the other holders of the role, done assignments included", () => {
  assert.deepEqual(targets(cases, "kim"), ["han", "jung"]);
  assert.deepEqual(targets(cases, "kim", "adjudicator"), ["choi"]);
  assert.deepEqual(targets(cases, "choi", "adjudicator"), []);
});
