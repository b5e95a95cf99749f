-- The records as the API shows them: positions for the change feed (GET /changes), the
-- record object (GET /records, /records/{pfaId}) and a record's history.
--
-- Positions. Every change to a record's row in pfa_mirror or to its modifications moves the
-- record's position, whatever writes it: statement triggers note the records a transaction
-- touched, and at its commit one deferred trigger gives them new positions from one sequence,
-- under a transaction lock per organization. So an organization's positions are drawn in the
-- order its transactions commit: a reader that sees position N sees every change below N, and
-- a transaction still open holds no position at all (it draws one when it commits, above
-- every position handed out before).

CREATE OR REPLACE FUNCTION pfa_record_touch() RETURNS trigger
LANGUAGE plpgsql AS
$$
BEGIN
    INSERT INTO pfa_record_touched_tx VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
    IF TG_OP = 'DELETE' THEN
        INSERT INTO pfa_record_touched SELECT pg_current_xact_id(), organization_id, pfa_id
        FROM old_rows;
    ELSE
        INSERT INTO pfa_record_touched SELECT pg_current_xact_id(), organization_id, pfa_id
        FROM new_rows;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION pfa_record_publish() RETURNS trigger
LANGUAGE plpgsql AS
$$
BEGIN
    -- organizations in one order, so two committing transactions never wait on each other
    PERFORM pg_advisory_xact_lock(hashtextextended('pems_records:' || o::text, 0))
    FROM (SELECT DISTINCT organization_id AS o FROM pfa_record_touched WHERE xid = NEW.xid
          ORDER BY 1) s;
    INSERT INTO pfa_record_position (organization_id, pfa_id, seq)
    SELECT t.organization_id, t.pfa_id, nextval('pfa_record_position_seq')
    FROM (SELECT DISTINCT organization_id, pfa_id FROM pfa_record_touched WHERE xid = NEW.xid
          ORDER BY 1, 2) t
    -- an organization deleted in this transaction takes its records with it
    WHERE EXISTS (SELECT 1 FROM organizations o WHERE o.id = t.organization_id)
    ON CONFLICT (organization_id, pfa_id) DO UPDATE SET seq = EXCLUDED.seq;
    DELETE FROM pfa_record_touched WHERE xid = NEW.xid;
    DELETE FROM pfa_record_touched_tx WHERE xid = NEW.xid;
    RETURN NULL;
END
$$;

-- (a constraint trigger cannot be replaced: made again)
DROP TRIGGER IF EXISTS pfa_record_publish ON pfa_record_touched_tx;
CREATE CONSTRAINT TRIGGER pfa_record_publish AFTER INSERT ON pfa_record_touched_tx
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pfa_record_publish();

CREATE OR REPLACE TRIGGER pfa_mirror_touch_ins AFTER INSERT ON pfa_mirror
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION pfa_record_touch();
CREATE OR REPLACE TRIGGER pfa_mirror_touch_upd AFTER UPDATE ON pfa_mirror
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION pfa_record_touch();
CREATE OR REPLACE TRIGGER pfa_mirror_touch_del AFTER DELETE ON pfa_mirror
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION pfa_record_touch();
CREATE OR REPLACE TRIGGER pfa_modification_touch_ins AFTER INSERT ON pfa_modification
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION pfa_record_touch();
CREATE OR REPLACE TRIGGER pfa_modification_touch_upd AFTER UPDATE ON pfa_modification
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION pfa_record_touch();
CREATE OR REPLACE TRIGGER pfa_modification_touch_del AFTER DELETE ON pfa_modification
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION pfa_record_touch();

-- The record object: PEMS's record with the open modifications laid over it.

