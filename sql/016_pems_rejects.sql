-- What a PEMS server sent and the worker did not take (README, Security): a record whose data
-- does not have the PFA field types, whose version or updatedAt is malformed, whose updatedAt
-- lies beyond the pull's start.
-- One row per record (the latest reason); /health is `degraded` while any row exists. A row
-- goes away when a valid version of that record is stored in the mirror (a later pull, a
-- write-back), with its organization, or by hand (DELETE FROM pems_rejected_records).
CREATE TABLE IF NOT EXISTS pems_rejected_records (
    organization_id  uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    pfa_id           text NOT NULL,
    reason           text NOT NULL,
    detail           text NOT NULL DEFAULT '',
    times            bigint NOT NULL DEFAULT 1,
    first_at         timestamptz NOT NULL DEFAULT now(),
    last_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, pfa_id)
);

-- rejects: [{pfaId, reason, detail}]
CREATE OR REPLACE FUNCTION pems_note_rejects(org uuid, rejects jsonb) RETURNS integer
LANGUAGE sql AS
$$
    WITH r AS (
        SELECT DISTINCT ON (coalesce(x."pfaId", '')) coalesce(x."pfaId", '') AS pfa_id,
               left(x.reason, 40) AS reason, left(coalesce(x.detail, ''), 300) AS detail
        FROM jsonb_to_recordset(rejects) AS x("pfaId" text, reason text, detail text)
        WHERE x.reason IS NOT NULL
    ), up AS (
        INSERT INTO pems_rejected_records AS p (organization_id, pfa_id, reason, detail)
        SELECT org, r.pfa_id, r.reason, r.detail FROM r
        ON CONFLICT (organization_id, pfa_id) DO UPDATE
           SET reason = EXCLUDED.reason, detail = EXCLUDED.detail, times = p.times + 1,
               last_at = now()
        RETURNING 1)
    SELECT count(*)::integer FROM up
$$;

-- a valid version of a record reached the mirror: it is no longer a reject
CREATE OR REPLACE FUNCTION pems_rejects_clear() RETURNS trigger
LANGUAGE plpgsql AS
$$
BEGIN
    IF EXISTS (SELECT 1 FROM pems_rejected_records) THEN
        DELETE FROM pems_rejected_records p USING stored s
        WHERE p.organization_id = s.organization_id AND p.pfa_id = s.pfa_id;
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS pems_rejects_clear_ins ON pfa_mirror;
CREATE TRIGGER pems_rejects_clear_ins AFTER INSERT ON pfa_mirror
    REFERENCING NEW TABLE AS stored FOR EACH STATEMENT EXECUTE FUNCTION pems_rejects_clear();
DROP TRIGGER IF EXISTS pems_rejects_clear_upd ON pfa_mirror;
CREATE TRIGGER pems_rejects_clear_upd AFTER UPDATE ON pfa_mirror
    REFERENCING NEW TABLE AS stored FOR EACH STATEMENT EXECUTE FUNCTION pems_rejects_clear();
