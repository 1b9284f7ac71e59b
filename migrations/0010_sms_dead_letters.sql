-- CVC messages the SMS gateway would not take after every retry. The certificate stays active;
-- an operator resends or contacts the customer. Never the CVC itself: the message is rebuilt
-- from the log (the activation event at `position`) when it is sent again.
CREATE TABLE sms_dead_letters (
    message_id   UUID        PRIMARY KEY,
    position     BIGINT      NOT NULL,
    certificate  TEXT        NOT NULL,
    to_masked    TEXT        NOT NULL,
    attempts     INTEGER     NOT NULL,
    reason       TEXT        NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
