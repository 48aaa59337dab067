// grading-rules.js: values, conditions (draft vs submit), payloads, digit keys and display, on
// the shipped demo form (domain/presets/demo.json) and small forms written here.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  CANNOT_GRADE, EYES, asked, cellKey, cells, choices, definitions, digitFor, digitLevels, digitPick, displayValue, hasValue,
  payload, sameValue, text, valueOf, withValue,
} from "../assets/pages/grading-rules.js";

const demo = JSON.parse(readFileSync(new URL("../../domain/presets/demo.json", import.meta.url), "utf8"));
const field = (key) => demo.fields.find((f) => f.key === key);
const words = { yes: "Yes", no: "No", cannotGrade: "Cannot grade" };

test("hasValue: null, blank text and empty lists are no value; 0 and false are values", () => {
  for (const none of [null, undefined, "", "   ", []]) assert.equal(hasValue(none), false, JSON.stringify(none));
  for (const some of [0, false, "x", ["a"], 0.35]) assert.equal(hasValue(some), true, JSON.stringify(some));
});

test("withValue / valueOf: per-eye and person-level values, removal, no mutation", () => {
  const dr = field("dr_grade");
  const other = field("other_findings");
  const empty = {};
  const a = withValue(empty, dr, "OD", 2);
  assert.deepEqual(empty, {});
  assert.deepEqual(a, { dr_grade: { OD: 2 } });
  const b = withValue(a, dr, "OS", 0);
  assert.deepEqual(b, { dr_grade: { OD: 2, OS: 0 } });
  assert.equal(valueOf(b, dr, "OS"), 0);
  assert.equal(valueOf(b, dr, "OD"), 2);
  const c = withValue(b, dr, "OD", null);
  assert.deepEqual(c, { dr_grade: { OS: 0 } });
  assert.deepEqual(withValue(c, dr, "OS", null), {});
  const d = withValue({}, other, null, ["other"]);
  assert.deepEqual(valueOf(d, other, null), ["other"]);
  assert.deepEqual(withValue(d, other, null, []), {});
  // A per-eye field stored as something else reads as no value.
  assert.equal(valueOf({ dr_grade: 3 }, dr, "OD"), null);
});

test("cells: per-eye fields give OD then OS", () => {
  const list = cells(demo).map(({ field: f, eye }) => cellKey(f.key, eye));
  assert.deepEqual(list.slice(0, 4), ["gradable:OD", "gradable:OS", "ungradable_reason:OD", "ungradable_reason:OS"]);
  assert.ok(list.includes("other_findings"));
  assert.deepEqual(EYES, ["OD", "OS"]);
});

test("asked: a condition is undecided in a draft and false on submit while its source is empty", () => {
  const draft = asked(demo, {}, "draft").state;
  assert.equal(draft.get("gradable:OD"), "yes");
  assert.equal(draft.get("dr_grade:OD"), "undecided");
  const submit = asked(demo, {}, "submit").state;
  assert.equal(submit.get("dr_grade:OD"), "no");
});

test("asked: per-eye conditions are judged eye by eye", () => {
  const values = { gradable: { OD: "gradable", OS: "ungradable" } };
  const { state } = asked(demo, values, "submit");
  assert.equal(state.get("dr_grade:OD"), "yes");
  assert.equal(state.get("dr_grade:OS"), "no");
  assert.equal(state.get("ungradable_reason:OD"), "no");
  assert.equal(state.get("ungradable_reason:OS"), "yes");
});

test("payload: values of fields not asked are dropped, a whole dependent chain with them", () => {
  const values = {
    gradable: { OD: "gradable", OS: "ungradable" },
    dr_grade: { OD: 2, OS: 3 },
    ungradable_reason: { OD: "small_pupil", OS: "media_opacity" },
    other_findings: ["glaucoma_suspect"],
    other_text: "left over",
  };
  const sent = payload(demo, values, "submit");
  assert.deepEqual(sent.dr_grade, { OD: 2 });
  assert.deepEqual(sent.ungradable_reason, { OS: "media_opacity" });
  assert.equal(sent.other_text, undefined);
  // A draft keeps values whose condition is merely undecided.
  const draft = payload(demo, { dr_grade: { OD: 1 } }, "draft");
  assert.deepEqual(draft, { dr_grade: { OD: 1 } });
  assert.deepEqual(payload(demo, { dr_grade: { OD: 1 } }, "submit"), {});
  // Chains: B depends on A, C on B; A's value removed takes C away too.
  const chain = {
    fields: [
      { key: "a", type: "boolean" },
      { key: "b", type: "boolean", when: { field: "a", equals: true } },
      { key: "c", type: "text", when: { field: "b", equals: true } },
    ],
  };
  assert.deepEqual(payload(chain, { a: true, b: true, c: "x" }, "submit"), { a: true, b: true, c: "x" });
  assert.deepEqual(payload(chain, { a: false, b: true, c: "x" }, "submit"), { a: false });
});

test("asked: a multiple choice meets `equals` when any chosen option matches", () => {
  const { state } = asked(demo, { other_findings: ["glaucoma_suspect", "other"] }, "submit");
  assert.equal(state.get("other_text"), "yes");
  assert.equal(asked(demo, { other_findings: ["glaucoma_suspect"] }, "submit").state.get("other_text"), "no");
});

