-- Reconciliation runs' results, kept beside the log: the statement lines a run read and the
-- items it found (each `RunCompleted` event carries their SHA-256, so they can be recomputed
-- from the provider's lines and the log, and checked). A run's rows are written in one
-- transaction before its completion is recorded; a retried run replaces its own rows.
CREATE TABLE recon_statement_lines (
    run_id  UUID    NOT NULL,
    seq     INTEGER NOT NULL,
    line    JSONB   NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- `status`: `matched`, `open` (waiting for a later run or an operator), `dismissed` or
-- `matched_by_hand` (an operator's resolution), `superseded` (a later run's item replaced it).
-- `body`: the item's lines and entries as matched, and the open items of earlier runs it closed.
CREATE TABLE recon_items (
    id              UUID        PRIMARY KEY,
    run_id          UUID        NOT NULL,
    provider        TEXT        NOT NULL,
    seq             INTEGER     NOT NULL,
    kind            TEXT        NOT NULL,
    rule            TEXT,
    difference      NUMERIC,
    body            JSONB       NOT NULL,
    status          TEXT        NOT NULL,
    closed_by_run   UUID,
    closed_by_item  UUID,
    resolution      JSONB,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (run_id, seq)
);

CREATE INDEX recon_items_open ON recon_items (provider, run_id, seq) WHERE status = 'open';
