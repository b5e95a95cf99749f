-- GET /conflicts pages through conflicts far more often than conflicts change: each row keeps
-- its list entry (src/api/openapi.yaml Conflict) as JSON text, rendered by a trigger whenever the
-- row is written, so a page is a concatenation instead of 50 objects built per request.
-- modifiedBy is the modification's author; users are never edited in place (pemsctl only adds
-- them), so rendering the author once is exact.
ALTER TABLE pfa_sync_conflict ADD COLUMN IF NOT EXISTS doc text;

CREATE OR REPLACE FUNCTION pfa_sync_conflict_render() RETURNS trigger
LANGUAGE plpgsql AS
$$
BEGIN
    NEW.doc := json_build_object(
        'id', NEW.id, 'pfaId', NEW.pfa_id,
        'pfaDetails', json_build_object('category', NEW.pems_data -> 'category',
                                        'class', NEW.pems_data -> 'class'),
        'localVersion', NEW.local_version, 'pemsVersion', NEW.pems_version,
        'conflictFields', NEW.conflict_fields, 'localData', NEW.local_data,
        'pemsData', NEW.pems_data, 'status', NEW.status, 'createdAt', pems_iso(NEW.created_at),
        'modifiedBy', (SELECT json_build_object('id', u.id, 'username', u.username,
                                                'email', u.email)
                       FROM pfa_modification m JOIN users u ON u.id = m.modified_by
                       WHERE m.id = NEW.modification_id))::text;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS pfa_sync_conflict_render ON pfa_sync_conflict;
CREATE TRIGGER pfa_sync_conflict_render BEFORE INSERT OR UPDATE ON pfa_sync_conflict
    FOR EACH ROW EXECUTE FUNCTION pfa_sync_conflict_render();

-- the trigger renders every existing row
UPDATE pfa_sync_conflict SET doc = NULL;
ALTER TABLE pfa_sync_conflict ALTER COLUMN doc SET NOT NULL;

-- pages come newest first whatever the status filter: read them in that order, no sort
CREATE INDEX IF NOT EXISTS pfa_sync_conflict_org_created
    ON pfa_sync_conflict (organization_id, created_at DESC, id DESC);
