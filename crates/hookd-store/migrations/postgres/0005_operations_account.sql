-- The reserved operations account (hookd_core::operational): its endpoints are the
-- operator's operational endpoints, its events hookd's own. No API key can name it.
INSERT INTO accounts (account_id, name, created_at)
VALUES ('00000000000000000000000000000000', 'hookd-operations', 0)
ON CONFLICT (account_id) DO NOTHING;
