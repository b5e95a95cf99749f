-- The API's permission rule and the routes the dashboard reads (src/api/openapi.yaml:
-- /organizations, /sync-history, baseData and the current PEMS record in each conflict).

-- Admin implies every other permission. Every SQL site asks this one function; plain SQL, so
-- PostgreSQL inlines it into the statement that calls it.
CREATE OR REPLACE FUNCTION pems_has_permission(granted text[], need text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT granted && ARRAY[need, 'Admin'] $$;

-- The permissions a membership gives, in the documented order (an Admin has all four).
CREATE OR REPLACE FUNCTION pems_permissions_effective(granted text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT coalesce(array_agg(p ORDER BY o), '{}')
   FROM unnest(ARRAY['Read', 'Write', 'Sync', 'Admin']) WITH ORDINALITY AS a(p, o)
   WHERE pems_has_permission(granted, p) AND (p <> 'Admin' OR 'Admin' = ANY (granted)) $$;

-- GET /organizations: the user's memberships, by code.
CREATE OR REPLACE FUNCTION pems_user_organizations(uid uuid) RETURNS json
LANGUAGE sql STABLE AS
$$ SELECT json_build_object('organizations', coalesce(json_agg(json_build_object(
              'id', o.id, 'code', o.code, 'name', o.name,
              'permissions', pems_permissions_effective(uo.permissions)) ORDER BY o.code), '[]'))
   FROM user_organizations uo JOIN organizations o ON o.id = uo.organization_id
   WHERE uo.user_id = uid $$;

-- GET /sync-history reads the audit log, the record of every finished write: a synced
-- modification ('modification.synced', merged when the worker merged it automatically), a
-- failed one ('modification.sync_error') and a conflict ('conflict.created'). Buckets are UTC
-- minutes, hours or days from the one holding t_from up to t_to (exclusive); events count
-- when t_from <= created_at < t_to.
CREATE INDEX IF NOT EXISTS audit_log_sync_history ON audit_log (organization_id, created_at)
    WHERE action IN ('modification.synced', 'modification.sync_error', 'conflict.created');

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

-- A conflict's list entry shows PEMS's record as the mirror holds it now (pemsData,
-- pemsVersion, pfaDetails) and the record the local edit was made on (baseData: the version
-- localVersion, from the history or the mirror itself; null once neither holds it).
-- conflictFields, localData and the pems_data column stay as the conflict found them.
CREATE OR REPLACE FUNCTION pfa_sync_conflict_render() RETURNS trigger
LANGUAGE plpgsql AS
$$
DECLARE
    cur_version integer;
    cur_data jsonb;
    base jsonb;
BEGIN
    SELECT version, data INTO cur_version, cur_data FROM pfa_mirror
    WHERE organization_id = NEW.organization_id AND pfa_id = NEW.pfa_id;
    IF cur_version IS NULL THEN
        cur_version := NEW.pems_version;
        cur_data := NEW.pems_data;
    END IF;
    IF cur_version = NEW.local_version THEN
        base := cur_data;
    ELSE
        SELECT data INTO base FROM pfa_mirror_history
        WHERE organization_id = NEW.organization_id AND pfa_id = NEW.pfa_id
          AND version = NEW.local_version;
    END IF;
    NEW.doc := json_build_object(
        'id', NEW.id, 'pfaId', NEW.pfa_id,
        'pfaDetails', json_build_object('category', cur_data -> 'category',
                                        'class', cur_data -> 'class'),
        'localVersion', NEW.local_version, 'pemsVersion', cur_version,
        'conflictFields', NEW.conflict_fields, 'localData', NEW.local_data,
        'baseData', base, 'pemsData', cur_data, 'status', NEW.status,
        'createdAt', pems_iso(NEW.created_at),
        'modifiedBy', (SELECT json_build_object('id', u.id, 'username', u.username,
                                                'email', u.email)
                       FROM pfa_modification m JOIN users u ON u.id = m.modified_by
                       WHERE m.id = NEW.modification_id))::text;
    RETURN NEW;
END
$$;

-- When PEMS's record moves on (a pull, a write-back), its conflicts are rendered again, which
-- also gives their organization a new conflicts version (009), so no cached page outlives it.
CREATE INDEX IF NOT EXISTS pfa_sync_conflict_org_pfa ON pfa_sync_conflict (organization_id, pfa_id);

CREATE OR REPLACE FUNCTION pfa_mirror_conflicts_rerender() RETURNS trigger
LANGUAGE plpgsql AS
$$
BEGIN
    UPDATE pfa_sync_conflict SET doc = doc
    WHERE organization_id = NEW.organization_id AND pfa_id = NEW.pfa_id;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS pfa_mirror_conflicts_rerender ON pfa_mirror;
CREATE TRIGGER pfa_mirror_conflicts_rerender AFTER UPDATE ON pfa_mirror
    FOR EACH ROW WHEN (OLD.version IS DISTINCT FROM NEW.version OR OLD.data IS DISTINCT FROM NEW.data)
    EXECUTE FUNCTION pfa_mirror_conflicts_rerender();

-- a history row written after its conflict (the base version superseded later) is a new baseData
CREATE OR REPLACE FUNCTION pfa_history_conflicts_rerender() RETURNS trigger
LANGUAGE plpgsql AS
$$
BEGIN
    UPDATE pfa_sync_conflict SET doc = doc
    WHERE organization_id = NEW.organization_id AND pfa_id = NEW.pfa_id
      AND local_version = NEW.version;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS pfa_history_conflicts_rerender ON pfa_mirror_history;
CREATE TRIGGER pfa_history_conflicts_rerender AFTER INSERT ON pfa_mirror_history
    FOR EACH ROW EXECUTE FUNCTION pfa_history_conflicts_rerender();

-- every existing entry in the new form
UPDATE pfa_sync_conflict SET doc = doc;
