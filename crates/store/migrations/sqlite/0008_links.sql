-- An address identity's verification link (the mail SES sends to an address): the SHA-256 of
-- its token (the token itself is only in the mail), when it was sent and expires, and the
-- template's redirection URLs. A token names one identity, so the hash is unique; followed
-- links are found by it, across accounts.
ALTER TABLE identities ADD COLUMN link_hash TEXT;
ALTER TABLE identities ADD COLUMN link_sent_at INTEGER;
ALTER TABLE identities ADD COLUMN link_expires_at INTEGER;
ALTER TABLE identities ADD COLUMN link_success_url TEXT;
ALTER TABLE identities ADD COLUMN link_failure_url TEXT;
CREATE UNIQUE INDEX identities_link ON identities(link_hash) WHERE link_hash IS NOT NULL;
