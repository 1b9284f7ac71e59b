-- The P2P orders' example roles. A permission whose whole scope is `{scope}` is a template: a key
-- that holds the role bound to an owner (`merchant:store-17` in `api_keys.roles`) has it with that
-- owner's id as its scope (`orders:create:store-17`); a key that holds it plainly (`merchant`) has
-- none of the templates. An orders admin reads the settings orders are created under (rates,
-- fraud limits); changing them is `config:write`, the platform's, which no example role has.
-- A role of the same name that an operator made before is kept as it is; these are the operator's
-- to edit afterwards like any other.
INSERT INTO roles (name, permissions) VALUES
    ('merchant', ARRAY['orders:create:{scope}', 'orders:cancel:{scope}', 'orders:dispute:{scope}', 'orders:read:{scope}']),
    ('trader', ARRAY['orders:complete:{scope}', 'orders:fail:{scope}', 'orders:read:{scope}']),
    ('support', ARRAY['orders:read', 'orders:review']),
    ('teamlead', ARRAY['orders:traffic:{scope}']),
    ('admin', ARRAY['orders:*', 'config:read'])
ON CONFLICT (name) DO NOTHING;
