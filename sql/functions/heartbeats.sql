-- A worker that stopped (every `pemsworker --once`, every restart under a new pid) leaves its
-- heartbeat row behind. Each running worker removes the rows not seen for `keep_seconds` (it
-- passes a few of its schedule periods), never less than a minute, which is twelve heartbeats
-- of a live worker.
CREATE OR REPLACE FUNCTION pems_prune_heartbeats(keep_seconds double precision)
RETURNS integer
LANGUAGE sql AS
$$
    WITH gone AS (
        DELETE FROM worker_heartbeats
         WHERE last_seen_at < now() - make_interval(secs => greatest(coalesce(keep_seconds, 0), 60))
        RETURNING 1)
    SELECT count(*)::integer FROM gone
$$;
