-- The sync status: GET /sync-status and `pemsctl status` ask these functions, so a "live
-- worker", an "overdue" item and the health they make are one rule. The schedule is the
-- caller's configuration (PEMS_WRITE_SYNC_SCHEDULE): it passes the schedule's period in
-- seconds (cron_period, src/lib/cron.c) and its next fire time.

-- A worker is live while its last heartbeat is younger than three schedule periods: until
-- pems_worker_live_until.
CREATE OR REPLACE FUNCTION pems_worker_live_until(last_seen_at timestamptz, period_seconds integer)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT last_seen_at + make_interval(secs => 3 * period_seconds) $$;

CREATE OR REPLACE FUNCTION pems_worker_live(last_seen_at timestamptz, period_seconds integer)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT pems_worker_live_until(last_seen_at, period_seconds) >= now() $$;

-- A queue item is overdue when it has been due for more than a minute and is still pending:
-- a live worker looks for due work twice a second. A pending item falls overdue after
-- pems_queue_item_overdue_from.
CREATE OR REPLACE FUNCTION pems_queue_item_overdue_from(scheduled_at timestamptz)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT scheduled_at + interval '1 minute' $$;

CREATE OR REPLACE FUNCTION pems_queue_item_overdue(status text, scheduled_at timestamptz)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT status = 'pending' AND pems_queue_item_overdue_from(scheduled_at) < now() $$;

-- A run a worker announced counts until 5 s after it (pems_next_sync_until).
CREATE OR REPLACE FUNCTION pems_next_sync_until(next_sync_at timestamptz)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT next_sync_at + interval '5 seconds' $$;

-- The next run a live worker announced (not one that passed more than 5 s ago): one row,
-- next_sync_at NULL when none did. This and pems_sync_status are plain SQL returning a table,
-- which PostgreSQL inlines into the calling statement (GET /sync-status, prepared once).
CREATE OR REPLACE FUNCTION pems_next_sync(period_seconds integer)
RETURNS TABLE (next_sync_at timestamptz)
LANGUAGE sql STABLE AS
$$ SELECT min(h.next_sync_at) FROM worker_heartbeats h
   WHERE pems_next_sync_until(h.next_sync_at) >= now()
     AND pems_worker_live(h.last_seen_at, period_seconds) $$;

-- GET /sync-status of one organization, one row (`pemsctl status --org` shows it too).
-- Without a filter the figures come from the trigger-kept counters (pfa_queue_stats);
-- only_status, t_from and t_to (on created_at, inclusive) narrow a scan of the queue itself.
-- next_run: the schedule's next fire time, nextSyncAt while no live worker announced one.
-- A conflict's queue item ends 'completed' with last_error 'conflict' and writes nothing:
-- synced counts the completed items PEMS took (completed less those), successRate is synced
-- of the finished items, and conflicts the unresolved conflicts; notQueued the edits waiting
-- for a write-sync (pending_sync). healthReason says why health is not healthy, the one rule
-- health is read from: unhealthy without a live worker (at: the last heartbeat) or while the
-- PEMS server's health check fails (at: that check), degraded below a 95 % success rate or
-- with items overdue; null while healthy.
CREATE OR REPLACE FUNCTION pems_sync_status(org uuid, only_status text, t_from timestamptz,
    t_to timestamptz, period_seconds integer, next_run timestamptz)
