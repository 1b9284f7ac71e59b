-- Roles: named sets of permissions (`resource:action[:scope]`). A key holds roles beside its
-- own permissions (`api_keys.scopes`); what it may do is both together. A change to a role or a
-- key's revocation is announced by NOTIFY ledger_keys in the same transaction, and every
-- process's key cache is cleared when it hears it.
CREATE TABLE roles (
    name        TEXT        PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    permissions TEXT[]      NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

ALTER TABLE api_keys ADD COLUMN roles TEXT[] NOT NULL DEFAULT '{}';
