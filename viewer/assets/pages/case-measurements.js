// The case's measurements as the case panel shows them: visual acuity, IOP and biometry, one row
// per measure with OD and OS side by side, this visit's value and the prior visit's beside it.
//
// The values come from the worker (the `ready` message's `shape.measurements` and
// `shape.prior_measurements`; the API tier never holds them), keyed as in the bundle manifest:
// `{measure}_{eye}_{unit}` (`va_od_logmar`, `iop_os_mmhg`, `axial_length_od_mm`). A key of
// another form is shown under its own name. Pure: no DOM and no translation (labels are
// message keys), so it is unit-tested with `node --test`.

const KEY = /^([a-z0-9]+(?:_[a-z0-9]+)*?)_(od|os|ou)_([a-z0-9]+)$/;

/** Known measures, in the order a reading centre reads them, with their message keys. */
const KNOWN = ["va", "iop", "axial_length"];

/** Standard Snellen denominators (20 ft), 20/10 to 20/800. */
const SNELLEN = [10, 12.5, 16, 20, 25, 32, 40, 50, 63, 80, 100, 125, 160, 200, 250, 320, 400, 500, 630, 800];

/** The eyes of a row, in reading order. */
export const EYES = ["OD", "OS", "OU"];

/**
 * The rows: `[{ measure, unit, label, cells: { OD: { now, prior }, OS: …, OU: … } }]`, known
 * measures first (VA, IOP, axial length), then the others by name. `label` is a message key for
 * known measures (`case.measure.va`), null for others (show `measure` as it is). A cell's `now`
 * and `prior` are the raw values (number or text) or undefined.
 */
export function measurementRows(current = {}, prior = {}) {
  const rows = new Map();
  const add = (values, when) => {
    for (const [key, value] of Object.entries(values || {})) {
      if (typeof value !== "number" && typeof value !== "string") continue;
      const parsed = KEY.exec(key);
      const [measure, eye, unit] = parsed ? [parsed[1], parsed[2].toUpperCase(), parsed[3]] : [key, "OU", ""];
      const id = `${measure}\u0000${unit}`;
      if (!rows.has(id)) {
        rows.set(id, {
          measure, unit,
          label: KNOWN.includes(measure) ? `case.measure.${measure}` : null,
          cells: {},
        });
      }
      const cells = rows.get(id).cells;
      cells[eye] = { ...(cells[eye] || {}), [when]: value };
    }
  };
  add(current, "now");
  add(prior, "prior");
  const rank = (row) => {
    const known = KNOWN.indexOf(row.measure);
    return known === -1 ? KNOWN.length : known;
  };
  return [...rows.values()].sort((a, b) => rank(a) - rank(b) || a.measure.localeCompare(b.measure) || a.unit.localeCompare(b.unit));
}

/** Whether any row has an OU (both-eyes or unsided) value, so the table needs that column. */
export function hasBothEyesColumn(rows) {
  return rows.some((row) => row.cells.OU);
}

/** The Snellen fraction (20 ft) nearest to a logMAR acuity, e.g. 0.1 → "20/25"; "" if not a number. */
export function snellen(logmar) {
  if (typeof logmar !== "number" || !Number.isFinite(logmar)) return "";
  const denominator = 20 * 10 ** logmar;
  let best = SNELLEN[0];
  for (const candidate of SNELLEN) {
    if (Math.abs(Math.log(candidate / denominator)) < Math.abs(Math.log(best / denominator))) best = candidate;
  }
  return `20/${best}`;
}

/**
 * A value as the panel writes it, with `format(number, digits)` for the locale's digits:
 * logMAR with two decimals and its Snellen fraction, IOP in whole mmHg, lengths with two
 * decimals, text as it is. Undefined is "—".
 */
export function displayMeasurement(row, value, format = (n, digits) => n.toFixed(digits)) {
  if (value === undefined || value === null) return "—";
  if (typeof value === "string") return value;
  const logmar = row.measure === "va" && row.unit === "logmar";
  const digits = row.unit === "mmhg" ? 0 : 2;
  // Rounded first, so that -0.004 logMAR (or a stored -0) is written 0.00, never -0.00.
  const rounded = Math.round(value * 10 ** digits) / 10 ** digits || 0;
  const written = format(rounded, digits);
  return logmar ? `${written} (${snellen(rounded)})` : written;
}

/** The unit as written after a value (`mmHg`, `mm`, `logMAR`), or "" when unknown. */
export function unitText(unit) {
  return { logmar: "logMAR", mmhg: "mmHg", mm: "mm", um: "µm", d: "D", letters: "letters" }[unit] ?? unit;
}
