-- A certificate's operations no longer have rows of their own: an authorization is its hold
-- transfer (which the ledger keeps, and the writer loads back when a command names it), and a
-- certificate's row keeps only its open authorizations (`open`: amount held by operation id) and
-- the refund or cancellation that closed it (`closing`). Rows written before are folded into
-- their certificate's row, then removed. Rows that already have `open` are left as they are.
WITH ops AS (
    SELECT (state->>'certificate')::uuid AS certificate, state->>'operation_id' AS operation_id,
           state->'operation' AS op
    FROM entities WHERE kind = 'certificate_operation'
), open_ops AS (
    SELECT certificate, jsonb_object_agg(operation_id, op->'amount') AS open
    FROM ops WHERE op->>'kind' = 'authorization' AND op->>'status' = 'open'
    GROUP BY certificate
), closings AS (
    SELECT DISTINCT ON (certificate) certificate,
           jsonb_build_object('kind', op->'kind', 'operation_id', operation_id, 'amount', op->'amount',
                              'transfer', op->'transfer', 'reason', op->'reason', 'at', op->'at') AS closing
    FROM ops WHERE op->>'kind' IN ('refund', 'cancellation')
    ORDER BY certificate
), certificates AS (
    SELECT e.id, COALESCE(o.open, '{}'::jsonb) AS open, c.closing
    FROM entities e LEFT JOIN open_ops o ON o.certificate = e.id LEFT JOIN closings c ON c.certificate = e.id
    WHERE e.kind = 'certificate'
)
UPDATE entities e
SET state = e.state || jsonb_build_object('open', c.open, 'closing', c.closing)
FROM certificates c
WHERE e.id = c.id AND NOT e.state ? 'open';

DELETE FROM entities WHERE kind = 'certificate_operation';
