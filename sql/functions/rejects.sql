-- The records a PEMS server sent that the worker did not take (pems_rejected_records).

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

CREATE OR REPLACE TRIGGER pems_rejects_clear_ins AFTER INSERT ON pfa_mirror
    REFERENCING NEW TABLE AS stored FOR EACH STATEMENT EXECUTE FUNCTION pems_rejects_clear();

CREATE OR REPLACE TRIGGER pems_rejects_clear_upd AFTER UPDATE ON pfa_mirror
    REFERENCING NEW TABLE AS stored FOR EACH STATEMENT EXECUTE FUNCTION pems_rejects_clear();
