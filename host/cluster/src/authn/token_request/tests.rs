use jiff::Timestamp;
use serde_json::json;

use super::*;
use crate::authn::jwt;
use crate::authn::tests::Objects;

const NS: &str = "team";
const SA: &str = "builder";

fn now() -> Timestamp {
    Timestamp::from_second(1_900_000_000).unwrap()
}

fn objects() -> Objects {
    Objects::default()
        .with_sa(NS, SA, "sa-uid")
        .with_pod(NS, "web-0", "pod-uid")
        .with_secret(NS, "creds", "secret-uid")
}

fn request(tokens: &ServiceAccountTokens, body: Value) -> Result<Value> {
    tokens.token_request(NS, SA, "sa-uid", &body, &objects(), now())
}

fn field_of(err: &ApiError) -> String {
    match err {
        ApiError::Invalid { field, .. } => field.clone(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn an_empty_request_gets_a_one_hour_token_for_the_api_audiences() {
    let tokens = ServiceAccountTokens::generate().unwrap();
    let out = request(
        &tokens,
        json!({"apiVersion": API_VERSION, "kind": KIND, "spec": {}}),
    )
    .unwrap();
    assert_eq!(out["kind"], "TokenRequest");
    assert_eq!(out["metadata"]["name"], SA);
    assert_eq!(out["metadata"]["namespace"], NS);
    assert_eq!(out["spec"]["expirationSeconds"], 3600);
    assert_eq!(
        out["spec"]["audiences"],
        json!([crate::authn::DEFAULT_SA_ISSUER])
    );
    assert_eq!(out["status"]["expirationTimestamp"], "2030-03-17T18:46:40Z");
    let token = out["status"]["token"].as_str().unwrap();
    let user = tokens
        .validate_at(token, &objects(), now())
        .unwrap()
        .unwrap();
    assert_eq!(user.name, "system:serviceaccount:team:builder");
    // A body with no spec at all is the same request.
    assert!(request(&tokens, json!({})).is_ok());
}

#[test]
fn audiences_lifetime_and_bound_pod_are_honoured() {
    let tokens = ServiceAccountTokens::generate().unwrap();
    let out = request(
        &tokens,
        json!({"spec": {
            "audiences": ["vault", "api"],
            "expirationSeconds": 7200,
            "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web-0"},
        }}),
    )
    .unwrap();
    assert_eq!(out["status"]["expirationTimestamp"], "2030-03-17T19:46:40Z");
    assert_eq!(out["spec"]["boundObjectRef"]["uid"], "pod-uid");
    let claims = jwt::peek_claims(out["status"]["token"].as_str().unwrap()).unwrap();
    assert_eq!(claims["aud"], json!(["vault", "api"]));
    assert_eq!(
        claims["kubernetes.io"]["pod"],
        json!({"name": "web-0", "uid": "pod-uid"})
    );

    let secret = request(
        &tokens,
        json!({"spec": {"boundObjectRef": {"kind": "Secret", "name": "creds", "uid": "secret-uid"}}}),
    )
    .unwrap();
    let claims = jwt::peek_claims(secret["status"]["token"].as_str().unwrap()).unwrap();
    assert_eq!(claims["kubernetes.io"]["secret"]["uid"], "secret-uid");
}

#[test]
fn bad_values_are_invalid_naming_the_field() {
    let tokens = ServiceAccountTokens::generate().unwrap();
    let cases = [
        (
            json!({"spec": {"expirationSeconds": 599}}),
            "spec.expirationSeconds",
        ),
        (
            json!({"spec": {"expirationSeconds": -1}}),
            "spec.expirationSeconds",
        ),
        (
            json!({"spec": {"expirationSeconds": 1_i64 << 40}}),
            "spec.expirationSeconds",
        ),
        (
            json!({"spec": {"audiences": ["ok", ""]}}),
            "spec.audiences[1]",
        ),
        (
            json!({"spec": {"boundObjectRef": {"kind": "Node", "name": "n"}}}),
            "spec.boundObjectRef.kind",
        ),
        (
            json!({"spec": {"boundObjectRef": {"name": "web-0"}}}),
            "spec.boundObjectRef.kind",
        ),
        (
            json!({"spec": {"boundObjectRef": {"kind": "Pod"}}}),
            "spec.boundObjectRef.name",
        ),
        (
            json!({"spec": {"boundObjectRef": {"kind": "Pod", "name": ""}}}),
            "spec.boundObjectRef.name",
        ),
        (
            json!({"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "apps/v1", "name": "web-0"}}}),
            "spec.boundObjectRef.apiVersion",
        ),
        (
            json!({"spec": {"boundObjectRef": {"kind": "Pod", "name": "web-0", "uid": "old"}}}),
            "spec.boundObjectRef.uid",
        ),
    ];
    for (body, field) in cases {
        let err = request(&tokens, body.clone()).unwrap_err();
        assert_eq!(field_of(&err), field, "{body}");
    }
    let short = request(&tokens, json!({"spec": {"expirationSeconds": 599}})).unwrap_err();
    assert_eq!(
        short.to_string(),
        "TokenRequest \"builder\" is invalid: spec.expirationSeconds: 599: may not specify a duration less than 10 minutes"
    );
}

#[test]
fn a_missing_bound_object_is_not_found() {
    let tokens = ServiceAccountTokens::generate().unwrap();
    let err = request(
        &tokens,
        json!({"spec": {"boundObjectRef": {"kind": "Pod", "name": "gone"}}}),
    )
    .unwrap_err();
    assert_eq!(
        err,
        ApiError::NotFound {
            resource: "pods".into(),
            name: "gone".into()
        }
    );
}

#[test]
fn hostile_bodies_of_the_wrong_shape_are_bad_requests_naming_the_field() {
    let tokens = ServiceAccountTokens::generate().unwrap();
    let cases = [
        (json!(null), "body"),
        (json!("token please"), "body"),
        (json!([1, 2]), "body"),
        (json!({"kind": 7}), "kind"),
        (json!({"kind": "Pod"}), "kind"),
        (json!({"apiVersion": "v1"}), "apiVersion"),
        (json!({"spec": []}), "spec"),
        (json!({"spec": "x"}), "spec"),
        (json!({"spec": {"audiences": "api"}}), "spec.audiences"),
        (json!({"spec": {"audiences": [1]}}), "spec.audiences[0]"),
        (json!({"spec": {"audiences": [["a"]]}}), "spec.audiences[0]"),
        (
            json!({"spec": {"expirationSeconds": "3600"}}),
            "spec.expirationSeconds",
        ),
        (
            json!({"spec": {"expirationSeconds": 3600.5}}),
            "spec.expirationSeconds",
        ),
        (
            json!({"spec": {"expirationSeconds": 1e300}}),
            "spec.expirationSeconds",
        ),
        (
            json!({"spec": {"expirationSeconds": u64::MAX}}),
            "spec.expirationSeconds",
        ),
        (
            json!({"spec": {"expirationSeconds": {}}}),
            "spec.expirationSeconds",
        ),
        (
            json!({"spec": {"boundObjectRef": "web-0"}}),
            "spec.boundObjectRef",
        ),
        (
            json!({"spec": {"boundObjectRef": {"kind": ["Pod"], "name": "web-0"}}}),
            "spec.boundObjectRef.kind",
        ),
        (
            json!({"spec": {"boundObjectRef": {"kind": "Pod", "name": 1}}}),
            "spec.boundObjectRef.name",
        ),
        (
            json!({"spec": {"boundObjectRef": {"kind": "Pod", "name": "web-0", "uid": false}}}),
            "spec.boundObjectRef.uid",
        ),
    ];
    for (body, field) in cases {
        match request(&tokens, body.clone()) {
            Err(ApiError::BadRequest(message)) => {
                assert!(message.contains(&format!("{field}:")), "{body}: {message}");
            }
            other => panic!("{body}: expected BadRequest, got {other:?}"),
        }
    }
}
