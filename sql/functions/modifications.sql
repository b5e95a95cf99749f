-- POST /modifications with `replaces`: a planner corrected a change PEMS refused (sync_error)
-- or a draft, and the new modification takes its place. In the transaction that makes the new
-- one: the old one 'discarded' (so it no longer lays its delta over the record), its failed
-- queue item 'cancelled' (so no retry brings it back), with their audit rows. Locks in the one
-- order (locks.sql): the queue items, then the modification. Returns 'replaced', 'not_found'
-- (no such modification in org), 'other_record' (not one of pfa), or the status that keeps it.
CREATE OR REPLACE FUNCTION pems_modification_replace(org uuid, pfa text, old_id uuid,
                                                     new_id uuid, actor_id uuid)
RETURNS text
LANGUAGE plpgsql AS
$$
DECLARE
    items uuid[];
    old_status text;
    old_pfa text;
BEGIN
    SELECT array_agg(l.id) INTO items FROM (
        SELECT q.id FROM pfa_write_queue q
        WHERE q.modification_id = old_id AND q.organization_id = org AND q.status = 'failed'
        ORDER BY q.id FOR UPDATE) l;
    SELECT m.status, m.pfa_id INTO old_status, old_pfa FROM pfa_modification m
    WHERE m.id = old_id AND m.organization_id = org FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'not_found';
    ELSIF old_pfa <> pfa THEN
        RETURN 'other_record';
    ELSIF old_status NOT IN ('draft', 'sync_error') THEN
        RETURN old_status;
    END IF;
    UPDATE pfa_write_queue SET status = 'cancelled', updated_at = now()
    WHERE id = ANY (coalesce(items, '{}'));
    UPDATE pfa_modification SET status = 'discarded', updated_at = now() WHERE id = old_id;
    INSERT INTO audit_log (organization_id, user_id, actor, action, entity_type, entity_id,
                           before, after)
    SELECT org, actor_id, actor_id::text, 'cancel', 'pfa_write_queue', i::text,
           jsonb_build_object('status', 'failed'),
           jsonb_build_object('status', 'cancelled', 'replacedBy', new_id)
    FROM unnest(coalesce(items, '{}')) i
    UNION ALL
    SELECT org, actor_id, actor_id::text, 'modification.discard', 'pfa_modification', old_id::text,
           jsonb_build_object('status', old_status),
           jsonb_build_object('status', 'discarded', 'replacedBy', new_id);
    RETURN 'replaced';
END
$$;
