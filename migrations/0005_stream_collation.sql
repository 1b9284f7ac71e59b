-- Stream ids are ASCII keys ("transfer-<uuid>", "account-<uuid>"), only ever compared for
-- equality and never sorted for people: compare them bytewise. Under a libc collation every
-- insert into the (stream_id, stream_version) index paid for locale-aware comparisons, which
-- made it the most expensive part of appending an event. Rebuilds that index once; the rows
-- and their hashes are unchanged.
ALTER TABLE events ALTER COLUMN stream_id TYPE TEXT COLLATE "C";
