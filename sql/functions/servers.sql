-- pemsworker keeps many requests in flight to one PEMS server (README, "The worker"). Each
-- server caps them: max_in_flight when set (pemsctl server add --max-in-flight N), else a
-- default derived from the rate: twice rate_limit_rps, at least 2 and at most 64. At the
-- rate limit a server answering in L seconds needs rps * L requests in flight, so twice the
-- rate covers latencies up to two seconds, while a hung server holds at most that many of
-- the worker's PEMS_WORKER_MAX_IN_FLIGHT.
CREATE OR REPLACE FUNCTION api_server_in_flight_cap(max_in_flight integer, rate_limit_rps integer)
RETURNS integer LANGUAGE sql IMMUTABLE AS
$$ SELECT coalesce(max_in_flight, least(greatest(2 * rate_limit_rps, 2), 64)) $$;
