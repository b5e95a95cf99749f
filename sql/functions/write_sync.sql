-- POST /write-sync: which modifications it may queue, and how it locks them.

-- The one rule of what can be queued: the organization-wide form (named false) takes the
-- pending_sync modifications; named ones may also be drafts or have failed (sync_error). A
-- queued, synced, conflicting or discarded modification is never queued again by it.
CREATE OR REPLACE FUNCTION pems_modification_queueable(status text, named boolean)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE WHEN named THEN status IN ('draft', 'pending_sync', 'sync_error')
               ELSE status = 'pending_sync' END $$;

-- Why a named modification of this status cannot be queued (the 409's detail), NULL when it can.
CREATE OR REPLACE FUNCTION pems_modification_unqueueable_reason(status text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE WHEN NOT pems_modification_queueable(status, true) THEN
           'is ' || status || '; only draft, pending_sync or sync_error modifications can be queued'
       END $$;

-- The modifications of org that POST /write-sync may queue, locked by ascending id (the one
-- lock order, locks.sql): when ids is NULL every one the organization-wide form takes, else
-- the named ones that may be queued. A named modification that is queued belongs to the
-- worker, whose result flush locks it after its queue item; locking it here first, by id,
-- would take the two in the other order. The caller reads the others without a lock to
-- answer 404 or 409.
CREATE OR REPLACE FUNCTION pems_lock_modifications(org uuid, ids uuid[])
RETURNS TABLE (id uuid, status text)
LANGUAGE sql AS
$$ SELECT m.id, m.status FROM pfa_modification m
   WHERE m.organization_id = org
     AND pems_modification_queueable(m.status, ids IS NOT NULL)
     AND (ids IS NULL OR m.id = ANY (ids))
   ORDER BY m.id
   FOR UPDATE $$;