RETURNS TABLE (doc json)
LANGUAGE sql STABLE AS
$$
    SELECT json_build_object(
        'totalQueued', f.pending, 'processing', f.processing, 'completed', f.completed,
        'synced', f.synced, 'failed', f.failed, 'conflicts', w.conflicts,
        'notQueued', w.not_queued, 'avgSyncTime', f.avg_ms, 'lastSyncAt', pems_iso(f.last_sync),
        'nextSyncAt', pems_iso(coalesce((SELECT n.next_sync_at FROM pems_next_sync(period_seconds) n),
                                        next_run)),
        'health', CASE r.code WHEN 'no_worker' THEN 'unhealthy' WHEN 'pems_unreachable' THEN 'unhealthy'
                              WHEN 'low_success_rate' THEN 'degraded' WHEN 'items_overdue' THEN 'degraded'
                              ELSE 'healthy' END,
        'healthReason', CASE WHEN r.code IS NOT NULL
                             THEN json_build_object('code', r.code, 'message', r.message, 'at', pems_iso(r.at)) END,
        'successRate', f.rate)
    FROM (
        SELECT c.*, greatest(c.completed - c.held, 0) AS synced,
               CASE WHEN c.completed + c.failed = 0 THEN 100
                    ELSE round(100.0 * greatest(c.completed - c.held, 0) / (c.completed + c.failed))::int
               END AS rate
        FROM (
            SELECT coalesce(s.pending, 0) AS pending, coalesce(s.processing, 0) AS processing,
                   coalesce(s.completed, 0) AS completed, coalesce(s.failed, 0) AS failed,
                   -- each conflict held the one item it was found on
                   (SELECT count(*) FROM pfa_sync_conflict x WHERE x.organization_id = org) AS held,
                   CASE WHEN s.completed_timed > 0
                        THEN round(s.completed_duration_ms::numeric / s.completed_timed)::bigint
                        ELSE 0 END AS avg_ms,
                   s.last_completed_at AS last_sync,
                   (SELECT count(*) FROM pfa_write_queue q WHERE q.organization_id = org
                      AND pems_queue_item_overdue(q.status, q.scheduled_at)) AS overdue
            FROM (SELECT 1) one LEFT JOIN pfa_queue_stats s ON s.organization_id = org
            WHERE only_status IS NULL AND t_from IS NULL AND t_to IS NULL
            UNION ALL
            SELECT count(*) FILTER (WHERE q.status = 'pending'),
                   count(*) FILTER (WHERE q.status = 'processing'),
                   count(*) FILTER (WHERE q.status = 'completed'),
                   count(*) FILTER (WHERE q.status = 'failed'),
                   count(*) FILTER (WHERE q.status = 'completed' AND q.last_error = 'conflict'),
                   coalesce(round(avg(q.duration_ms) FILTER (WHERE q.status = 'completed')), 0)::bigint,
                   max(q.completed_at) FILTER (WHERE q.status = 'completed'),
                   count(*) FILTER (WHERE pems_queue_item_overdue(q.status, q.scheduled_at))
            FROM pfa_write_queue q
            WHERE NOT (only_status IS NULL AND t_from IS NULL AND t_to IS NULL)
              AND q.organization_id = org
              AND (only_status IS NULL OR q.status = only_status)
              AND (t_from IS NULL OR q.created_at >= t_from)
              AND (t_to IS NULL OR q.created_at <= t_to)
            HAVING NOT (only_status IS NULL AND t_from IS NULL AND t_to IS NULL)
        ) c
    ) f,
    LATERAL (SELECT
        (SELECT count(*) FROM pfa_sync_conflict x
         WHERE x.organization_id = org AND x.status = 'unresolved') AS conflicts,
        (SELECT count(*) FROM pfa_modification m
         WHERE m.organization_id = org AND m.status = 'pending_sync') AS not_queued) w,
    LATERAL (SELECT * FROM (
        SELECT 1 AS rank, 'no_worker' AS code,
               CASE WHEN max(h.last_seen_at) IS NULL THEN 'no worker has ever reported'
                    ELSE 'no worker has reported for three schedule periods' END AS message,
               max(h.last_seen_at) AS at
        FROM worker_heartbeats h
        HAVING NOT coalesce(bool_or(pems_worker_live(h.last_seen_at, period_seconds)), false)
        UNION ALL
        SELECT 2, 'pems_unreachable',
               'PEMS health check failing' || coalesce(': ' || a.health_error, ''), a.health_checked_at
        FROM api_servers a WHERE a.organization_id = org AND a.health_ok IS FALSE
        UNION ALL
        SELECT 3, 'low_success_rate',
               format('%s %% of the finished items synced (under 95 %%)', f.rate), NULL
        WHERE f.rate < 95
        UNION ALL
        SELECT 4, 'items_overdue',
               format('%s queued item%s due for over a minute', f.overdue,
                      CASE WHEN f.overdue = 1 THEN '' ELSE 's' END), NULL
        WHERE f.overdue > 0
        UNION ALL SELECT 5, NULL, NULL, NULL
    ) reasons ORDER BY rank LIMIT 1) r
$$;

