-- POST /write-sync in the modificationIds form locks only the named modifications it may queue
-- (draft, pending_sync, sync_error). A named modification that is queued belongs to the worker,
-- whose result flush locks it after its queue item (sql/014_lock_order.sql); locking it here
-- first, by id, would take the two in the other order. The caller reads the others without a
-- lock to answer 404 or 409.
CREATE OR REPLACE FUNCTION pems_lock_modifications(org uuid, ids uuid[])
RETURNS TABLE (id uuid, status text)
LANGUAGE sql AS
$$ SELECT m.id, m.status FROM pfa_modification m
   WHERE m.organization_id = org
     AND CASE WHEN ids IS NULL THEN m.status = 'pending_sync'
              ELSE m.id = ANY (ids) AND m.status IN ('draft', 'pending_sync', 'sync_error') END
   ORDER BY m.id
   FOR UPDATE $$;
