// Which of a study's cases the coordinator's "pick cases" list shows: the cases of
// `GET /api/studies/{code}/cases` filtered by a text (label, subject or visit), an exam kind and
// "not yet in a batch" (no grader assigned: assignments are made only by batches). Pure, so it
// is unit-tested with `node --test`.

/** Whether a case has a grader assigned (is in a batch). */
export function batched(item) {
  return (item.assignments || []).some((a) => a.role === "grader");
}

/** The exam kinds of the cases, sorted, for the kind filter. */
export function examKinds(cases) {
  const kinds = new Set();
  for (const item of cases) for (const exam of item.exams || []) if (exam && exam.kind) kinds.add(exam.kind);
  return [...kinds].sort();
}

/**
 * The cases matching `{ text, kind, unbatchedOnly }`: `text` (trimmed, case-insensitive) in the
 * label, subject or visit; `kind` ("" for any) among the case's exams; with `unbatchedOnly`,
 * only cases no grader has. In label order.
 */
export function pickable(cases, { text = "", kind = "", unbatchedOnly = false } = {}) {
  const needle = text.trim().toLowerCase();
  return cases
    .filter((item) => !needle || [item.label, item.subject, item.visit].some((v) => String(v ?? "").toLowerCase().includes(needle)))
    .filter((item) => !kind || (item.exams || []).some((exam) => exam && exam.kind === kind))
    .filter((item) => !unbatchedOnly || !batched(item))
    .sort((a, b) => String(a.label).localeCompare(String(b.label), undefined, { numeric: true }));
}
