-- pems_iso is called for every timestamp of every listed row: declared STABLE (as to_char is),
-- the planner inlines it instead of calling a SQL function per value (twice as fast).
CREATE OR REPLACE FUNCTION pems_iso(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;
