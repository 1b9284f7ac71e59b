-- What the certificates' sales consumer has heard from the Orders and Payments systems, so that
-- an order and its payments may arrive in any order: a certificate line activates once the
-- order's paid payments reach its total. Inbound correlation state, not ledger state: the
-- activation itself is an event in the log.
CREATE TABLE certificate_orders (
    order_id      TEXT        PRIMARY KEY,
    total         NUMERIC     NOT NULL,
    currency      TEXT        NOT NULL,
    client_id     TEXT,
    phone         TEXT,
    -- The gift certificate lines: [{"certificate_code": "...", "amount": "..."}].
    lines         JSONB       NOT NULL,
    -- The payment that completed the order (set once; every activation names it).
    completed_by  TEXT,
    received_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE certificate_payments (
    payment_id    TEXT        PRIMARY KEY,
    order_id      TEXT        NOT NULL,
    status        TEXT        NOT NULL,
    amount        NUMERIC     NOT NULL,
    currency      TEXT        NOT NULL,
    received_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX certificate_payments_order ON certificate_payments (order_id);
