-- Room for HOT updates: a certificate's row is rewritten by every command on it (its version
-- moves each time), and a full page would send every rewrite to another page, with a new entry
-- in both indexes. Pages written from now on keep half their space free, as the accounts do.
ALTER TABLE entities SET (fillfactor = 50);
