-- Endpoints a domain entity owns (a P2P store's callbacks). The webhooks' follower makes and
-- changes them from the owner's events (id = ledger_core::webhook::owned_endpoint_id(owner),
-- no event types, so no operator's filter ever matches them), in the same transaction as its
-- checkpoint. The operators' endpoint API sees only `owner IS NULL`.
ALTER TABLE webhook_endpoints ADD COLUMN owner TEXT UNIQUE;
-- An owner may have no URL of its own: then only messages that name one are sent.
ALTER TABLE webhook_endpoints ALTER COLUMN url DROP NOT NULL;
ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_url_or_owner CHECK (url IS NOT NULL OR owner IS NOT NULL);

-- A message to an owned endpoint may go to a URL of its own (an order's callback URL) instead
-- of the endpoint's, and is about a subject (the order's id): its delivery log is listed by it.
ALTER TABLE webhook_messages ADD COLUMN url TEXT, ADD COLUMN subject TEXT;
CREATE INDEX webhook_messages_by_subject ON webhook_messages (subject, position, id) WHERE subject IS NOT NULL;
