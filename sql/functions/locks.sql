-- One lock order for every path that locks write queue items or modifications, so two
-- transactions over the same rows wait for each other instead of deadlocking:
--
--   1. pfa_write_queue rows, by ascending id
--   2. pfa_modification rows, by ascending id
--   3. pfa_sync_conflict rows
--   (pfa_queue_stats and pfa_sync_conflict_version rows come last: their triggers run at the
--   end of each statement)
--
-- A path that learns which rows it needs from a later kind (a conflict names its
-- modification, a modification its live queue item) reads them without a lock first, then
-- locks in this order. The paths: POST /write-sync (both forms: pems_lock_modifications,
-- write_sync.sql), POST /queue/:id/retry and /cancel and pemsctl retry/cancel (the item, then
-- its modification: src/store/queue_actions.c), POST /conflicts/:id/resolve
-- (pems_lock_live_items, then the conflict and its modification), and the worker's result
-- flush (its items, then their modifications). A deadlock or serialization failure left over is run again by the caller
-- a bounded number of times (db_retry_due, src/core/db.c).

-- The live (pending or processing) queue items of a modification, locked by ascending id.
CREATE OR REPLACE FUNCTION pems_lock_live_items(modification uuid) RETURNS SETOF uuid
LANGUAGE sql AS
$$ SELECT q.id FROM pfa_write_queue q
   WHERE q.modification_id = modification AND q.status IN ('pending', 'processing')
   ORDER BY q.id
   FOR UPDATE $$;
