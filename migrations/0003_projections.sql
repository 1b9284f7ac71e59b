-- Projection bookkeeping: each projection's active version of its tables, its checkpoint (the
-- last position applied, written in the same transaction as the read-model rows), and, when a
-- poison event halted it, where and why.
CREATE TABLE projections (
    name             TEXT        PRIMARY KEY,
    version          INTEGER     NOT NULL,
    checkpoint       BIGINT      NOT NULL DEFAULT 0,
    halted_position  BIGINT,
    halted_error     TEXT,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
