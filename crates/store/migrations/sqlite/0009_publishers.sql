-- Issue 18. A key's revocations (`sesame revoke`): JSON `[selector, at, by]` triples, the audit
-- trail kept with the identity's DKIM set-up.
ALTER TABLE identities ADD COLUMN dkim_revocations TEXT NOT NULL DEFAULT '[]';
-- A domain's DNS publisher: the customer's primary server taking RFC 2136 updates, the TSIG
-- key (its secret sealed by the node's sealer, like an access key's), and what Sesame has
-- published there (`state`, JSON), with the version a publisher loop's write must match.
CREATE TABLE dns_publishers (
    account_id    TEXT    NOT NULL,
    domain        TEXT    NOT NULL,
    server        TEXT    NOT NULL,
    zone          TEXT    NOT NULL,
    key_name      TEXT    NOT NULL,
    algorithm     TEXT    NOT NULL,
    sealed_secret BLOB    NOT NULL,
    byodkim       INTEGER NOT NULL,
    state         TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (account_id, domain)
) WITHOUT ROWID;