-- A delta on a record as src/lib/pfa_record.c pfa_apply_delta lays it: its keys set, its
-- nulls remove the field.
CREATE OR REPLACE FUNCTION pfa_delta_apply(data jsonb, delta jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$
    SELECT (data - ARRAY(SELECT key FROM jsonb_each(delta) WHERE jsonb_typeof(value) = 'null'))
           || jsonb_strip_nulls(delta)
$$;

-- Deltas one after the other as one delta: a later key wins, nulls kept (they still remove).
CREATE OR REPLACE AGGREGATE pfa_delta_merge(jsonb) (SFUNC = jsonb_concat, STYPE = jsonb, INITCOND = '{}');

-- openapi.yaml Record; with seq, the change feed's entry (Change)
CREATE OR REPLACE FUNCTION pems_record_json(m pfa_mirror, seq bigint DEFAULT NULL) RETURNS json
LANGUAGE sql STABLE AS
$$
    SELECT CASE WHEN seq IS NULL THEN r ELSE (r::jsonb || jsonb_build_object('seq', seq))::json END
    FROM (
        SELECT json_build_object(
            'pfaId', m.pfa_id, 'version', m.version, 'data', m.data,
            'localData', CASE WHEN o.n = 0 THEN m.data WHEN o.deletes > 0 THEN NULL
                              ELSE pfa_delta_apply(m.data, o.patch) END,
            'syncState', CASE WHEN o.conflicts > 0 THEN 'conflict' WHEN o.errors > 0 THEN 'error'
                              WHEN o.n > 0 THEN 'pending' ELSE 'in_sync' END,
            'pendingModifications', o.ids,
            'updatedAt', pems_iso(m.updated_at)) AS r
        FROM (
            SELECT count(*) AS n,
                   count(*) FILTER (WHERE x.operation = 'delete') AS deletes,
                   count(*) FILTER (WHERE x.status = 'conflict') AS conflicts,
                   count(*) FILTER (WHERE x.status = 'sync_error') AS errors,
                   pfa_delta_merge(x.delta ORDER BY x.created_at, x.id) AS patch,
                   coalesce(json_agg(x.id ORDER BY x.created_at, x.id), '[]') AS ids
            FROM pfa_modification x
            WHERE x.organization_id = m.organization_id AND x.pfa_id = m.pfa_id
              AND x.status IN ('draft', 'pending_sync', 'queued', 'conflict', 'sync_error')
        ) o
    ) s
$$;

-- The state GET /records?syncState= filters on, of each record that has open modifications
-- (a record without any is in_sync).
CREATE OR REPLACE FUNCTION pfa_record_states(org uuid)
RETURNS TABLE (pfa_id text, sync_state text)
LANGUAGE sql STABLE AS
$$
    SELECT x.pfa_id, CASE WHEN bool_or(x.status = 'conflict') THEN 'conflict'
                          WHEN bool_or(x.status = 'sync_error') THEN 'error'
                          ELSE 'pending' END
    FROM pfa_modification x
    WHERE x.organization_id = org
      AND x.status IN ('draft', 'pending_sync', 'queued', 'conflict', 'sync_error')
    GROUP BY x.pfa_id
$$;

-- GET /records: the records matching the filters after the cursor, in byte order of pfaId,
-- one more than lim (the caller learns from it that a next page exists), each with the total.
CREATE OR REPLACE FUNCTION pems_records_page(org uuid, q text, category text, state text,
    after text, lim int)
RETURNS TABLE (total bigint, pfa_id text, doc json)
LANGUAGE sql STABLE AS
$$
    WITH st AS MATERIALIZED (
        SELECT * FROM pfa_record_states(org) WHERE state IS NOT NULL
    ), hits AS MATERIALIZED (
        SELECT m.pfa_id COLLATE "C" AS pfa_id FROM pfa_mirror m
        WHERE m.organization_id = org AND NOT m.deleted
          AND (category IS NULL OR m.data ->> 'category' = category)
          AND (q IS NULL OR strpos(lower(m.pfa_id), lower(q)) > 0
               OR strpos(lower(m.data ->> 'category'), lower(q)) > 0
               OR strpos(lower(m.data ->> 'class'), lower(q)) > 0)
          AND (state IS NULL OR coalesce((SELECT st.sync_state FROM st
                                          WHERE st.pfa_id = m.pfa_id), 'in_sync') = state)
    ), page AS (
        SELECT h.pfa_id FROM hits h WHERE after IS NULL OR h.pfa_id > after
        ORDER BY h.pfa_id LIMIT lim + 1
    )
    SELECT (SELECT count(*) FROM hits), p.pfa_id, pems_record_json(m)
    FROM page p JOIN pfa_mirror m ON m.organization_id = org AND m.pfa_id = p.pfa_id
    ORDER BY p.pfa_id
$$;

-- An organization's highest position: the version of all its records, the change feed's head
-- (positions are drawn at commit, so every change below it is committed).
CREATE OR REPLACE FUNCTION pems_record_head(org uuid) RETURNS bigint
LANGUAGE sql STABLE AS
$$
    SELECT coalesce((SELECT max(seq) FROM pfa_record_position WHERE organization_id = org), 0)
$$;

-- GET /changes: the records whose position is after since, in position order, one more than
-- lim; a record PEMS deleted (or that left the mirror) as a tombstone.
CREATE OR REPLACE FUNCTION pems_changes_page(org uuid, since bigint, lim int)
RETURNS TABLE (seq bigint, doc json)
LANGUAGE sql STABLE AS
$$
    SELECT p.seq,
           CASE WHEN m.id IS NULL OR m.deleted
                THEN json_build_object('pfaId', p.pfa_id, 'seq', p.seq, 'deleted', true)
                ELSE pems_record_json(m, p.seq) END
    FROM (SELECT * FROM pfa_record_position
          WHERE organization_id = org AND seq > since ORDER BY seq LIMIT lim + 1) p
    LEFT JOIN pfa_mirror m ON m.organization_id = org AND m.pfa_id = p.pfa_id
    ORDER BY p.seq
$$;

-- A record's history: what happened to it here and at PEMS, newest first (openapi.yaml
-- RecordHistory). NULL when the organization's mirror never held the record.

