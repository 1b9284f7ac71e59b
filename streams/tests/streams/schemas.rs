//! The committed schemas match the code, and real messages validate against them.

use std::path::Path;

use serde_json::json;

fn committed() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/events"))
}

#[test]
fn committed_schemas_match_the_code() {
    let drift = streams::schemas::drift(committed());
    assert!(
        drift.is_empty(),
        "schemas/events drifted from the code: {drift:?}; regenerate with `cargo run -p ledger -- schemas write`"
    );
}

#[test]
fn a_message_that_breaks_the_contract_is_reported() {
    let good = json!({
        "id": "0190c0de-0000-7000-8000-000000000001", "position": 1, "stream": "account-x", "stream_version": 1,
        "type": "AccountFrozen", "schema_version": 2, "recorded_at": 5, "metadata": {}, "hash": "00",
        "payload": {"id": "0190c0de-0000-7000-8000-000000000002", "reason": "chargeback", "at": 5}
    });
    streams::schemas::check(&good).unwrap();
    // An old version is still a valid published shape.
    let mut v1 = good.clone();
    v1["schema_version"] = json!(1);
    v1["payload"] = json!({"id": "0190c0de-0000-7000-8000-000000000002", "at": 5});
    streams::schemas::check(&v1).unwrap();

    let mut wrong_version = good.clone();
    wrong_version["schema_version"] = json!(1);
    let errors = streams::schemas::check(&wrong_version).unwrap_err();
    assert!(errors.iter().any(|e| e.to_string().contains("reason")), "{errors:?}");

    let mut unknown = good.clone();
    unknown["schema_version"] = json!(9);
    assert_eq!(
        streams::schemas::check(&unknown).unwrap_err(),
        [streams::schemas::CheckError::UnknownVersion("AccountFrozen".into(), 9)]
    );

    let mut bad_envelope = good.clone();
    bad_envelope.as_object_mut().unwrap().remove("position");
    assert!(matches!(
        streams::schemas::check(&bad_envelope).unwrap_err()[0],
        streams::schemas::CheckError::Envelope(_)
    ));

    let mut bad_uuid = good;
    bad_uuid["payload"]["id"] = json!("not-a-uuid");
    assert!(matches!(streams::schemas::check(&bad_uuid).unwrap_err()[0], streams::schemas::CheckError::Payload(..)));
}
