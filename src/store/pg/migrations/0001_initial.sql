-- CoderFlow SSO, schema 1: every record of the store. Records are kept as JSON documents (the
-- same serde form as the sled store, so `migrate-store` copies them as they are), beside the
-- columns that queries, unique rules and the last-admin rule need.

CREATE TABLE users (
    username      text PRIMARY KEY,
    -- The lower-cased, trimmed email: unique.
    email_key     text NOT NULL UNIQUE,
    -- An enabled server_admin (the role that must never be left without a holder).
    enabled_admin boolean NOT NULL,
    record        jsonb NOT NULL
);

CREATE TABLE identities (
    issuer   text NOT NULL,
    sub      text NOT NULL,
    username text NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    PRIMARY KEY (issuer, sub)
);

CREATE TABLE api_keys (
    -- SHA-256 of the key; the key itself is never stored.
    hash           bytea PRIMARY KEY,
    id             text NOT NULL,
    username       text NOT NULL,
    -- Written in batches, apart from the record.
    last_used_unix bigint,
    record         jsonb NOT NULL,
    UNIQUE (username, id)
);

CREATE TABLE sessions (
    hash         bytea PRIMARY KEY,
    username     text NOT NULL,
    expires_unix bigint NOT NULL,
    record       jsonb NOT NULL
);
CREATE INDEX sessions_by_username ON sessions (username);

CREATE TABLE pending_logins (
    state_hash   bytea PRIMARY KEY,
    expires_unix bigint NOT NULL,
    record       jsonb NOT NULL
);

CREATE TABLE device_codes (
    hash         bytea PRIMARY KEY,
    -- Unique among stored codes (kept a while after expiry).
    user_code    text NOT NULL UNIQUE,
    expires_unix bigint NOT NULL,
    record       jsonb NOT NULL
);

CREATE TABLE audit (
    id     bigserial PRIMARY KEY,
    at     text NOT NULL,
    kind   text NOT NULL,
    record jsonb NOT NULL
);
CREATE INDEX audit_by_at ON audit (at);