-- The versions that tell pems-fcgi a cached unfiltered answer is still exact
-- (src/api/api_sync_status.c): the organization's pfa_queue_stats.status_version (drawn by
-- functions/queue_stats.sql for its queue, here for its servers' health), the one
-- worker_heartbeat_version row (health, its reason and nextSyncAt come from every worker's
-- heartbeat), its conflicts version (functions/conflicts.sql: synced, conflicts); notQueued
-- the check reads itself. What changes with time alone the answer carries as the time it
-- holds until: pems_sync_status_valid_until.

-- Every statement that writes heartbeats (a beat, a prune, a TRUNCATE) draws a new version.
CREATE OR REPLACE FUNCTION worker_heartbeat_version_bump() RETURNS trigger
LANGUAGE plpgsql AS
$$
BEGIN
    INSERT INTO worker_heartbeat_version AS v (singleton, version)
    VALUES (true, nextval('pfa_status_version_seq'))
    ON CONFLICT (singleton) DO UPDATE SET version = EXCLUDED.version;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER worker_heartbeats_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON worker_heartbeats FOR EACH STATEMENT EXECUTE FUNCTION worker_heartbeat_version_bump();

-- A server added, removed, whose health_ok changed, or failing with a new error or check time
-- (healthReason): its organization's status changes (not
-- for an organization being deleted with its servers). Servers are written by statements of
-- their own (pemsctl, the worker's health check), never inside a transaction that locks
-- queue items, so this counters row is still the last lock taken (functions/locks.sql).
CREATE OR REPLACE FUNCTION api_servers_status_bump() RETURNS trigger
LANGUAGE plpgsql AS
$$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.health_ok IS NOT DISTINCT FROM NEW.health_ok
       AND (NEW.health_ok IS NOT FALSE OR (OLD.health_error IS NOT DISTINCT FROM NEW.health_error
            AND OLD.health_checked_at IS NOT DISTINCT FROM NEW.health_checked_at))
       AND OLD.organization_id = NEW.organization_id THEN
        RETURN NULL;
    END IF;
    INSERT INTO pfa_queue_stats AS s (organization_id)
    SELECT id FROM organizations
    WHERE id IN (CASE WHEN TG_OP <> 'INSERT' THEN OLD.organization_id END,
                 CASE WHEN TG_OP <> 'DELETE' THEN NEW.organization_id END)
    ORDER BY id
    ON CONFLICT (organization_id) DO UPDATE SET status_version = nextval('pfa_status_version_seq');
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER api_servers_status
    AFTER INSERT OR DELETE OR UPDATE OF health_ok, health_error, health_checked_at, organization_id
    ON api_servers
    FOR EACH ROW EXECUTE FUNCTION api_servers_status_bump();

-- A TRUNCATE of api_servers names no organization: every one gets a new version.
CREATE OR REPLACE FUNCTION api_servers_truncate_status_bump() RETURNS trigger
LANGUAGE plpgsql AS
$$
BEGIN
    UPDATE pfa_queue_stats SET status_version = nextval('pfa_status_version_seq');
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER api_servers_truncate_status AFTER TRUNCATE ON api_servers
    FOR EACH STATEMENT EXECUTE FUNCTION api_servers_truncate_status_bump();

-- Until when an organization's unfiltered answer, computed now, holds while nothing is
-- written: the next pending item's falling overdue (the health and its reason count them), the last live worker's
-- ceasing to be live (the health), a live worker's announced run leaving nextSyncAt (5 s after
-- it, or when that worker stops being live). NULL: nothing of it changes with time alone.
CREATE OR REPLACE FUNCTION pems_sync_status_valid_until(org uuid, period_seconds integer)
RETURNS timestamptz
LANGUAGE sql STABLE AS
$$
    SELECT least(
        (SELECT min(pems_queue_item_overdue_from(q.scheduled_at)) FROM pfa_write_queue q
          WHERE q.organization_id = org AND q.status = 'pending'
            AND NOT pems_queue_item_overdue(q.status, q.scheduled_at)),
        (SELECT max(pems_worker_live_until(h.last_seen_at, period_seconds))
           FROM worker_heartbeats h WHERE pems_worker_live(h.last_seen_at, period_seconds)),
        (SELECT min(least(pems_next_sync_until(h.next_sync_at),
                          pems_worker_live_until(h.last_seen_at, period_seconds)))
           FROM worker_heartbeats h
          WHERE pems_next_sync_until(h.next_sync_at) >= now()
            AND pems_worker_live(h.last_seen_at, period_seconds)))
$$;
