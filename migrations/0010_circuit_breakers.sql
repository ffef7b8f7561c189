-- The resilience circuit breaker (DESIGN §8): repeated transient agent failures (rate limits,
-- overload, network) across all replicas open it, and agent jobs wait out a cool-down instead of
-- burning their attempts.

CREATE TABLE circuit_breakers (
    name              text PRIMARY KEY,           -- 'agents'
    failures          integer NOT NULL DEFAULT 0, -- transient failures in the current window
    window_started_at timestamptz NOT NULL DEFAULT now(),
    open_until        timestamptz,                -- open while now() < open_until
    opened_count      bigint NOT NULL DEFAULT 0,
    last_reason       text,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE circuit_breakers IS 'Circuit breakers shared by every replica; see GET /queue resilience.';
