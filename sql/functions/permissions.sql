-- The API's permission rule and what GET /organizations shows of it.

-- Admin implies every other permission. Every SQL site asks this one function; plain SQL, so
-- PostgreSQL inlines it into the statement that calls it.
CREATE OR REPLACE FUNCTION pems_has_permission(granted text[], need text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT granted && ARRAY[need, 'Admin'] $$;

-- The permissions a membership gives, in the documented order (an Admin has all four).
CREATE OR REPLACE FUNCTION pems_permissions_effective(granted text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT coalesce(array_agg(p ORDER BY o), '{}')
   FROM unnest(ARRAY['Read', 'Write', 'Sync', 'Admin']) WITH ORDINALITY AS a(p, o)
   WHERE pems_has_permission(granted, p) AND (p <> 'Admin' OR 'Admin' = ANY (granted)) $$;

-- GET /organizations: who the user is (a page names the signed-in person) and the user's
-- memberships, by code.
CREATE OR REPLACE FUNCTION pems_user_organizations(uid uuid) RETURNS json
LANGUAGE sql STABLE AS
$$ SELECT json_build_object(
       'user', (SELECT json_build_object('id', u.id, 'username', u.username, 'email', u.email)
                FROM users u WHERE u.id = uid),
       'organizations', coalesce(json_agg(json_build_object(
              'id', o.id, 'code', o.code, 'name', o.name,
              'permissions', pems_permissions_effective(uo.permissions)) ORDER BY o.code), '[]'))
   FROM user_organizations uo JOIN organizations o ON o.id = uo.organization_id
   WHERE uo.user_id = uid $$;
