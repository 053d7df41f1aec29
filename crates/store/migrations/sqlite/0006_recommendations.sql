-- Recommendations (ListRecommendations) in the identity row, written in the same write as the
-- check that found them: a JSON array of [kind, status, created, updated], and their re-check
-- schedule. `due_at` is the earliest of the identity's three schedules (DKIM, MAIL FROM,
-- recommendations), written with every row, so the verifier's claim reads one index.
ALTER TABLE identities ADD COLUMN recommendations TEXT NOT NULL DEFAULT '[]';
ALTER TABLE identities ADD COLUMN rec_next_check_at INTEGER;
ALTER TABLE identities ADD COLUMN rec_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE identities ADD COLUMN due_at INTEGER;
UPDATE identities SET due_at = CASE
    WHEN v_next_check_at IS NULL THEN mf_next_check_at
    WHEN mf_next_check_at IS NULL THEN v_next_check_at
    ELSE min(v_next_check_at, mf_next_check_at) END;
DROP INDEX identities_due;
CREATE INDEX identities_due ON identities(due_at) WHERE due_at IS NOT NULL;
