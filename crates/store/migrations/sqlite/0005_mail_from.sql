-- Custom MAIL FROM (PutEmailIdentityMailFromAttributes): the domain, BehaviorOnMxFailure (kept
-- with or without a domain, as SES shows it), the domain's status and the verifier's record of
-- its MX checks, in the same shape as the identity's own `v_*` columns.
ALTER TABLE identities ADD COLUMN mail_from_domain TEXT;
ALTER TABLE identities ADD COLUMN mail_from_behavior TEXT NOT NULL DEFAULT 'USE_DEFAULT_VALUE';
ALTER TABLE identities ADD COLUMN mail_from_status TEXT;
ALTER TABLE identities ADD COLUMN mf_last_checked INTEGER;
ALTER TABLE identities ADD COLUMN mf_last_success INTEGER;
ALTER TABLE identities ADD COLUMN mf_error TEXT;
ALTER TABLE identities ADD COLUMN mf_pending_since INTEGER;
ALTER TABLE identities ADD COLUMN mf_failing_since INTEGER;
ALTER TABLE identities ADD COLUMN mf_next_check_at INTEGER;
ALTER TABLE identities ADD COLUMN mf_attempts INTEGER NOT NULL DEFAULT 0;
