INSERT INTO baseline_events (position, event_id, stream_id, stream_version, event_type, schema_version, payload, metadata, recorded_at, hash)
SELECT p, gen_random_uuid(), 'transfer-' || gen_random_uuid(), 1, 'TransferPosted', 1,
  '{"id":"5f0c6f5e-8a53-4a43-9d4e-4bb1cfa0f4a1","postings":[{"account":"be7c0000-0000-0000-0000-000000000001","side":"debit","amount":"10.00"},{"account":"be7c0000-0000-0000-0000-000000000002","side":"credit","amount":"10.00"}],"timeout_at":null,"reverses":null,"external_ref":null,"metadata":null,"at":1764180000000000}'::json,
  '{}'::json, now(), sha256(p::text::bytea)
FROM (SELECT nextval('baseline_position') AS p FROM generate_series(1, 1000)) AS s;
