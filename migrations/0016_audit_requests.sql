-- Audit entries asked for by a process that cannot reach the writer (the command line beside a
-- running `ledger up`), written in the same transaction as the change they audit. The running
-- engine records each as an `AuditRecorded` event, oldest first, and deletes the row; an entry
-- recorded twice (a crash between the two) shows once in the audit read model, keyed by its id.
CREATE TABLE audit_requests (
    seq           BIGSERIAL PRIMARY KEY,
    entry         JSONB NOT NULL,
    meta          JSONB NOT NULL,
    requested_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