CREATE OR REPLACE FUNCTION pems_user_ref(uid uuid) RETURNS json
LANGUAGE sql STABLE AS
$$ SELECT json_build_object('id', u.id, 'username', u.username) FROM users u WHERE u.id = uid $$;

CREATE OR REPLACE FUNCTION pems_record_history(org uuid, pfa text, lim int) RETURNS json
LANGUAGE sql STABLE AS
$$
    WITH mirror AS (
        SELECT * FROM pfa_mirror WHERE organization_id = org AND pfa_id = pfa
    ), hist AS (
        SELECT * FROM pfa_mirror_history WHERE organization_id = org AND pfa_id = pfa
    ), mods AS (
        SELECT * FROM pfa_modification WHERE organization_id = org AND pfa_id = pfa
    ), written AS (   -- versions PEMS made from our writes: shown as synced, not as PEMS's
        SELECT (a.after ->> 'version')::bigint AS version
        FROM mods x JOIN audit_log a ON a.entity_type = 'pfa_modification'
         AND a.entity_id = x.id::text AND a.action = 'modification.synced'
        WHERE a.after ? 'version'
    ), versions AS (
        -- each version the mirror took, when it took it, and the fields it changed (the row
        -- it superseded says which); the first version seen changed nothing known
        SELECT h.superseded_by AS version, h.archived_at AS at, to_json(h.changed_fields) AS fields
        FROM hist h
        UNION ALL
        SELECT v.version, v.at, NULL::json FROM (
            SELECT h.version, m.created_at AS at FROM hist h, mirror m
            WHERE h.version = (SELECT min(version) FROM hist)
            UNION ALL
            SELECT m.version, m.created_at FROM mirror m WHERE NOT EXISTS (SELECT 1 FROM hist)
        ) v
    ), events AS (
        SELECT v.at, 0 AS rank, json_build_object('at', pems_iso(v.at), 'kind', 'pems_version',
               'version', v.version, 'fields', v.fields) AS e
        FROM versions v WHERE v.version NOT IN (SELECT version FROM written)
        UNION ALL
        SELECT a.created_at, 1, CASE a.action
            WHEN 'modification.create' THEN json_build_object('at', pems_iso(a.created_at),
                'kind', 'local_edit', 'modificationId', x.id, 'operation', x.operation,
                'fields', coalesce((SELECT json_agg(k ORDER BY k)
                                    FROM jsonb_object_keys(coalesce(a.after -> 'delta', x.delta)) k),
                                   '[]'),
                'by', pems_user_ref(x.modified_by))
            WHEN 'modification.synced' THEN json_build_object('at', pems_iso(a.created_at),
                'kind', 'synced', 'modificationId', x.id,
                'version', (a.after ->> 'version')::bigint)
            WHEN 'modification.sync_error' THEN json_build_object('at', pems_iso(a.created_at),
                'kind', 'failed', 'modificationId', x.id,
                'httpStatus', (SELECT w.last_http_status FROM pfa_write_queue w
                               WHERE w.id::text = a.after ->> 'queueItemId'),
                'error', a.after ->> 'error')
            WHEN 'modification.queue' THEN json_build_object('at', pems_iso(a.created_at),
                'kind', 'queued', 'modificationId', x.id, 'by', pems_user_ref(a.user_id))
            WHEN 'retry' THEN json_build_object('at', pems_iso(a.created_at), 'kind', 'retried',
                'modificationId', x.id, 'by', pems_user_ref(a.user_id))
            WHEN 'cancel' THEN json_build_object('at', pems_iso(a.created_at), 'kind', 'cancelled',
                'modificationId', x.id, 'by', pems_user_ref(a.user_id))
            WHEN 'modification.discard' THEN json_build_object('at', pems_iso(a.created_at),
                'kind', 'discarded', 'modificationId', x.id, 'by', pems_user_ref(a.user_id))
            END
        FROM mods x JOIN audit_log a ON a.entity_type = 'pfa_modification'
         AND a.entity_id = x.id::text
        WHERE a.action IN ('modification.create', 'modification.synced',
                           'modification.sync_error', 'modification.queue', 'retry', 'cancel',
                           'modification.discard')
        UNION ALL
        -- a modification made without its audit row (by SQL) is still a local edit
        SELECT x.created_at, 1, json_build_object('at', pems_iso(x.created_at), 'kind', 'local_edit',
               'modificationId', x.id, 'operation', x.operation,
               'fields', coalesce((SELECT json_agg(k ORDER BY k) FROM jsonb_object_keys(x.delta) k),
                                  '[]'),
               'by', pems_user_ref(x.modified_by))
        FROM mods x
        WHERE NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.entity_type = 'pfa_modification'
                          AND a.entity_id = x.id::text AND a.action = 'modification.create')
        UNION ALL
        SELECT c.created_at, 2, json_build_object('at', pems_iso(c.created_at), 'kind', 'conflict',
               'modificationId', c.modification_id, 'conflictId', c.id,
               'fields', to_json(c.conflict_fields))
        FROM pfa_sync_conflict c WHERE c.organization_id = org AND c.pfa_id = pfa
        UNION ALL
        SELECT c.resolved_at, 3, json_build_object('at', pems_iso(c.resolved_at), 'kind', 'resolved',
               'conflictId', c.id, 'resolution', c.resolution, 'by', pems_user_ref(c.resolved_by))
        FROM pfa_sync_conflict c
        WHERE c.organization_id = org AND c.pfa_id = pfa AND c.status = 'resolved'
    )
    SELECT json_build_object('pfaId', pfa, 'events',
        coalesce((SELECT json_agg(e ORDER BY at DESC, rank DESC)
                  FROM (SELECT * FROM events ORDER BY at DESC, rank DESC LIMIT lim) l), '[]'))
    WHERE EXISTS (SELECT 1 FROM mirror)
$$;

