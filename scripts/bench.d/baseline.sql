-- A table shaped like `events` (the same columns, types, constraints and indexes as after every
-- migration), without the writer: the raw Postgres baseline.
DROP TABLE IF EXISTS baseline_events;
DROP SEQUENCE IF EXISTS baseline_position;
CREATE SEQUENCE baseline_position;
CREATE TABLE baseline_events (
    position        BIGINT      PRIMARY KEY CHECK (position > 0),
    event_id        UUID        NOT NULL UNIQUE,
    stream_id       TEXT        COLLATE "C" NOT NULL,
    stream_version  INTEGER     NOT NULL CHECK (stream_version > 0),
    event_type      TEXT        NOT NULL,
    schema_version  SMALLINT    NOT NULL,
    payload         JSON        NOT NULL,
    metadata        JSON        NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL,
    hash            BYTEA       NOT NULL CHECK (length(hash) = 32)
);
