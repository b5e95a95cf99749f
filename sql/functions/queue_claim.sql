-- The items a claim takes: an organization's due items and expired leases, in claim order
-- (priority DESC, scheduled_at, id), at most n, locked and skipping those another worker
-- holds. The queue's statistics lag behind it: a write-sync turns thousands of rows pending
-- at once, and until the next analyze the planner believes there are none, so it would read
-- them through any index and sort them all on every claim. Sorting is priced out here only,
-- which leaves the indexes made for this read (pfa_write_queue_org_claim, _org_leased), in
-- their order; the price it puts on the remaining sorts would otherwise make PostgreSQL
-- JIT-compile each claim.
-- ROWS 100: the claim joins these rows back to the queue by id; at the default estimate of
-- 1,000 rows the planner hashed the whole queue for every claim (~10 ms at 20,000 items),
-- while a claim returns at most its batch, 100 by default: 100 lookups by primary key.
CREATE OR REPLACE FUNCTION pfa_write_queue_claimable(org uuid, n int)
RETURNS TABLE (id uuid, priority smallint, scheduled_at timestamptz)
LANGUAGE plpgsql VOLATILE ROWS 100
SET enable_sort = off SET enable_incremental_sort = off SET jit = off AS
$$
BEGIN
    -- PL/pgSQL keeps the plan for the session; an SQL function with SET would plan it again
    -- on every claim (~3 ms)
    RETURN QUERY
    WITH due AS (
        SELECT q.id, q.priority, q.scheduled_at FROM pfa_write_queue q
        WHERE q.organization_id = org AND q.status = 'pending' AND q.scheduled_at <= now()
        ORDER BY q.priority DESC, q.scheduled_at, q.id LIMIT n FOR UPDATE SKIP LOCKED
    ), expired AS (
        SELECT q.id, q.priority, q.scheduled_at FROM pfa_write_queue q
        WHERE q.organization_id = org AND q.status = 'processing' AND q.locked_until < now()
        ORDER BY q.priority DESC, q.scheduled_at, q.id LIMIT n FOR UPDATE SKIP LOCKED
    )
    SELECT d.id, d.priority, d.scheduled_at
    FROM (SELECT * FROM due UNION ALL SELECT * FROM expired) d
    ORDER BY d.priority DESC, d.scheduled_at, d.id LIMIT n;
END
$$;
