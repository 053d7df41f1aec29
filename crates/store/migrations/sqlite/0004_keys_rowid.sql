-- dkim_keys becomes an ordinary rowid table. As a WITHOUT ROWID table its rows (about 2.5 KB:
-- a public key and a sealed private key) exceeded an index B-tree's in-page limit (about a
-- quarter of a page), so each key spilled into two overflow pages: three page reads per key for
-- every GetEmailIdentity and verifier check, three page writes per key for every change. SQLite's
-- own guidance keeps WITHOUT ROWID for rows under a twentieth of a page; a rowid table keeps a
-- row of this size in one leaf page, and the unique index below stays small.
CREATE TABLE dkim_keys_by_rowid (
    account_id      TEXT NOT NULL,
    identity_name   TEXT NOT NULL,
    position        INTEGER NOT NULL,
    selector        TEXT NOT NULL,
    bits            INTEGER NOT NULL,
    public_der      BLOB NOT NULL,
    sealed_private  BLOB NOT NULL,
    created_at      INTEGER NOT NULL,
    retired_at      INTEGER,
    UNIQUE (account_id, identity_name, position),
    FOREIGN KEY (account_id, identity_name) REFERENCES identities(account_id, name) ON DELETE CASCADE
);
INSERT INTO dkim_keys_by_rowid (account_id, identity_name, position, selector, bits, public_der,
        sealed_private, created_at, retired_at)
    SELECT account_id, identity_name, position, selector, bits, public_der, sealed_private,
        created_at, retired_at
    FROM dkim_keys ORDER BY account_id, identity_name, position;
-- Dropping the table drops its triggers; they are made again for the new one.
DROP TABLE dkim_keys;
ALTER TABLE dkim_keys_by_rowid RENAME TO dkim_keys;
CREATE TRIGGER dkim_keys_inserted AFTER INSERT ON dkim_keys
    BEGIN UPDATE key_generation SET value = value + 1 WHERE id = 0; END;
CREATE TRIGGER dkim_keys_deleted AFTER DELETE ON dkim_keys
    BEGIN UPDATE key_generation SET value = value + 1 WHERE id = 0; END;
CREATE TRIGGER dkim_keys_updated AFTER UPDATE ON dkim_keys
    BEGIN UPDATE key_generation SET value = value + 1 WHERE id = 0; END;
UPDATE key_generation SET value = value + 1 WHERE id = 0
