-- Easy DKIM rotation: which key signs, which is staged, and when a key stopped signing (it
-- stays published for the retention).
ALTER TABLE identities ADD COLUMN dkim_active INTEGER NOT NULL DEFAULT 0;
ALTER TABLE identities ADD COLUMN dkim_staged INTEGER;
ALTER TABLE dkim_keys ADD COLUMN retired_at INTEGER;
