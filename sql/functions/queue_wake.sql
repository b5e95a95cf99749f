-- The worker's wake-up: pemsworker LISTENs on pfa_write_queue. Whatever makes a queue item
-- pending and due (POST /write-sync, a conflict resolved to be sent, a retry from the API or
-- pemsctl, a lease released) notifies it, with the organization as payload, when the
-- transaction commits; an item rescheduled for later wakes nobody (the worker's own timer
-- finds it).
CREATE OR REPLACE FUNCTION pfa_write_queue_wake() RETURNS trigger
LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_notify('pfa_write_queue', o.organization_id::text)
    FROM (SELECT DISTINCT n.organization_id FROM due_rows n
          WHERE n.status = 'pending' AND n.scheduled_at <= now()) o;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER pfa_write_queue_wake_ins AFTER INSERT ON pfa_write_queue
    REFERENCING NEW TABLE AS due_rows
    FOR EACH STATEMENT EXECUTE FUNCTION pfa_write_queue_wake();
CREATE OR REPLACE TRIGGER pfa_write_queue_wake_upd AFTER UPDATE ON pfa_write_queue
    REFERENCING NEW TABLE AS due_rows
    FOR EACH STATEMENT EXECUTE FUNCTION pfa_write_queue_wake();
