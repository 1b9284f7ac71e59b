-- Inbound Kafka messages a consumer has finished with: applied, or sent to its dead-letter
-- topic. A redelivered message whose id is here is skipped (deduplication).
CREATE TABLE inbox (
    consumer      TEXT        NOT NULL,
    message_id    TEXT        NOT NULL,
    topic         TEXT        NOT NULL,
    partition     INTEGER     NOT NULL,
    "offset"      BIGINT      NOT NULL,
    outcome       TEXT        NOT NULL CHECK (outcome IN ('applied', 'dead_lettered')),
    attempts      INTEGER     NOT NULL,
    error_code    TEXT,
    processed_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);
