-- The versions that tell pems-fcgi a cached GET /sync-status answer is still exact
-- (src/api/api_sync_status.c): the organization's pfa_queue_stats.status_version (drawn by
-- functions/queue_stats.sql for its queue, here for its servers' health) and the one
-- worker_heartbeat_version row (health and nextSyncAt come from every worker's heartbeat).
-- What changes with time alone (an item falling overdue, a heartbeat growing stale) the answer
-- carries as the time it stays valid until: pems_sync_status_valid_until.

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

-- A server added, removed or whose health_ok changed: its organization's status changes (not
-- for an organization being deleted with its servers). Servers are written by statements of
-- their own (pemsctl, the worker's health check), never inside a transaction that locks
-- queue items, so this counters row is still the last lock taken (functions/locks.sql).
CREATE OR REPLACE FUNCTION api_servers_status_bump() RETURNS trigger
LANGUAGE plpgsql AS
$$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.health_ok IS NOT DISTINCT FROM NEW.health_ok
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
    AFTER INSERT OR DELETE OR UPDATE OF health_ok, organization_id ON api_servers
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

-- Until when an organization's /sync-status answer, computed now, holds while nothing is
-- written: the first pending item's falling overdue (when none is yet), the newest heartbeat's
-- growing stale (health), a heartbeat's next_sync_at or last_seen_at leaving nextSyncAt's
-- window. NULL: nothing of it changes with time alone.
CREATE OR REPLACE FUNCTION pems_sync_status_valid_until(org uuid, stale_seconds integer)
RETURNS timestamptz
LANGUAGE sql STABLE AS
$$
    SELECT least(
        (SELECT CASE WHEN min(scheduled_at) >= now() - interval '1 minute'
                     THEN min(scheduled_at) + interval '1 minute' END
           FROM pfa_write_queue WHERE organization_id = org AND status = 'pending'),
        (SELECT CASE WHEN max(last_seen_at) >= now() - make_interval(secs => stale_seconds)
                     THEN max(last_seen_at) + make_interval(secs => stale_seconds) END
           FROM worker_heartbeats),
        (SELECT min(least(next_sync_at + interval '5 seconds',
                          last_seen_at + make_interval(secs => stale_seconds)))
           FROM worker_heartbeats
          WHERE next_sync_at >= now() - interval '5 seconds'
            AND last_seen_at >= now() - make_interval(secs => stale_seconds)))
$$;
