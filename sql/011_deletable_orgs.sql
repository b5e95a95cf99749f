-- An organization can be deleted, with everything it owns; its audit history stays.
-- The audit log outlives what it names. Its references to organizations and users were
-- ON DELETE SET NULL, an UPDATE the append-only trigger refuses, so an organization or user
-- with any history could not be deleted at all; now the rows keep the ids they were written
-- with. Each audit insert also paid two key lookups for them.
ALTER TABLE audit_log DROP CONSTRAINT IF EXISTS audit_log_organization_id_fkey;
ALTER TABLE audit_log DROP CONSTRAINT IF EXISTS audit_log_user_id_fkey;

-- A queue item belongs to its modification (ON DELETE CASCADE), which belongs to the
-- organization: the item goes with them, and its own reference to organizations was a second
-- lookup on every insert (a 20,000-item write-sync spent 160 ms on it).
ALTER TABLE pfa_write_queue DROP CONSTRAINT IF EXISTS pfa_write_queue_organization_id_fkey;

-- The queue counters of an organization being deleted go with it (ON DELETE CASCADE): the
-- counters' trigger, fired by the queue items deleted in the same cascade, no longer writes
-- counters for it (that insert violated their foreign key and refused the deletion).
CREATE OR REPLACE FUNCTION pfa_queue_stats_apply() RETURNS trigger
LANGUAGE plpgsql AS
$$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM pfa_queue_stats_add(ARRAY(SELECT ROW(organization_id, status, duration_ms,
            completed_at, 1)::pfa_queue_delta FROM new_rows));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM pfa_queue_stats_add(ARRAY(SELECT ROW(organization_id, status, duration_ms,
            completed_at, -1)::pfa_queue_delta FROM old_rows o
            WHERE EXISTS (SELECT 1 FROM organizations WHERE id = o.organization_id)));
    ELSE
        PERFORM pfa_queue_stats_add(ARRAY(
            SELECT ROW(organization_id, status, duration_ms, completed_at, 1)::pfa_queue_delta
            FROM new_rows
            UNION ALL
            SELECT ROW(organization_id, status, duration_ms, completed_at, -1)::pfa_queue_delta
            FROM old_rows));
    END IF;
    RETURN NULL;
END
$$;
