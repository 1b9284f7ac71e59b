-- The writer sends each commit's rows as arrays of composite values (one array per table, one
-- UNNEST each) instead of one array per column: the server unpacks five arrays per commit
-- instead of forty-five. New events, accounts and transfers travel as rows of their own tables;
-- changes to existing accounts and transfers as these two types.
CREATE TYPE ledger_account_change AS (
    id               UUID,
    status           TEXT,
    debits_posted    NUMERIC,
    credits_posted   NUMERIC,
    debits_pending   NUMERIC,
    credits_pending  NUMERIC,
    version          INTEGER,
    position         BIGINT
);

CREATE TYPE ledger_transfer_change AS (
    id           UUID,
    status       TEXT,
    position     BIGINT,
    reversed_by  UUID
);
