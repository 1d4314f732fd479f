-- CoderFlow SSO, schema 3: back-channel logout. Each logout token's `jti` is used once, on
-- every replica; a session is found by the provider's session id (`sid`) it was made with.

CREATE TABLE logout_jtis (
    key          text PRIMARY KEY,
    expires_unix bigint NOT NULL
);
CREATE INDEX logout_jtis_by_expiry ON logout_jtis (expires_unix);

CREATE INDEX sessions_by_sso_sid ON sessions ((record->'sso'->>'issuer'), (record->'sso'->>'sid'));
