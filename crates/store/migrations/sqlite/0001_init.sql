-- Accounts (tenants) and their access keys; secrets are sealed by the vault.
CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE access_keys (
    id             TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES accounts(id),
    sealed_secret  BLOB NOT NULL,
    enabled        INTEGER NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX access_keys_by_account ON access_keys(account_id);

-- One row per email identity. Domain names are stored lower-cased, addresses as given.
CREATE TABLE identities (
    account_id              TEXT NOT NULL REFERENCES accounts(id),
    name                    TEXT NOT NULL,
    identity_type           TEXT NOT NULL,
    version                 INTEGER NOT NULL,
    created_at              INTEGER NOT NULL,
    feedback_forwarding     INTEGER NOT NULL,
    signing_override        INTEGER,
    verification_status     TEXT NOT NULL,
    dkim_origin             TEXT,
    dkim_signing_enabled    INTEGER,
    dkim_status             TEXT,
    dkim_tokens             TEXT,
    dkim_selector           TEXT,
    dkim_next_length        INTEGER,
    dkim_length_changed_at  INTEGER,
    dkim_downgraded_at      INTEGER,
    tags                    TEXT NOT NULL,
    PRIMARY KEY (account_id, name)
) WITHOUT ROWID;

-- DKIM key pairs of an identity, in token order; private halves sealed.
CREATE TABLE dkim_keys (
    account_id      TEXT NOT NULL,
    identity_name   TEXT NOT NULL,
    position        INTEGER NOT NULL,
    selector        TEXT NOT NULL,
    bits            INTEGER NOT NULL,
    public_der      BLOB NOT NULL,
    sealed_private  BLOB NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (account_id, identity_name, position),
    FOREIGN KEY (account_id, identity_name) REFERENCES identities(account_id, name) ON DELETE CASCADE
) WITHOUT ROWID;
