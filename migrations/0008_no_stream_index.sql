-- Appending an event no longer maintains a unique index on (stream_id, stream_version): with
-- random stream ids ("transfer-<uuid>") it was the most expensive part of every commit. What it
-- guarded is guarded elsewhere: a stream starts at most once because its entity's row (the
-- primary keys of `accounts` and `transfers`) is inserted in the same commit as its first
-- event; later versions come from the single writer's state, and `ledger verify` replays every
-- stream version. Lookups by stream go through the entity rows (`transfers.created_position`)
-- or the `account_events` read model, which indexes every event by stream.
ALTER TABLE events DROP CONSTRAINT events_stream_id_stream_version_key;
