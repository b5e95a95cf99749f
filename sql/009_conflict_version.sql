-- GET /conflicts: each pems-fcgi keeps the pages it rendered, valid while the organization's
-- conflicts are unchanged. Every write to an organization's conflicts, in the writing
-- transaction, gives it a new version drawn from one sequence (never reused, even after a
-- TRUNCATE), so a page read in the same snapshot as a version is exactly that version's page.
CREATE SEQUENCE IF NOT EXISTS pfa_sync_conflict_version_seq;

CREATE TABLE IF NOT EXISTS pfa_sync_conflict_version (
    organization_id uuid PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
    version bigint NOT NULL
);

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

DROP TRIGGER IF EXISTS pfa_sync_conflict_bump ON pfa_sync_conflict;
CREATE TRIGGER pfa_sync_conflict_bump AFTER INSERT OR UPDATE OR DELETE ON pfa_sync_conflict
    FOR EACH ROW EXECUTE FUNCTION pfa_sync_conflict_bump();
DROP TRIGGER IF EXISTS pfa_sync_conflict_bump_truncate ON pfa_sync_conflict;
CREATE TRIGGER pfa_sync_conflict_bump_truncate AFTER TRUNCATE ON pfa_sync_conflict
    FOR EACH STATEMENT EXECUTE FUNCTION pfa_sync_conflict_bump();

INSERT INTO pfa_sync_conflict_version (organization_id, version)
SELECT organization_id, nextval('pfa_sync_conflict_version_seq')
FROM (SELECT DISTINCT organization_id FROM pfa_sync_conflict) o
ON CONFLICT (organization_id) DO NOTHING;
