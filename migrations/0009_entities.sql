-- The current state of the entities of every domain other than the ledger's own accounts and
-- transfers (gift certificates, payouts, ...): one generic keyed row per entity, written by the
-- commit statement together with the events that changed it, read back at start-up (no replay),
-- and compared with the replayed log by `ledger verify`.
CREATE TABLE entities (
    id              UUID PRIMARY KEY,
    kind            TEXT NOT NULL,
    key             TEXT NOT NULL,
    version         INTEGER NOT NULL,
    first_position  BIGINT NOT NULL,
    position        BIGINT NOT NULL,
    state           JSONB NOT NULL
);

-- A domain's natural key (a certificate's code) names one entity of its kind.
CREATE UNIQUE INDEX entities_kind_key ON entities (kind, key);
