-- The PostgreSQL schema: the same tables as SQLite's migrations 0001-0003, in one step.
CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE access_keys (
    id             TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES accounts(id),
    sealed_secret  BYTEA NOT NULL,
    enabled        BOOLEAN NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX access_keys_by_account ON access_keys(account_id);

CREATE TABLE identities (
    account_id              TEXT NOT NULL REFERENCES accounts(id),
    name                    TEXT COLLATE "C" NOT NULL,
    identity_type           TEXT NOT NULL,
    version                 BIGINT NOT NULL,
    created_at              BIGINT NOT NULL,
    feedback_forwarding     BOOLEAN NOT NULL,
    signing_override        BOOLEAN,
    verification_status     TEXT NOT NULL,
    dkim_origin             TEXT,
    dkim_signing_enabled    BOOLEAN,
    dkim_status             TEXT,
    dkim_tokens             TEXT,
    dkim_selector           TEXT,
    dkim_next_length        BIGINT,
    dkim_length_changed_at  BIGINT,
    dkim_downgraded_at      BIGINT,
    tags                    TEXT NOT NULL,
    v_last_checked          BIGINT,
    v_last_success          BIGINT,
    v_error                 TEXT,
    v_soa                   TEXT,
    v_pending_since         BIGINT,
    v_failing_since         BIGINT,
    v_next_check_at         BIGINT,
    v_attempts              BIGINT NOT NULL DEFAULT 0,
    v_lease_until           BIGINT,
    dkim_active             BIGINT NOT NULL DEFAULT 0,
    dkim_staged             BIGINT,
    PRIMARY KEY (account_id, name)
);
CREATE INDEX identities_due ON identities(v_next_check_at) WHERE v_next_check_at IS NOT NULL;

CREATE TABLE dkim_keys (
    account_id      TEXT NOT NULL,
    identity_name   TEXT COLLATE "C" NOT NULL,
    position        BIGINT NOT NULL,
    selector        TEXT NOT NULL,
    bits            BIGINT NOT NULL,
    public_der      BYTEA NOT NULL,
    sealed_private  BYTEA NOT NULL,
    created_at      BIGINT NOT NULL,
    retired_at      BIGINT,
    PRIMARY KEY (account_id, identity_name, position),
    FOREIGN KEY (account_id, identity_name) REFERENCES identities(account_id, name) ON DELETE CASCADE
);

CREATE TABLE key_generation (id INTEGER PRIMARY KEY CHECK (id = 0), value BIGINT NOT NULL);
INSERT INTO key_generation (id, value) VALUES (0, 0);
CREATE FUNCTION bump_key_generation() RETURNS trigger AS $$
BEGIN
    UPDATE key_generation SET value = value + 1 WHERE id = 0;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER dkim_keys_changed AFTER INSERT OR UPDATE OR DELETE ON dkim_keys
    FOR EACH STATEMENT EXECUTE FUNCTION bump_key_generation();
