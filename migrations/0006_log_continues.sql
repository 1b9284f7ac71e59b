-- The writer sends its next commit before the previous one has answered (pipelined on one
-- connection, so the server runs them strictly in order). Each commit first checks that the
-- log ends exactly where the commit was decided: at `after` with hash `after_hash`. If an earlier
-- commit failed, the one built on it fails here too instead of leaving a hole in the log.
CREATE FUNCTION ledger_log_continues(after BIGINT, after_hash BYTEA) RETURNS INTEGER
LANGUAGE plpgsql AS $$
BEGIN
    IF after > 0 AND NOT EXISTS (SELECT 1 FROM events WHERE position = after AND hash = after_hash) THEN
        RAISE EXCEPTION 'the log does not end at position % with the expected hash: the commit before this one failed', after
            USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN 1;
END
$$;
