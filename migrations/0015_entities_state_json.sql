-- An entity's state is written whole by every command on it and only ever read back whole (the
-- loader, `verify`), never searched inside: store its JSON text as sent (`json`: checked, not
-- converted) rather than `jsonb`, whose conversion (parse, sort and deduplicate keys, build the
-- binary form) was the largest single cost of a certificate command in Postgres, and whose
-- sortable values made every automatic ANALYZE of this much-rewritten table sort them.
ALTER TABLE entities ALTER COLUMN state TYPE json USING state::json;

-- What a commit sends for an entity that already has a row (an entity created in the commit is
-- inserted whole): updated by id, without the insert attempt, conflict check and row lock of an
-- upsert.
CREATE TYPE ledger_entity_change AS (
    id        UUID,
    key       TEXT,
    version   INTEGER,
    position  BIGINT,
    state     JSON
);
