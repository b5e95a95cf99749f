-- The worker's data rules as functions: the C code keeps the wire, the process and the
-- retries, and calls these by name.

-- The mirror advances to a newer version of a record: the version it had is archived to the
-- history with the fields the new one changed (conflict detection reads them), then the
-- mirror row takes the new version. A row that is not newer changes nothing. One rule for the
-- pull and for a write's result. rows: [{organization_id, pfa_id, version, data, deleted,
-- updated_at, changed}]; returns how many mirror rows were inserted or advanced.
CREATE OR REPLACE FUNCTION pfa_mirror_advance(rows jsonb) RETURNS integer
LANGUAGE sql VOLATILE AS
$$
    WITH r AS (
        SELECT * FROM jsonb_to_recordset(rows) AS x(organization_id uuid, pfa_id text,
            version bigint, data jsonb, deleted boolean, updated_at text, changed text[])
    ), h AS (
        INSERT INTO pfa_mirror_history (organization_id, pfa_id, version, data, changed_fields,
                                        superseded_by)
        SELECT m.organization_id, m.pfa_id, m.version, m.data, coalesce(r.changed, '{}'), r.version
        FROM r JOIN pfa_mirror m ON m.organization_id = r.organization_id AND m.pfa_id = r.pfa_id
        WHERE m.version < r.version
        ON CONFLICT (organization_id, pfa_id, version) DO NOTHING
        RETURNING 1
    ), u AS (
        INSERT INTO pfa_mirror (organization_id, pfa_id, version, data, deleted, pems_updated_at)
        SELECT r.organization_id, r.pfa_id, r.version, coalesce(r.data, '{}'),
               coalesce(r.deleted, false), r.updated_at
        FROM r
        ON CONFLICT (organization_id, pfa_id) DO UPDATE SET version = EXCLUDED.version,
            data = EXCLUDED.data,
            deleted = EXCLUDED.deleted,
            pems_updated_at = coalesce(EXCLUDED.pems_updated_at, pfa_mirror.pems_updated_at),
            updated_at = now()
        WHERE pfa_mirror.version < EXCLUDED.version
        RETURNING 1
    )
    SELECT count(*)::int FROM u
$$;

-- A batch of the worker's results, in one transaction (src/worker/README.md, Results): the
-- fenced queue UPDATE decides which results count (locked_by and the claim's claim_seq, so a
-- stale worker changes nothing), and every other change follows from what it returned: the
-- modifications, the mirror of the records written (pfa_mirror_advance), the audit rows.
-- results: [{item, seq, outcome (synced|failed|retry|defer|release), att, dfr, delay_ms, err,
-- http, wrote, pfa_id, old_version, new_version, new_data, deleted, changed, written,
-- merged}]; returns the ids of the items whose result was recorded.
CREATE OR REPLACE FUNCTION pfa_write_queue_record(worker text, results jsonb)
RETURNS SETOF uuid LANGUAGE plpgsql VOLATILE AS
$$
DECLARE
    done jsonb;
BEGIN
    WITH r AS (
        SELECT * FROM jsonb_to_recordset(results) AS x(item uuid, seq bigint, outcome text,
            att int, dfr int, delay_ms bigint, err text, http int, wrote boolean, pfa_id text,
            old_version bigint, new_version bigint, new_data jsonb, deleted boolean, changed text[],
            written jsonb, merged boolean)
    ), q AS (
        UPDATE pfa_write_queue w SET
            status = CASE r.outcome WHEN 'synced' THEN 'completed' WHEN 'failed' THEN 'failed'
                     ELSE 'pending' END,
            attempts = w.attempts + r.att,
            deferrals = w.deferrals + r.dfr,
            scheduled_at = CASE WHEN r.outcome IN ('retry', 'defer')
                           THEN now() + r.delay_ms * interval '1 millisecond' ELSE w.scheduled_at END,
            locked_by = NULL, locked_until = NULL,
            last_error = CASE WHEN r.outcome = 'release' THEN w.last_error ELSE r.err END,
            last_http_status = CASE WHEN r.outcome = 'release' THEN w.last_http_status ELSE r.http END,
            completed_at = CASE WHEN r.outcome IN ('synced', 'failed') THEN now() END,
            duration_ms = CASE WHEN r.outcome IN ('synced', 'failed')
                          THEN greatest(0, (extract(epoch FROM clock_timestamp() - w.started_at) * 1000)::int)
                          ELSE w.duration_ms END,
            updated_at = now()
        FROM r
        WHERE w.id = r.item AND w.status = 'processing' AND w.locked_by = worker AND w.claim_seq = r.seq
        RETURNING w.id, w.organization_id, w.modification_id, w.status, w.attempts, w.scheduled_at,
                  r.outcome, r.att, r.err, r.http, r.wrote, r.pfa_id, r.new_version, r.new_data,
                  r.deleted, r.changed, r.written, r.merged
    ), mods AS (
        SELECT q.*, m.status AS old_mod_status FROM q JOIN pfa_modification m ON m.id = q.modification_id
        WHERE q.outcome IN ('synced', 'failed')
    ), mu AS (
        UPDATE pfa_modification m SET updated_at = now(),
            status = CASE WHEN mods.outcome = 'synced' THEN 'synced' ELSE 'sync_error' END
        FROM mods WHERE m.id = mods.modification_id
        RETURNING m.id
    ), aud AS (
        INSERT INTO audit_log (organization_id, user_id, actor, action, entity_type, entity_id,
                               before, after)
        SELECT q.organization_id, NULL::uuid, worker,
               'queue_item.' || CASE q.outcome WHEN 'synced' THEN 'completed' WHEN 'failed' THEN 'failed'
                                WHEN 'retry' THEN 'retry_scheduled' ELSE 'deferred' END,
               'pfa_write_queue', q.id::text,
               jsonb_build_object('status', 'processing', 'attempts', q.attempts - q.att),
               jsonb_strip_nulls(jsonb_build_object('status', q.status, 'attempts', q.attempts,
                 'scheduledAt', CASE WHEN q.status = 'pending' THEN pems_iso(q.scheduled_at) END,
                 'lastError', q.err, 'lastHttpStatus', q.http))
        FROM q WHERE q.outcome <> 'release'
        UNION ALL
        SELECT mods.organization_id, NULL::uuid, worker,
               CASE WHEN mods.outcome = 'synced' THEN 'modification.synced'
                    ELSE 'modification.sync_error' END,
               'pfa_modification', mods.modification_id::text,
               jsonb_build_object('status', mods.old_mod_status),
               jsonb_strip_nulls(jsonb_build_object(
                 'status', CASE WHEN mods.outcome = 'synced' THEN 'synced' ELSE 'sync_error' END,
                 'queueItemId', mods.id, 'version', mods.new_version, 'written', mods.written,
                 'merged', mods.merged, 'error', mods.err))
        FROM mods
        RETURNING 1
    )
    SELECT coalesce(jsonb_agg(jsonb_build_object('id', q.id, 'organization_id', q.organization_id,
                    'pfa_id', q.pfa_id, 'version', q.new_version,
                    -- a delete keeps the data the record had
                    'data', coalesce(q.new_data, (SELECT mm.data FROM pfa_mirror mm
                            WHERE mm.organization_id = q.organization_id AND mm.pfa_id = q.pfa_id)),
                    'deleted', coalesce(q.deleted, false), 'changed', to_jsonb(q.changed),
                    'wrote', q.outcome = 'synced' AND q.wrote)), '[]')
    INTO done FROM q;
    -- the records written move to the version PEMS answered with
    PERFORM pfa_mirror_advance(coalesce(jsonb_agg(d), '[]'))
    FROM jsonb_array_elements(done) d WHERE (d->>'wrote')::boolean;
    RETURN QUERY SELECT (d->>'id')::uuid FROM jsonb_array_elements(done) d;
