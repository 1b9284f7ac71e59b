-- A table shaped like `events`, without the writer: the raw Postgres baseline.
DROP TABLE IF EXISTS baseline_events;
DROP SEQUENCE IF EXISTS baseline_position;
CREATE SEQUENCE baseline_position;
CREATE TABLE baseline_events (
    position        BIGINT      PRIMARY KEY,
    event_id        UUID        NOT NULL UNIQUE,
    stream_id       TEXT        COLLATE "C" NOT NULL,
    stream_version  INTEGER     NOT NULL,
    event_type      TEXT        NOT NULL,
    schema_version  SMALLINT    NOT NULL,
    payload         JSONB       NOT NULL,
    metadata        JSONB       NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL,
    hash            BYTEA       NOT NULL,
    UNIQUE (stream_id, stream_version)
);
