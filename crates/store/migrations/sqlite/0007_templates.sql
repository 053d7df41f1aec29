-- Custom verification email templates (CreateCustomVerificationEmailTemplate), per account.
CREATE TABLE verification_templates (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    from_address TEXT NOT NULL,
    subject TEXT NOT NULL,
    content TEXT NOT NULL,
    success_url TEXT NOT NULL,
    failure_url TEXT NOT NULL,
    -- JSON array of [key, value] pairs, as identities' tags.
    tags TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, name)
) WITHOUT ROWID;