END
$$;

-- A conflict, in one transaction fenced by the item's claim: a pfa_sync_conflict row (local
-- data = the modification's delta, local version = its base version, PEMS's data and version
-- as the mirror has them now), the modification 'conflict', the queue item 'completed' with
-- last_error 'conflict', and their audit rows. Returns 1 when recorded, 0 when the claim was
-- no longer the worker's. http NULL = none; att 1 when a PEMS request was made.
CREATE OR REPLACE FUNCTION pfa_sync_conflict_record(item uuid, worker text, seq bigint,
    http int, att int, pems_version bigint, fields jsonb, pems_data jsonb)
RETURNS integer LANGUAGE sql VOLATILE AS
$$
    WITH q AS (
        UPDATE pfa_write_queue w SET status = 'completed', completed_at = now(),
            locked_by = NULL, locked_until = NULL, last_error = 'conflict',
            last_http_status = http, attempts = w.attempts + att,
            duration_ms = greatest(0, (extract(epoch FROM clock_timestamp() - w.started_at) * 1000)::int),
            updated_at = now()
        WHERE w.id = item AND w.status = 'processing' AND w.locked_by = worker AND w.claim_seq = seq
        RETURNING w.id, w.organization_id, w.modification_id, w.attempts
    ), m0 AS (
        SELECT m.id, m.organization_id, m.pfa_id, m.base_version, m.delta, m.status
        FROM pfa_modification m JOIN q ON m.id = q.modification_id
    ), c AS (
        INSERT INTO pfa_sync_conflict (organization_id, modification_id, pfa_id, local_version,
            pems_version, conflict_fields, local_data, pems_data)
        SELECT m0.organization_id, m0.id, m0.pfa_id, m0.base_version, pems_version,
               ARRAY(SELECT jsonb_array_elements_text(fields)), m0.delta, pems_data FROM m0
        ON CONFLICT (modification_id) WHERE status = 'unresolved' DO NOTHING
        RETURNING id, organization_id, pfa_id, conflict_fields, local_version, pems_version
    ), mu AS (
        UPDATE pfa_modification m SET status = 'conflict', updated_at = now()
        FROM q WHERE m.id = q.modification_id RETURNING m.id
    ), aud AS (
        INSERT INTO audit_log (organization_id, user_id, actor, action, entity_type, entity_id,
                               before, after)
        SELECT q.organization_id, NULL::uuid, worker, 'queue_item.conflict', 'pfa_write_queue', q.id::text,
               jsonb_build_object('status', 'processing'),
               jsonb_build_object('status', 'completed', 'lastError', 'conflict',
                                  'attempts', q.attempts)
        FROM q
        UNION ALL
        SELECT m0.organization_id, NULL::uuid, worker, 'modification.conflict', 'pfa_modification',
               m0.id::text, jsonb_build_object('status', m0.status),
               jsonb_build_object('status', 'conflict', 'conflictFields', fields,
                                  'pemsVersion', pems_version)
        FROM m0
        UNION ALL
        SELECT c.organization_id, NULL::uuid, worker, 'conflict.created', 'pfa_sync_conflict', c.id::text,
               NULL, jsonb_build_object('status', 'unresolved', 'pfaId', c.pfa_id,
                 'conflictFields', to_jsonb(c.conflict_fields), 'localVersion', c.local_version,
                 'pemsVersion', c.pems_version)
        FROM c
        RETURNING 1
    )
    SELECT count(*)::int FROM q
$$;
