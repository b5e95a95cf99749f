-- The tables, their indexes, types and sequences: the schema as it stands. The functions,
-- triggers and views on them are in functions/ (sql/README.md).

CREATE TABLE organizations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    code        text NOT NULL UNIQUE CHECK (length(btrim(code)) > 0),
    name        text NOT NULL CHECK (length(btrim(name)) > 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- people who call the API (pemsctl adds them, never edits them)
CREATE TABLE users (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    username    text NOT NULL UNIQUE CHECK (length(btrim(username)) > 0),
    email       text NOT NULL CHECK (position('@' in email) > 1),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE user_organizations (
    user_id          uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    organization_id  uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    permissions      text[] NOT NULL DEFAULT '{}'
                     CHECK (permissions <@ ARRAY['Read','Write','Sync','Admin']::text[]),
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, organization_id)
);

-- One PEMS server per organization. Credentials are AES-256-GCM sealed
-- (nonce || ciphertext || tag); they are never stored in the clear.
CREATE TABLE api_servers (
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
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- One worker drains a PEMS server at a time (session advisory lock on the server id). The
    -- holder writes the start times (wall-clock ns) of its requests of the last second here
    -- when it lets go, and the next holder seeds its sliding window with them.
    -- rate_window_clean is false while a worker holds the server: a holder that died without
    -- writing its window makes the next one wait a full second before its first request.
    rate_window      bigint[] NOT NULL DEFAULT '{}',
    rate_window_clean boolean NOT NULL DEFAULT true,
    rate_window_at   timestamptz,
    -- the cap on requests in flight to this server; NULL: api_server_in_flight_cap's default
    max_in_flight    integer CHECK (max_in_flight BETWEEN 1 AND 10000)
);

-- PEMS's records as last pulled or written. PEMS versions are 64-bit integers end to end
-- (README, Security): every column that holds one is a bigint.
CREATE TABLE pfa_mirror (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    pfa_id           text NOT NULL CHECK (length(pfa_id) BETWEEN 1 AND 200),
    version          bigint NOT NULL CHECK (version >= 0),
    data             jsonb NOT NULL CHECK (jsonb_typeof(data) = 'object'),
    deleted          boolean NOT NULL DEFAULT false,
    pems_updated_at  text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, pfa_id)
);

-- superseded mirror versions and the fields each change touched (conflict detection)
CREATE TABLE pfa_mirror_history (
    id               bigserial PRIMARY KEY,
    organization_id  uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    pfa_id           text NOT NULL,
    version          bigint NOT NULL CHECK (version >= 0),
    data             jsonb NOT NULL,
    changed_fields   text[] NOT NULL DEFAULT '{}',
    superseded_by    bigint NOT NULL,
    archived_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (superseded_by > version),
    UNIQUE (organization_id, pfa_id, version)
);

-- local changes (a delta on a base_version) and their status
CREATE TABLE pfa_modification (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    pfa_id           text NOT NULL,
    operation        text NOT NULL CHECK (operation IN ('update', 'delete')),
    base_version     bigint NOT NULL CHECK (base_version >= 0),
    delta            jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(delta) = 'object'),
    status           text NOT NULL DEFAULT 'pending_sync'
                     CHECK (status IN ('draft', 'pending_sync', 'queued', 'synced',
                                       'sync_error', 'conflict', 'discarded')),
    modified_by      uuid NOT NULL REFERENCES users(id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (organization_id, pfa_id) REFERENCES pfa_mirror(organization_id, pfa_id)
);
-- GET /modifications, newest first
CREATE INDEX pfa_modification_org_created
    ON pfa_modification (organization_id, created_at DESC, id);
CREATE INDEX pfa_modification_org_status
    ON pfa_modification (organization_id, status, created_at DESC);
CREATE INDEX pfa_modification_org_pfa
    ON pfa_modification (organization_id, pfa_id);

-- One item per write to PEMS. It belongs to its modification (ON DELETE CASCADE), which
-- belongs to the organization: organization_id has no reference of its own (a second lookup
-- on every insert; a 20,000-item write-sync spent 160 ms on it).
CREATE TABLE pfa_write_queue (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id   uuid NOT NULL,
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
    -- Incremented at every claim; a completion or reschedule matches locked_by AND the
    -- claim_seq it claimed, so a worker whose lease expired can never record a result over a
    -- newer claim.
    claim_seq         bigint NOT NULL DEFAULT 0,
    CHECK (status <> 'processing' OR (locked_by IS NOT NULL AND locked_until IS NOT NULL)),
    CHECK (status <> 'completed' OR completed_at IS NOT NULL)
);
-- a modification is in the queue at most once at a time: concurrent write-syncs collide here
CREATE UNIQUE INDEX pfa_write_queue_one_live
    ON pfa_write_queue (modification_id) WHERE status IN ('pending', 'processing');
