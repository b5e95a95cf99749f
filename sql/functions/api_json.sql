-- JSON shapes of the REST API (src/api/openapi.yaml), built in SQL so a handler answers in one
-- round trip.

-- A timestamp as the API prints it (ISO 8601, ms, Z). Called for every timestamp of every
-- listed row: STABLE (as to_char is), so the planner inlines it instead of calling a SQL
-- function per value (twice as fast).
CREATE OR REPLACE FUNCTION pems_iso(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;

-- The latest queue item of a modification, or null.
CREATE OR REPLACE FUNCTION pems_queue_item_json(mod_id uuid) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT json_build_object(
       'id', q.id, 'status', q.status, 'priority', q.priority, 'attempts', q.attempts,
       'scheduledAt', pems_iso(q.scheduled_at), 'lastError', q.last_error,
       'lastHttpStatus', q.last_http_status, 'completedAt', pems_iso(q.completed_at))
   FROM pfa_write_queue q WHERE q.modification_id = mod_id
   ORDER BY q.created_at DESC, q.updated_at DESC LIMIT 1 $$;

CREATE OR REPLACE FUNCTION pems_user_json(user_id uuid) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT json_build_object('id', u.id, 'username', u.username, 'email', u.email)
   FROM users u WHERE u.id = user_id $$;

-- The modification object every route returns.
CREATE OR REPLACE FUNCTION pems_modification_json(m pfa_modification) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT json_build_object(
       'id', m.id, 'organizationId', m.organization_id, 'pfaId', m.pfa_id,
       'operation', m.operation, 'baseVersion', m.base_version, 'delta', m.delta,
       'status', m.status, 'createdAt', pems_iso(m.created_at),
       'updatedAt', pems_iso(m.updated_at), 'modifiedBy', pems_user_json(m.modified_by),
       'queueItem', pems_queue_item_json(m.id)) $$;
