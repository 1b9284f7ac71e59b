-- Outbound webhooks. An endpoint is a receiver URL, the event types it asks for, and its signing
-- secret sealed with the engine's secrets key (never stored in clear). The follower `webhooks`
-- (checkpoint in `projections`) turns each event of the log after an endpoint's `after_position`
-- that it asks for into one message, in the same transaction as its checkpoint; the delivery
-- engine sends due messages and records each attempt.
CREATE TABLE webhook_endpoints (
    id             UUID        PRIMARY KEY,
    url            TEXT        NOT NULL,
    event_types    TEXT[]      NOT NULL,
    description    TEXT,
    -- secrets::Sealed as JSON: {"key_id","nonce","ciphertext"}.
    secret         JSONB       NOT NULL,
    -- The secret before the last rotation, kept a day so receivers can switch over.
    previous_secret JSONB,
    previous_until TIMESTAMPTZ,
    -- Messages are made from events after this position (the log's end when it was created).
    after_position BIGINT      NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at     TIMESTAMPTZ
);

-- One message to one endpoint. Its id is the `webhook-id` of every attempt; `body` is the JSON
-- sent, byte for byte the same on every attempt (the signature covers it).
CREATE TABLE webhook_messages (
    id           UUID        PRIMARY KEY,
    endpoint_id  UUID        NOT NULL REFERENCES webhook_endpoints (id),
    position     BIGINT      NOT NULL,
    event_type   TEXT        NOT NULL,
    body         TEXT        NOT NULL,
    status       TEXT        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts     INTEGER     NOT NULL DEFAULT 0,
    -- Retries still allowed after the next failure (the schedule's length when enqueued; 0 after
    -- a manual retry: one attempt).
    retries_left INTEGER     NOT NULL,
    next_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at  TIMESTAMPTZ,
    UNIQUE (endpoint_id, position)
);
CREATE INDEX webhook_messages_due ON webhook_messages (next_at) WHERE status = 'pending';
CREATE INDEX webhook_messages_failed ON webhook_messages (endpoint_id, created_at) WHERE status = 'failed';

-- Every attempt: what the receiver answered, or why there was no answer.
CREATE TABLE webhook_attempts (
    message_id  UUID        NOT NULL REFERENCES webhook_messages (id),
    attempt     INTEGER     NOT NULL CHECK (attempt > 0),
    endpoint_id UUID        NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    status_code INTEGER,
    latency_ms  INTEGER     NOT NULL,
    error       TEXT,
    PRIMARY KEY (message_id, attempt)
);
CREATE INDEX webhook_attempts_by_endpoint ON webhook_attempts (endpoint_id, at DESC, message_id, attempt);
