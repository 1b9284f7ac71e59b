-- The event store: an append-only, hash-chained log plus the current state of accounts and
-- transfers, written together by the single writer in one transaction per group commit.

CREATE TABLE events (
    position        BIGINT      PRIMARY KEY CHECK (position > 0),
    event_id        UUID        NOT NULL UNIQUE,
    stream_id       TEXT        NOT NULL,
    stream_version  INTEGER     NOT NULL CHECK (stream_version > 0),
    event_type      TEXT        NOT NULL,
    schema_version  SMALLINT    NOT NULL,
    -- JSON text exactly as written (the hash covers it); read models build their own indexes.
    payload         JSON        NOT NULL,
    metadata        JSON        NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL,
    -- sha256(previous event's hash || canonical bytes of this event); 32 zero bytes before position 1.
    hash            BYTEA       NOT NULL CHECK (length(hash) = 32),
    UNIQUE (stream_id, stream_version)
);

CREATE FUNCTION refuse_event_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the events table is append-only: % is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER events_refuse_update_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION refuse_event_changes();
CREATE TRIGGER events_refuse_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_event_changes();

CREATE TABLE accounts (
    id               UUID        PRIMARY KEY,
    code             TEXT        NOT NULL UNIQUE,
    currency         TEXT        NOT NULL,
    kind             TEXT        NOT NULL,
    balance_limit    TEXT        NOT NULL,
    status           TEXT        NOT NULL,
    metadata         JSONB       NOT NULL,
    debits_posted    NUMERIC     NOT NULL,
    credits_posted   NUMERIC     NOT NULL,
    debits_pending   NUMERIC     NOT NULL,
    credits_pending  NUMERIC     NOT NULL,
    version          INTEGER     NOT NULL,
    opened_at        TIMESTAMPTZ NOT NULL,
    -- Positions of the account's first and latest events.
    opened_position  BIGINT      NOT NULL,
    position         BIGINT      NOT NULL
) WITH (fillfactor = 50); -- room for HOT updates: a hot account is rewritten by every commit

-- A transfer's details live in the events of its stream; this row indexes them by id.
CREATE TABLE transfers (
    id                UUID    PRIMARY KEY,
    status            TEXT    NOT NULL,
    -- Positions of the transfer's first (creating) and latest events in its own stream.
    created_position  BIGINT  NOT NULL,
    position          BIGINT  NOT NULL,
    reversed_by       UUID
);

CREATE INDEX transfers_pending ON transfers (id) WHERE status = 'pending';
