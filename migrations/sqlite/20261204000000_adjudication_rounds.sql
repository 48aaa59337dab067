-- At most one open adjudication round per case, and one round per pair of compared grades:
-- two graders submitting at the same moment both see "no open round" and both try to open
-- one; the loser gets a unique violation instead of a duplicate round (the application then
-- treats the case as routed).
CREATE UNIQUE INDEX adjudications_one_open_key ON adjudications (case_id) WHERE status = 'open';
CREATE UNIQUE INDEX adjudications_case_grades_key ON adjudications (case_id, grade_ids);
