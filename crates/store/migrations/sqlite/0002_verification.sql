-- The DNS verifier's state per identity, its schedule, and the lease that keeps two nodes
-- (or two loops) from checking one identity at the same time.
ALTER TABLE identities ADD COLUMN v_last_checked INTEGER;
ALTER TABLE identities ADD COLUMN v_last_success INTEGER;
ALTER TABLE identities ADD COLUMN v_error TEXT;
ALTER TABLE identities ADD COLUMN v_soa TEXT;
ALTER TABLE identities ADD COLUMN v_pending_since INTEGER;
ALTER TABLE identities ADD COLUMN v_failing_since INTEGER;
ALTER TABLE identities ADD COLUMN v_next_check_at INTEGER;
ALTER TABLE identities ADD COLUMN v_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE identities ADD COLUMN v_lease_until INTEGER;
-- Identities created before the verifier existed are due at once.
UPDATE identities SET v_next_check_at = created_at, v_pending_since = created_at
    WHERE dkim_origin IS NOT NULL AND dkim_status IN ('PENDING', 'TEMPORARY_FAILURE');
CREATE INDEX identities_due ON identities(v_next_check_at) WHERE v_next_check_at IS NOT NULL;

-- Bumped by every change to DKIM keys, so the key-zone responder can poll one row cheaply.
CREATE TABLE key_generation (id INTEGER PRIMARY KEY CHECK (id = 0), value INTEGER NOT NULL);
INSERT INTO key_generation (id, value) VALUES (0, 0);
CREATE TRIGGER dkim_keys_inserted AFTER INSERT ON dkim_keys
    BEGIN UPDATE key_generation SET value = value + 1 WHERE id = 0; END;
CREATE TRIGGER dkim_keys_deleted AFTER DELETE ON dkim_keys
    BEGIN UPDATE key_generation SET value = value + 1 WHERE id = 0; END;
CREATE TRIGGER dkim_keys_updated AFTER UPDATE ON dkim_keys
    BEGIN UPDATE key_generation SET value = value + 1 WHERE id = 0; END;
