// case-measurements.js: the case panel's VA / IOP / biometry rows from the worker's values.

import assert from "node:assert/strict";
import { test } from "node:test";
import { displayMeasurement, hasBothEyesColumn, measurementRows, snellen, unitText } from "../assets/pages/case-measurements.js";

test("rows: known measures first (VA, IOP, axial length), OD and OS side by side, prior beside now", () => {
  const rows = measurementRows(
    { iop_os_mmhg: 17, iop_od_mmhg: 15, va_od_logmar: 0.1, va_os_logmar: 0.3, axial_length_od_mm: 23.41, zz_od_score: 2 },
    { iop_od_mmhg: 21, va_od_logmar: 0.2 },
  );
  assert.deepEqual(rows.map((r) => r.measure), ["va", "iop", "axial_length", "zz"]);
  const [va, iop, axial, other] = rows;
  assert.equal(va.label, "case.measure.va");
  assert.equal(va.unit, "logmar");
  assert.deepEqual(va.cells, { OD: { now: 0.1, prior: 0.2 }, OS: { now: 0.3 } });
  assert.deepEqual(iop.cells, { OD: { now: 15, prior: 21 }, OS: { now: 17 } });
  assert.deepEqual(axial.cells, { OD: { now: 23.41 } });
  assert.equal(other.label, null, "an unknown measure is shown under its own name");
  assert.equal(hasBothEyesColumn(rows), false);
});

test("rows: a key not of the form measure_eye_unit is one both-eyes value; junk values are skipped", () => {
  const rows = measurementRows({ smoker: "no", va_od_logmar: { x: 1 }, iop_ou_mmhg: 14 }, undefined);
  assert.deepEqual(rows.map((r) => [r.measure, r.unit]), [["iop", "mmhg"], ["smoker", ""]]);
  assert.deepEqual(rows[1].cells, { OU: { now: "no" } });
  assert.equal(hasBothEyesColumn(rows), true);
  assert.deepEqual(measurementRows(), []);
  assert.deepEqual(measurementRows(null, null), []);
});

test("rows: a measure recorded only at the prior visit still has its row", () => {
  const rows = measurementRows({}, { iop_os_mmhg: 30 });
  assert.deepEqual(rows[0].cells, { OS: { prior: 30 } });
});

test("snellen: the nearest standard line to a logMAR acuity", () => {
  assert.equal(snellen(0), "20/20");
  assert.equal(snellen(0.1), "20/25");
  assert.equal(snellen(0.3), "20/40");
  assert.equal(snellen(1), "20/200");
  assert.equal(snellen(-0.1), "20/16");
  assert.equal(snellen(0.04), "20/20");
  assert.equal(snellen(3), "20/800", "beyond the chart: its last line");
  assert.equal(snellen(Number.NaN), "");
  assert.equal(snellen("0.1"), "");
});

test("display: logMAR with its Snellen line, whole mmHg, lengths to 0.01, text as given, missing as —", () => {
  const [va, text, iop, axial] = measurementRows({ va_od_logmar: 0.1, iop_od_mmhg: 15.4, axial_length_od_mm: 23.456, va_os_snellen: "20/40" });
  assert.equal(displayMeasurement(va, 0.1), "0.10 (20/25)");
  assert.equal(displayMeasurement(iop, 15.4), "15");
  assert.equal(displayMeasurement(axial, 23.456), "23.46");
  assert.equal(displayMeasurement(text, "20/40"), "20/40");
  assert.equal(displayMeasurement(iop, undefined), "—");
  assert.equal(displayMeasurement(va, -0), "0.00 (20/20)", "never -0.00");
  assert.equal(displayMeasurement(va, -0.004), "0.00 (20/20)");
  assert.equal(displayMeasurement(va, -0.08), "-0.08 (20/16)");
  assert.equal(unitText("mmhg"), "mmHg");
  assert.equal(unitText("logmar"), "logMAR");
  assert.equal(unitText("furlongs"), "furlongs");
});
