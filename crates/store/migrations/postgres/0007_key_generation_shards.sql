-- The key generation as 64 counters, summed by the reader. One counter row made every
-- transaction that changes a key wait for the previous one's commit (the row stays locked
-- until then), so key writes from all connections of all nodes committed one at a time.
-- Each connection bumps its own row (by backend pid), so a transaction only ever locks one
-- row and two transactions never wait for each other in opposite orders. The sum is read in
-- one statement, so it moves exactly when a change commits, as the single counter did.
ALTER TABLE key_generation DROP CONSTRAINT key_generation_id_check;
INSERT INTO key_generation (id, value) SELECT g, 0 FROM generate_series(1, 63) AS g;
ALTER TABLE key_generation ADD CONSTRAINT key_generation_shard CHECK (id >= 0 AND id < 64);
CREATE OR REPLACE FUNCTION bump_key_generation() RETURNS trigger AS $$
BEGIN
    UPDATE key_generation SET value = value + 1 WHERE id = pg_backend_pid() % 64;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
-- Row-level: an upsert that leaves a key as it was moves nothing (a statement-level trigger
-- fires even for a statement that changed no row).
DROP TRIGGER dkim_keys_changed ON dkim_keys;
CREATE TRIGGER dkim_keys_changed AFTER INSERT OR UPDATE OR DELETE ON dkim_keys
    FOR EACH ROW EXECUTE FUNCTION bump_key_generation();
