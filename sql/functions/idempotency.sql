-- Idempotency-Key (README, "Idempotent POSTs"): a successful answer kept per user and key for
-- 24 hours (api_idempotency_keys), written in the transaction of the work it answers;
-- src/api/idempotency.c runs a POST with a key through these two.

-- Inside the transaction that is to do the work: takes the key's lock for the rest of it and
-- says what to do. 'running': another request holds the key now; 'replay': the kept answer
-- (status, body) is the one to send; 'reused': the key was used for another request; 'new':
-- do the work (and keep its answer with pems_idempotency_keep before committing).
CREATE OR REPLACE FUNCTION pems_idempotency_claim(uid uuid, k text, hash text,
    OUT state text, OUT status int, OUT body text)
LANGUAGE plpgsql VOLATILE AS
$$
DECLARE
    kept api_idempotency_keys;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtextextended('pems_idempotency:' || uid::text || ':' || k, 0)) THEN
        state := 'running';
        RETURN;
    END IF;
    -- read after the lock: a request that held it has committed its answer by now
    SELECT * INTO kept FROM api_idempotency_keys i
    WHERE i.user_id = uid AND i.key = k AND i.expires_at > now();
    IF NOT FOUND THEN
        state := 'new';
    ELSIF kept.request_hash <> hash THEN
        state := 'reused';
    ELSE
        state := 'replay';
        status := kept.status;
        body := kept.body;
    END IF;
END
$$;

-- Keeps the answer of a key's first request (an expired one's row is taken over), and prunes
-- a few expired keys, so the table holds about a day of keys. false when a live answer is
-- kept already (the caller does not commit its work then).
CREATE OR REPLACE FUNCTION pems_idempotency_keep(uid uuid, k text, hash text, st int, answer text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE AS
$$
DECLARE
    stored boolean;
BEGIN
    DELETE FROM api_idempotency_keys WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM api_idempotency_keys WHERE expires_at <= now()
        ORDER BY expires_at LIMIT 8 FOR UPDATE SKIP LOCKED));
    INSERT INTO api_idempotency_keys AS i (user_id, key, request_hash, status, body, expires_at)
    VALUES (uid, k, hash, st, answer, now() + interval '24 hours')
    ON CONFLICT (user_id, key) DO UPDATE SET request_hash = EXCLUDED.request_hash,
        status = EXCLUDED.status, body = EXCLUDED.body, created_at = now(),
        expires_at = EXCLUDED.expires_at
    WHERE i.expires_at <= now()
    RETURNING true INTO stored;
    RETURN coalesce(stored, false);
END
$$;
