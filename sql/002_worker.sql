-- pemsworker: claim fencing and the per-PEMS-server rate window handed between workers.
-- Idempotent.

-- Incremented at every claim; a completion or reschedule matches locked_by AND the claim_seq
-- it claimed, so a worker whose lease expired can never record a result over a newer claim.
ALTER TABLE pfa_write_queue ADD COLUMN IF NOT EXISTS claim_seq bigint NOT NULL DEFAULT 0;

-- One worker drains a PEMS server at a time (session advisory lock on the server id). The
-- holder writes the start times (wall-clock ns) of its requests of the last second here when
-- it lets go, and the next holder seeds its sliding window with them. rate_window_clean is
-- false while a worker holds the server: a holder that died without writing its window makes
-- the next one wait a full second before its first request.
ALTER TABLE api_servers ADD COLUMN IF NOT EXISTS rate_window bigint[] NOT NULL DEFAULT '{}';
ALTER TABLE api_servers ADD COLUMN IF NOT EXISTS rate_window_clean boolean NOT NULL DEFAULT true;
ALTER TABLE api_servers ADD COLUMN IF NOT EXISTS rate_window_at timestamptz;

-- due work per organization
CREATE INDEX IF NOT EXISTS pfa_write_queue_org_due
    ON pfa_write_queue (organization_id, priority DESC, scheduled_at) WHERE status = 'pending';