test("digit keys: levels 0–9 by value, otherwise by 1-based position", () => {
  const dr = field("dr_grade");
  const areds = field("areds_category");
  const dme = field("dme");
  assert.equal(digitLevels(dr), true);
  assert.equal(digitPick(dr, 0), 0);
  assert.equal(digitPick(dr, 4), 4);
  assert.equal(digitPick(dr, 5), undefined);
  assert.equal(digitPick(areds, 0), undefined, "AREDS has no level 0: 0 stays the viewer's fit key");
  assert.equal(digitPick(areds, 1), 1);
  assert.equal(digitPick(dme, 1), "none");
  assert.equal(digitPick(dme, 3), "centre_involving");
  assert.equal(digitPick(dme, 0), undefined);
  assert.equal(digitPick(dme, 4), undefined);
  assert.equal(digitPick({ type: "boolean" }, 1), true);
  assert.equal(digitPick({ type: "boolean" }, 2), false);
  assert.equal(digitPick({ type: "text" }, 1), undefined);
  assert.equal(digitFor(dr, 2), "2");
  assert.equal(digitFor(dme, 0), "1");
  const decimal = { type: "ordinal", levels: [{ value: 0.5 }, { value: 1 }] };
  assert.equal(digitLevels(decimal), false);
  assert.equal(digitPick(decimal, 1), 0.5);
});

test("choices and display values are localized, English as the fallback", () => {
  const dr = field("dr_grade");
  const ko = choices(dr, "ko", { ...words, cannotGrade: "판정 불가" }).map((c) => c.label);
  assert.equal(ko.length, 6, "five ICDR levels and cannot grade");
  assert.ok(ko.every((label) => /[가-힣]/.test(label)));
  assert.equal(text({ en: "Only English" }, "ko"), "Only English");
  assert.equal(text("plain", "ko"), "plain");
  assert.equal(text(null, "en"), "");
  assert.equal(displayValue(dr, 2, "en", words), `2 · ${dr.levels[2].label.en}`);
  assert.equal(displayValue(dr, null, "en", words), "—");
  assert.equal(displayValue(field("other_findings"), ["glaucoma_suspect", "unknown_code"], "en", words).endsWith(", unknown_code"), true);
  assert.equal(displayValue({ type: "number", unit: "mm" }, 0.35, "en", words), "0.35 mm");
  assert.equal(displayValue({ type: "boolean" }, false, "en", words), "No");
  assert.deepEqual(choices({ type: "boolean" }, "en", words), [{ value: true, label: "Yes" }, { value: false, label: "No" }]);
});

test("cannot grade: the last choice where the form allows it, shown in words, never a digit", () => {
  const dr = field("dr_grade");
  const list = choices(dr, "en", words);
  assert.deepEqual(list.at(-1), { value: CANNOT_GRADE, label: "Cannot grade" });
  assert.equal(digitFor(dr, list.length - 1), "", "no digit picks cannot grade");
  const dme = field("dme");
  assert.equal(digitFor(dme, 2), "3");
  assert.equal(digitFor(dme, choices(dme, "en", words).length - 1), "", "nor on a choice");
  assert.equal(displayValue(dr, CANNOT_GRADE, "en", words), "Cannot grade");
  assert.equal(displayValue(field("vcdr"), CANNOT_GRADE, "en", words), "Cannot grade");
  // Not offered where the form does not allow it, nor on multiple choices and numbers.
  const gradable = field("gradable");
  assert.ok(!choices(gradable, "en", words).some((c) => c.value === CANNOT_GRADE));
  assert.ok(!choices({ ...field("other_findings"), cannot_grade: true }, "en", words).some((c) => c.value === CANNOT_GRADE));
  assert.deepEqual(choices({ ...field("vcdr") }, "en", words), []);
  // A stored "cannot_grade" on a field that does not allow it reads as it is.
  assert.equal(displayValue(gradable, CANNOT_GRADE, "en", words), CANNOT_GRADE);
  // It does not meet a condition that names a level.
  const form = { fields: [dr, { key: "x", type: "boolean", per_eye: true, when: { field: "dr_grade", any_of: [2, 3] }, label: { en: "x" } }] };
  assert.equal(asked(form, { dr_grade: { OD: CANNOT_GRADE } }, "submit").state.get("x:OD"), "no");
});

test("sameValue: numbers within 1e-9, lists in order, empty equals empty", () => {
  assert.equal(sameValue(0.1 + 0.2, 0.3), true);
  assert.equal(sameValue(["a", "b"], ["a", "b"]), true);
  assert.equal(sameValue(["a", "b"], ["b", "a"]), false);
  assert.equal(sameValue(null, []), true);
  assert.equal(sameValue(0, null), false);
});

test("definitions: the shipped ICDR levels and DME options carry their protocol definitions", () => {
  const dr = definitions(field("dr_grade"), "en");
  assert.deepEqual(dr.map((d) => d.value), [0, 1, 2, 3, 4]);
  assert.equal(dr[3].label, "Severe NPDR");
  assert.match(dr[3].help, /4-2-1/);
  assert.match(dr[3].help, /20 intraretinal haemorrhages in each of the 4 quadrants/);
  assert.match(definitions(field("dr_grade"), "ko")[3].help, /4-2-1 규칙/);
  const dme = definitions(field("dme"), "en");
  assert.deepEqual(dme.map((d) => d.value), ["none", "non_centre_involving", "centre_involving"]);
  assert.match(dme[2].help, /central subfield/);
  assert.deepEqual(definitions(field("vcdr"), "en"), [], "a number field has no levels to define");
  const partly = { type: "choice", options: [{ value: "a", label: { en: "A" } }, { value: "b", label: { en: "B" }, help: { en: "Bee" } }] };
  assert.deepEqual(definitions(partly, "en"), [{ value: "b", label: "B", help: "Bee" }]);
});
