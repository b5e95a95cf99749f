-- The claim reads an organization's due items in (priority DESC, scheduled_at, id) order and
-- stops at the batch size: an index in exactly that order, and one for expired leases.
CREATE INDEX IF NOT EXISTS pfa_write_queue_org_claim
    ON pfa_write_queue (organization_id, priority DESC, scheduled_at, id) WHERE status = 'pending';
DROP INDEX IF EXISTS pfa_write_queue_org_due;
CREATE INDEX IF NOT EXISTS pfa_write_queue_org_leased
    ON pfa_write_queue (organization_id, locked_until) WHERE status = 'processing';
