-- Core schema. Idempotent: every object is created only when missing.

CREATE OR REPLACE FUNCTION pems_iso(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;

CREATE TABLE IF NOT EXISTS organizations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    code        text NOT NULL UNIQUE CHECK (length(btrim(code)) > 0),
    name        text NOT NULL CHECK (length(btrim(name)) > 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS users (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    username    text NOT NULL UNIQUE CHECK (length(btrim(username)) > 0),
    email       text NOT NULL CHECK (position('@' in email) > 1),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS user_organizations (
    user_id          uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    organization_id  uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    permissions      text[] NOT NULL DEFAULT '{}'
                     CHECK (permissions <@ ARRAY['Read','Write','Sync','Admin']::text[]),
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, organization_id)
);

-- One PEMS server per organization. Credentials are AES-256-GCM sealed
-- (nonce || ciphertext || tag); they are never stored in the clear.
CREATE TABLE IF NOT EXISTS api_servers (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid NOT NULL UNIQUE REFERENCES organizations(id) ON DELETE CASCADE,
    base_url         text NOT NULL CHECK (base_url ~ '^https?://'),
    auth_type        text NOT NULL DEFAULT 'basic' CHECK (auth_type IN ('basic', 'api_key')),
    username         text,
    credentials_enc  bytea NOT NULL,
    write_enabled    boolean NOT NULL DEFAULT true,
    rate_limit_rps   integer NOT NULL DEFAULT 10 CHECK (rate_limit_rps BETWEEN 1 AND 100000),
    timeout_ms       integer NOT NULL DEFAULT 30000 CHECK (timeout_ms > 0),
    pull_since       text,
    last_pull_at     timestamptz,
    paused_until     timestamptz,
    health_ok        boolean,
    health_error     text,
    health_checked_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS pfa_mirror (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    pfa_id           text NOT NULL CHECK (length(pfa_id) BETWEEN 1 AND 200),
    version          integer NOT NULL CHECK (version >= 0),
    data             jsonb NOT NULL CHECK (jsonb_typeof(data) = 'object'),
    deleted          boolean NOT NULL DEFAULT false,
    pems_updated_at  text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, pfa_id)
);

CREATE TABLE IF NOT EXISTS pfa_mirror_history (
    id               bigserial PRIMARY KEY,
    organization_id  uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    pfa_id           text NOT NULL,
    version          integer NOT NULL CHECK (version >= 0),
    data             jsonb NOT NULL,
    changed_fields   text[] NOT NULL DEFAULT '{}',
    superseded_by    integer NOT NULL,
    archived_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (superseded_by > version),
    UNIQUE (organization_id, pfa_id, version)
);

CREATE TABLE IF NOT EXISTS pfa_modification (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    pfa_id           text NOT NULL,
    operation        text NOT NULL CHECK (operation IN ('update', 'delete')),
    base_version     integer NOT NULL CHECK (base_version >= 0),
    delta            jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(delta) = 'object'),
    status           text NOT NULL DEFAULT 'pending_sync'
                     CHECK (status IN ('draft', 'pending_sync', 'queued', 'synced',
                                       'sync_error', 'conflict', 'discarded')),
    modified_by      uuid NOT NULL REFERENCES users(id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (organization_id, pfa_id) REFERENCES pfa_mirror(organization_id, pfa_id)
);
CREATE INDEX IF NOT EXISTS pfa_modification_org_created
    ON pfa_modification (organization_id, created_at DESC, id);
CREATE INDEX IF NOT EXISTS pfa_modification_org_status
    ON pfa_modification (organization_id, status, created_at DESC);
CREATE INDEX IF NOT EXISTS pfa_modification_org_pfa
    ON pfa_modification (organization_id, pfa_id);

CREATE TABLE IF NOT EXISTS pfa_write_queue (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id   uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    modification_id   uuid NOT NULL REFERENCES pfa_modification(id) ON DELETE CASCADE,
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
    priority          smallint NOT NULL DEFAULT 5 CHECK (priority BETWEEN 0 AND 10),
    attempts          integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    deferrals         integer NOT NULL DEFAULT 0 CHECK (deferrals >= 0),
    scheduled_at      timestamptz NOT NULL DEFAULT now(),
    locked_by         text,
    locked_until      timestamptz,
    last_error        text,
    last_http_status  integer,
    started_at        timestamptz,
    completed_at      timestamptz,
    duration_ms       integer,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (status <> 'processing' OR (locked_by IS NOT NULL AND locked_until IS NOT NULL)),
    CHECK (status <> 'completed' OR completed_at IS NOT NULL)
);
-- a modification is in the queue at most once at a time: concurrent write-syncs collide here
CREATE UNIQUE INDEX IF NOT EXISTS pfa_write_queue_one_live
    ON pfa_write_queue (modification_id) WHERE status IN ('pending', 'processing');
CREATE INDEX IF NOT EXISTS pfa_write_queue_due
    ON pfa_write_queue (priority DESC, scheduled_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS pfa_write_queue_leased
    ON pfa_write_queue (locked_until) WHERE status = 'processing';
CREATE INDEX IF NOT EXISTS pfa_write_queue_org_status
    ON pfa_write_queue (organization_id, status);
CREATE INDEX IF NOT EXISTS pfa_write_queue_modification
    ON pfa_write_queue (modification_id, created_at DESC);

CREATE TABLE IF NOT EXISTS pfa_sync_conflict (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id   uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    modification_id   uuid NOT NULL REFERENCES pfa_modification(id) ON DELETE CASCADE,
    pfa_id            text NOT NULL,
    local_version     integer NOT NULL,
    pems_version      integer NOT NULL,
    conflict_fields   text[] NOT NULL CHECK (cardinality(conflict_fields) > 0),
    local_data        jsonb NOT NULL,
    pems_data         jsonb NOT NULL,
    status            text NOT NULL DEFAULT 'unresolved' CHECK (status IN ('unresolved', 'resolved')),
    resolution        text CHECK (resolution IN ('use_local', 'use_pems', 'merge')),
    merged_data       jsonb,
    resolved_by       uuid REFERENCES users(id),
    resolved_at       timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'resolved') = (resolution IS NOT NULL AND resolved_at IS NOT NULL)),
    CHECK (resolution IS DISTINCT FROM 'merge' OR merged_data IS NOT NULL)
);
CREATE UNIQUE INDEX IF NOT EXISTS pfa_sync_conflict_one_open
    ON pfa_sync_conflict (modification_id) WHERE status = 'unresolved';
CREATE INDEX IF NOT EXISTS pfa_sync_conflict_org_status
    ON pfa_sync_conflict (organization_id, status, created_at DESC, id);

CREATE TABLE IF NOT EXISTS sync_batches (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    worker_id        text NOT NULL,
    started_at       timestamptz NOT NULL,
    completed_at     timestamptz,
    total_processed  integer NOT NULL DEFAULT 0,
    successful       integer NOT NULL DEFAULT 0,
    failed           integer NOT NULL DEFAULT 0,
    conflicts        integer NOT NULL DEFAULT 0,
    skipped          integer NOT NULL DEFAULT 0,
    merged           integer NOT NULL DEFAULT 0,
    pulled           integer NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sync_batches_started ON sync_batches (started_at DESC);

CREATE TABLE IF NOT EXISTS worker_heartbeats (
    worker_id     text PRIMARY KEY,
    hostname      text NOT NULL,
    pid           integer NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    last_run_at   timestamptz,
    next_sync_at  timestamptz,
    state         text NOT NULL DEFAULT 'idle'
);

CREATE TABLE IF NOT EXISTS audit_log (
    id               bigserial PRIMARY KEY,
    organization_id  uuid REFERENCES organizations(id) ON DELETE SET NULL,
    user_id          uuid REFERENCES users(id) ON DELETE SET NULL,
    actor            text NOT NULL,
    action           text NOT NULL,
    entity_type      text NOT NULL,
    entity_id        text NOT NULL,
    before           jsonb,
    after            jsonb,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS audit_log_entity ON audit_log (entity_type, entity_id, created_at);

CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$;
DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
