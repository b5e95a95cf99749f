-- The per-organization queue counters (pfa_queue_stats), kept by statement triggers on
-- pfa_write_queue.

-- Adds the deltas to the counters and draws the organization a new status_version;
-- organizations whose net change is nothing and that touched no pending item (a lease
-- extension) are not written. A pending item changed in place (rescheduled) changes no counter
-- but may change /sync-status (its overdue items). Rows are upserted in organization order so
-- concurrent statements lock them in one order. PL/pgSQL, so the plan is kept for the session.
CREATE OR REPLACE FUNCTION pfa_queue_stats_add(d pfa_queue_delta[]) RETURNS void
LANGUAGE plpgsql AS
$$
BEGIN
    INSERT INTO pfa_queue_stats AS s (organization_id, pending, processing, completed, failed,
        cancelled, completed_duration_ms, completed_timed, last_completed_at)
    SELECT organization_id, pending, processing, completed, failed, cancelled, dur, timed,
           last_at FROM (
        SELECT organization_id,
               sum(sign) FILTER (WHERE status = 'pending') AS pending,
               sum(sign) FILTER (WHERE status = 'processing') AS processing,
               sum(sign) FILTER (WHERE status = 'completed') AS completed,
               sum(sign) FILTER (WHERE status = 'failed') AS failed,
               sum(sign) FILTER (WHERE status = 'cancelled') AS cancelled,
               sum(sign * duration_ms) FILTER (WHERE status = 'completed') AS dur,
               sum(sign) FILTER (WHERE status = 'completed' AND duration_ms IS NOT NULL) AS timed,
               max(completed_at) FILTER (WHERE status = 'completed' AND sign > 0) AS last_at,
               count(*) FILTER (WHERE status = 'pending') AS pending_rows
        FROM unnest(d) GROUP BY organization_id) g
    WHERE pending_rows > 0 OR coalesce(processing, 0) <> 0
       OR coalesce(completed, 0) <> 0 OR coalesce(failed, 0) <> 0
       OR coalesce(cancelled, 0) <> 0 OR coalesce(dur, 0) <> 0 OR coalesce(timed, 0) <> 0
    ORDER BY organization_id
    ON CONFLICT (organization_id) DO UPDATE SET
        pending = s.pending + coalesce(EXCLUDED.pending, 0),
        processing = s.processing + coalesce(EXCLUDED.processing, 0),
        completed = s.completed + coalesce(EXCLUDED.completed, 0),
        failed = s.failed + coalesce(EXCLUDED.failed, 0),
        cancelled = s.cancelled + coalesce(EXCLUDED.cancelled, 0),
        completed_duration_ms = s.completed_duration_ms + coalesce(EXCLUDED.completed_duration_ms, 0),
        completed_timed = s.completed_timed + coalesce(EXCLUDED.completed_timed, 0),
        last_completed_at = greatest(s.last_completed_at, EXCLUDED.last_completed_at),
        status_version = nextval('pfa_status_version_seq');
END
$$;

-- The statement triggers hand their transition tables to pfa_queue_stats_add. The counters of
-- an organization being deleted go with it (ON DELETE CASCADE): the items deleted in the same
-- cascade write no counters for it (that insert would violate their foreign key).
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

-- The first row an organization gets is the INSERT branch: its NULL counters become 0.
CREATE OR REPLACE FUNCTION pfa_queue_stats_fill() RETURNS trigger
LANGUAGE plpgsql AS
$$
BEGIN
    NEW.pending := coalesce(NEW.pending, 0);
    NEW.processing := coalesce(NEW.processing, 0);
    NEW.completed := coalesce(NEW.completed, 0);
    NEW.failed := coalesce(NEW.failed, 0);
    NEW.cancelled := coalesce(NEW.cancelled, 0);
    NEW.completed_duration_ms := coalesce(NEW.completed_duration_ms, 0);
    NEW.completed_timed := coalesce(NEW.completed_timed, 0);
    RETURN NEW;
END
$$;
CREATE OR REPLACE TRIGGER pfa_queue_stats_fill BEFORE INSERT ON pfa_queue_stats
    FOR EACH ROW EXECUTE FUNCTION pfa_queue_stats_fill();
CREATE OR REPLACE TRIGGER pfa_write_queue_stats_ins AFTER INSERT ON pfa_write_queue
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION pfa_queue_stats_apply();
CREATE OR REPLACE TRIGGER pfa_write_queue_stats_upd AFTER UPDATE ON pfa_write_queue
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION pfa_queue_stats_apply();
CREATE OR REPLACE TRIGGER pfa_write_queue_stats_del AFTER DELETE ON pfa_write_queue
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION pfa_queue_stats_apply();
