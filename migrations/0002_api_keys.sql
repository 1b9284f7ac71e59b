-- API keys of payment channels. Only a SHA-256 of each key is stored.
CREATE TABLE api_keys (
    id          UUID        PRIMARY KEY,
    channel     TEXT        NOT NULL,
    scopes      TEXT[]      NOT NULL,
    key_hash    BYTEA       NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at  TIMESTAMPTZ
);
