-- Each conflict's list entry (pfa_sync_conflict.doc, src/api/openapi.yaml Conflict), rendered
-- whenever the row is written or PEMS's record moves on, and the per-organization conflicts
-- version that tells pems-fcgi a cached page is still exact.

-- The entry shows PEMS's record as the mirror holds it now (pemsData, pemsVersion,
-- pfaDetails) and the record the local edit was made on (baseData: the version localVersion,
-- from the history or the mirror itself; null once neither holds it). conflictFields,
-- localData and the pems_data column stay as the conflict found them. modifiedBy is the
-- modification's author; users are never edited in place, so rendering the author once is
-- exact.
CREATE OR REPLACE FUNCTION pfa_sync_conflict_render() RETURNS trigger
LANGUAGE plpgsql AS
$$
DECLARE
    cur_version bigint;
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

CREATE OR REPLACE TRIGGER pfa_sync_conflict_render BEFORE INSERT OR UPDATE ON pfa_sync_conflict
    FOR EACH ROW EXECUTE FUNCTION pfa_sync_conflict_render();

-- When PEMS's record moves on (a pull, a write-back), its conflicts are rendered again, which
-- also gives their organization a new conflicts version, so no cached page outlives it.
CREATE OR REPLACE FUNCTION pfa_mirror_conflicts_rerender() RETURNS trigger
LANGUAGE plpgsql AS
$$
BEGIN
    UPDATE pfa_sync_conflict SET doc = doc
    WHERE organization_id = NEW.organization_id AND pfa_id = NEW.pfa_id;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER pfa_mirror_conflicts_rerender AFTER UPDATE ON pfa_mirror
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

CREATE OR REPLACE TRIGGER pfa_history_conflicts_rerender AFTER INSERT ON pfa_mirror_history
    FOR EACH ROW EXECUTE FUNCTION pfa_history_conflicts_rerender();

-- Every write to an organization's conflicts gives it a new version (pfa_sync_conflict_version).
CREATE OR REPLACE FUNCTION pfa_sync_conflict_bump() RETURNS trigger
LANGUAGE plpgsql AS
$$
BEGIN
    IF TG_LEVEL = 'STATEMENT' THEN   -- TRUNCATE fires no row triggers
        UPDATE pfa_sync_conflict_version SET version = nextval('pfa_sync_conflict_version_seq');
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        -- not for an organization being deleted (its conflicts go with it)
        INSERT INTO pfa_sync_conflict_version AS v (organization_id, version)
        SELECT OLD.organization_id, nextval('pfa_sync_conflict_version_seq')
        WHERE EXISTS (SELECT 1 FROM organizations WHERE id = OLD.organization_id)
        ON CONFLICT (organization_id) DO UPDATE SET version = EXCLUDED.version;
    END IF;
    IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.organization_id <> OLD.organization_id) THEN
        INSERT INTO pfa_sync_conflict_version AS v (organization_id, version)
        VALUES (NEW.organization_id, nextval('pfa_sync_conflict_version_seq'))
        ON CONFLICT (organization_id) DO UPDATE SET version = EXCLUDED.version;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER pfa_sync_conflict_bump AFTER INSERT OR UPDATE OR DELETE ON pfa_sync_conflict
    FOR EACH ROW EXECUTE FUNCTION pfa_sync_conflict_bump();
CREATE OR REPLACE TRIGGER pfa_sync_conflict_bump_truncate AFTER TRUNCATE ON pfa_sync_conflict
    FOR EACH STATEMENT EXECUTE FUNCTION pfa_sync_conflict_bump();
