// The coordinator's reassignment list (study.js): the study's unfinished assignments, by who
// holds them, and whom they may go to. Pure, so it is unit-tested with `node --test`.

/**
 * The unfinished assignments of the cases of `GET /api/studies/{code}/cases`:
 * `[{ id, case_id, label, username, role, status, due_at }]`, by case label then role.
 */
export function openAssignments(cases) {
  const rows = [];
  for (const item of cases || []) {
    for (const a of item.assignments || []) {
      if (a.status === "done") continue;
      rows.push({ id: a.id, case_id: item.case_id, label: item.label, username: a.username, role: a.role, status: a.status, due_at: a.due_at ?? null });
    }
  }
  return rows.sort((a, b) => String(a.label).localeCompare(String(b.label), undefined, { numeric: true }) || a.role.localeCompare(b.role));
}

/**
 * Who holds unfinished assignments in which role, with how many: `[{ key, username, role,
 * count }]` by name then role; `key` (`grader:kim`) names the pair, since one person may hold
 * grader and adjudicator assignments of a study and each goes to holders of its own role.
 */
export function holders(rows) {
  const counts = new Map();
  for (const row of rows) {
    const key = holderKey(row.username, row.role);
    const seen = counts.get(key);
    if (seen) seen.count += 1;
    else counts.set(key, { key, username: row.username, role: row.role, count: 1 });
  }
  return [...counts.values()].sort((a, b) => a.username.localeCompare(b.username) || a.role.localeCompare(b.role));
}

/** The key of a holder in a role: `grader:kim`. */
export function holderKey(username, role) {
  return `${role}:${username}`;
}

/**
 * Whom `from`'s assignments may be moved to by name: everyone holding an assignment of the same
 * role in the study (`cases`, done ones included), but `from`. The server also refuses a user
 * already on the case or without the role, and picks the least loaded one when none is named.
 */
export function targets(cases, from, role = "grader") {
  const names = new Set();
  for (const item of cases || []) {
    for (const a of item.assignments || []) if (a.role === role && a.username !== from) names.add(a.username);
  }
  return [...names].sort();
}