CREATE INDEX pfa_write_queue_leased
    ON pfa_write_queue (locked_until) WHERE status = 'processing';
CREATE INDEX pfa_write_queue_org_status
    ON pfa_write_queue (organization_id, status);
CREATE INDEX pfa_write_queue_modification
    ON pfa_write_queue (modification_id, created_at DESC);
-- The claim reads an organization's due items in (priority DESC, scheduled_at, id) order and
-- stops at the batch size: an index in exactly that order, and one for expired leases. (A
-- queue-wide due index only misled it: ordered by priority across every organization, it
-- tempted the planner into walking all organizations' due items and filtering.)
CREATE INDEX pfa_write_queue_org_claim
    ON pfa_write_queue (organization_id, priority DESC, scheduled_at, id) WHERE status = 'pending';
CREATE INDEX pfa_write_queue_org_leased
    ON pfa_write_queue (organization_id, locked_until) WHERE status = 'processing';

-- Conflicts to resolve. doc: the row's list entry (src/api/openapi.yaml Conflict) as JSON
-- text, rendered by a trigger (functions/conflicts.sql), so a page of GET /conflicts is a
-- concatenation instead of 50 objects built per request.
CREATE TABLE pfa_sync_conflict (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id   uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    modification_id   uuid NOT NULL REFERENCES pfa_modification(id) ON DELETE CASCADE,
    pfa_id            text NOT NULL,
    local_version     bigint NOT NULL,
    pems_version      bigint NOT NULL,
    conflict_fields   text[] NOT NULL CHECK (cardinality(conflict_fields) > 0),
    local_data        jsonb NOT NULL,
    pems_data         jsonb NOT NULL,
    status            text NOT NULL DEFAULT 'unresolved' CHECK (status IN ('unresolved', 'resolved')),
    resolution        text CHECK (resolution IN ('use_local', 'use_pems', 'merge')),
    merged_data       jsonb,
    resolved_by       uuid REFERENCES users(id),
    resolved_at       timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    doc               text NOT NULL,
    CHECK ((status = 'resolved') = (resolution IS NOT NULL AND resolved_at IS NOT NULL)),
    CHECK (resolution IS DISTINCT FROM 'merge' OR merged_data IS NOT NULL)
);
CREATE UNIQUE INDEX pfa_sync_conflict_one_open
    ON pfa_sync_conflict (modification_id) WHERE status = 'unresolved';
CREATE INDEX pfa_sync_conflict_org_status
    ON pfa_sync_conflict (organization_id, status, created_at DESC, id);
-- pages come newest first whatever the status filter: read them in that order, no sort
CREATE INDEX pfa_sync_conflict_org_created
    ON pfa_sync_conflict (organization_id, created_at DESC, id DESC);
-- the conflicts of a record (rendered again when its mirror row moves on)
CREATE INDEX pfa_sync_conflict_org_pfa ON pfa_sync_conflict (organization_id, pfa_id);

-- GET /conflicts: each pems-fcgi keeps the pages it rendered, valid while the organization's
-- conflicts are unchanged. Every write to an organization's conflicts, in the writing
-- transaction, gives it a new version drawn from one sequence (never reused, even after a
-- TRUNCATE), so a page read in the same snapshot as a version is exactly that version's page.
CREATE SEQUENCE pfa_sync_conflict_version_seq;
CREATE TABLE pfa_sync_conflict_version (
    organization_id uuid PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
    version bigint NOT NULL
);

-- one row per worker batch
CREATE TABLE sync_batches (
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
CREATE INDEX sync_batches_started ON sync_batches (started_at DESC);

-- each live worker's last sign of life and next run
CREATE TABLE worker_heartbeats (
    worker_id     text PRIMARY KEY,
    hostname      text NOT NULL,
    pid           integer NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    last_run_at   timestamptz,
    next_sync_at  timestamptz,
    state         text NOT NULL DEFAULT 'idle'
);

-- Append-only history of every change (functions/audit.sql). It outlives what it names: no
-- references to organizations or users, so the rows keep the ids they were written with and
-- an organization or user with history can still be deleted.
CREATE TABLE audit_log (
    id               bigserial PRIMARY KEY,
    organization_id  uuid,
    user_id          uuid,
    actor            text NOT NULL,
    action           text NOT NULL,
    entity_type      text NOT NULL,
    entity_id        text NOT NULL,
    before           jsonb,
    after            jsonb,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_entity ON audit_log (entity_type, entity_id, created_at);
-- GET /sync-history (functions/sync_history.sql)
CREATE INDEX audit_log_sync_history ON audit_log (organization_id, created_at)
    WHERE action IN ('modification.synced', 'modification.sync_error', 'conflict.created');

-- Per-organization queue counters, kept by statement triggers on pfa_write_queue
-- (functions/queue_stats.sql), so GET /sync-status reads one row instead of aggregating an
-- organization's whole queue history. status_version: each pems-fcgi keeps the /sync-status
-- answer it rendered, valid while this version (and worker_heartbeat_version's) is the one
-- it was rendered at and until the time the answer itself would change (functions/
-- sync_status.sql). Every write to the counters, to a pending item, or to the organization's
-- servers' health draws a new one from the sequence, in the writing transaction.
CREATE SEQUENCE pfa_status_version_seq;
CREATE TABLE pfa_queue_stats (
    organization_id        uuid PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
    pending                bigint NOT NULL DEFAULT 0,
    processing             bigint NOT NULL DEFAULT 0,
    completed              bigint NOT NULL DEFAULT 0,
    failed                 bigint NOT NULL DEFAULT 0,
    cancelled              bigint NOT NULL DEFAULT 0,
    -- avg(duration_ms) of completed items = completed_duration_ms / completed_timed
    completed_duration_ms  bigint NOT NULL DEFAULT 0,
    completed_timed        bigint NOT NULL DEFAULT 0,
    last_completed_at      timestamptz,
    status_version         bigint NOT NULL DEFAULT nextval('pfa_status_version_seq')
);
-- one row: a new version (from pfa_status_version_seq) with every write to worker_heartbeats,
-- whose rows every organization's /sync-status reads (health, nextSyncAt)
CREATE TABLE worker_heartbeat_version (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version   bigint NOT NULL
);
-- one changed queue row as the counters see it: +1 for a row as it is now, -1 as it was
CREATE TYPE pfa_queue_delta AS (organization_id uuid, status text, duration_ms integer,
                                completed_at timestamptz, sign integer);

-- What a PEMS server sent and the worker did not take (README, Security): a record whose data
-- does not have the PFA field types, whose version or updatedAt is malformed, whose updatedAt
-- lies beyond the pull's start. One row per record (the latest reason); /health is `degraded`
-- while any row exists. A row goes away when a valid version of that record is stored in the
-- mirror (functions/rejects.sql), with its organization, or by hand (DELETE).
CREATE TABLE pems_rejected_records (
    organization_id  uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    pfa_id           text NOT NULL,
    reason           text NOT NULL,
    detail           text NOT NULL DEFAULT '',
    times            bigint NOT NULL DEFAULT 1,
    first_at         timestamptz NOT NULL DEFAULT now(),
    last_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, pfa_id)
);

-- Each record's position in the change feed (functions/records.sql): every change to its row in
-- pfa_mirror or to its modifications gives it a new one, drawn as the changing transaction
-- commits. The positions of an organization's records, highest first, are GET /changes;
-- the highest is the version of all its records (GET /records' entity tag and page cache).
CREATE SEQUENCE pfa_record_position_seq;
CREATE TABLE pfa_record_position (
    organization_id  uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    pfa_id           text NOT NULL,
    seq              bigint NOT NULL,
    PRIMARY KEY (organization_id, pfa_id)
);
CREATE UNIQUE INDEX pfa_record_position_org_seq ON pfa_record_position (organization_id, seq);
-- The records a transaction touched, until it commits (the commit trigger takes them): rows
-- live only inside the transaction that wrote them, so they need no WAL and a crash loses
-- nothing.
CREATE UNLOGGED TABLE pfa_record_touched (
    xid              xid8 NOT NULL,
    organization_id  uuid NOT NULL,
    pfa_id           text NOT NULL
);
CREATE INDEX pfa_record_touched_xid ON pfa_record_touched (xid);
-- one row per writing transaction: its insert queues the one commit trigger
CREATE UNLOGGED TABLE pfa_record_touched_tx (
    xid  xid8 PRIMARY KEY
);
-- a record's open modifications (GET /records: localData, syncState)
CREATE INDEX pfa_modification_open ON pfa_modification (organization_id, pfa_id, created_at, id)
    WHERE status IN ('draft', 'pending_sync', 'queued', 'conflict', 'sync_error');
-- GET /records pages in byte order of pfaId, whatever the database's collation
CREATE INDEX pfa_mirror_org_pfa_bytes ON pfa_mirror (organization_id, pfa_id COLLATE "C")
    WHERE NOT deleted;

-- The answers kept for Idempotency-Key (README, "Idempotent POSTs"; functions/idempotency.sql):
-- a successful answer per user and key, for 24 hours, written in the transaction of its work.
CREATE TABLE api_idempotency_keys (
    user_id       uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash  text NOT NULL,
    status        smallint NOT NULL CHECK (status BETWEEN 200 AND 299),
    body          text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX api_idempotency_keys_expiry ON api_idempotency_keys (expires_at);
