-- GET /sync-history reads the audit log, the record of every finished write: a synced
-- modification ('modification.synced', merged when the worker merged it automatically), a
-- failed one ('modification.sync_error') and a conflict ('conflict.created'). Buckets are UTC
-- minutes, hours or days from the one holding t_from up to t_to (exclusive); events count
-- when t_from <= created_at < t_to (index audit_log_sync_history).
CREATE OR REPLACE FUNCTION pems_sync_history(org uuid, t_from timestamptz, t_to timestamptz,
                                             bucket text) RETURNS json
LANGUAGE sql STABLE AS
$$ WITH b AS (
       SELECT s AS start
       FROM generate_series(date_trunc(bucket, t_from AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
                            t_to - interval '1 microsecond', ('1 ' || bucket)::interval) s
   ), e AS (
       SELECT date_trunc(bucket, created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS start,
              count(*) FILTER (WHERE action = 'modification.synced') AS synced,
              count(*) FILTER (WHERE action = 'modification.sync_error') AS failed,
              count(*) FILTER (WHERE action = 'conflict.created') AS conflict,
              count(*) FILTER (WHERE action = 'modification.synced'
                               AND after @> '{"merged": true}') AS merged
       FROM audit_log
       WHERE organization_id = org AND created_at >= t_from AND created_at < t_to
         AND action IN ('modification.synced', 'modification.sync_error', 'conflict.created')
       GROUP BY 1
   )
   SELECT json_build_object('bucket', bucket, 'buckets', coalesce(json_agg(json_build_object(
              'start', pems_iso(b.start), 'synced', coalesce(e.synced, 0),
              'failed', coalesce(e.failed, 0), 'conflict', coalesce(e.conflict, 0),
              'merged', coalesce(e.merged, 0)) ORDER BY b.start), '[]'))
   FROM b LEFT JOIN e ON e.start = b.start $$;
