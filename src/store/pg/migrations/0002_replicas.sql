-- CoderFlow SSO, schema 2: what replicas share beyond the records: each replica's heartbeat
-- (the configuration it runs) and the failed-password counters per username and address.

CREATE TABLE replicas (
    id             text PRIMARY KEY,
    last_seen_unix bigint NOT NULL,
    record         jsonb NOT NULL
);

CREATE TABLE password_failures (
    -- username NUL client address (IPv6 /64 blocks), as the in-memory limiter keys them: bytes,
    -- since a text value cannot hold the NUL.
    key              bytea PRIMARY KEY,
    window_end_unix  bigint NOT NULL,
    failures         integer NOT NULL
);
CREATE INDEX password_failures_by_end ON password_failures (window_end_unix);
