// errors.js: a refusal the server names (`error.reason`) reads in the user's language, with its
// values; one it does not name falls back to the server's words.
// Run: node --test viewer/tests/

import assert from "node:assert/strict";
import { test } from "node:test";

// The language choice lives in localStorage, which Node lacks.
const store = new Map();
globalThis.localStorage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, String(v)) };
const { errorText } = await import("../assets/errors.js");
const { setLanguage } = await import("../assets/i18n.js");

const refused = (status, reason, params, message = "English from the server") =>
  ({ status, code: status === 409 ? "conflict" : "bad_request", message, reason, params });

test("named refusals are worded in the user's language, with their values", () => {
  setLanguage("en");
  assert.equal(
    errorText(refused(400, "nothing_to_assign", { per_case: 2 })),
    "Nothing to assign: every chosen case already has 2 graders (graders per case counts the graders a case already has).",
  );
  assert.equal(errorText(refused(400, "not_role_holder", { role: "adjudicator", study: "DEMO" })),
    "That user does not hold the Adjudicator role in study DEMO.");
  setLanguage("ko");
  const ko = errorText(refused(409, "batch_exists", { name: "Round 2" }));
  assert.ok(ko.includes("“Round 2”") && /[가-힣]/.test(ko), ko);
  assert.ok(!ko.includes("English"), ko);
  const role = errorText(refused(400, "not_role_holder", { role: "grader", study: "DEMO" }));
  assert.ok(role.includes("판독자") && !role.includes("grader"), role);
  setLanguage("en");
});

test("unknown reasons and plain errors keep the server's words", () => {
  setLanguage("en");
  assert.equal(errorText(refused(400, "some_new_reason", {}, "due_at must be an RFC 3339 time")),
    "The server refused the request: due_at must be an RFC 3339 time");
  assert.equal(errorText({ status: 400, code: "bad_request", message: "x" }), "The server refused the request: x");
  assert.equal(errorText(null), errorText(undefined));
});
