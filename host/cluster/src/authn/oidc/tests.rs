//! Claim checks and identity mapping, without a network (the HTTP side is in
//! `tests/authn.rs`).

use serde_json::json;

use super::*;

const ISSUER: &str = "https://idp.example";

fn config() -> OidcConfig {
    OidcConfig::new(ISSUER, "vdi")
}

fn claims(v: Value) -> Claims {
    v.as_object().unwrap().clone()
}

fn valid() -> Value {
    json!({"iss": ISSUER, "aud": "vdi", "sub": "alice", "exp": 2000, "iat": 1000, "groups": ["dev", "ops"]})
}

fn with(mut v: Value, key: &str, value: Value) -> Claims {
    v.as_object_mut().unwrap().insert(key.into(), value);
    claims(v)
}

fn without(mut v: Value, key: &str) -> Claims {
    v.as_object_mut().unwrap().remove(key);
    claims(v)
}

#[test]
fn the_identity_is_prefixed_and_authenticated() {
    let user = identity(&config(), &claims(valid())).unwrap();
    assert_eq!(user.name, "oidc:alice");
    assert_eq!(user.groups, ["oidc:dev", "oidc:ops", AUTHENTICATED_GROUP]);

    let mut plain = config();
    plain.username_prefix = NO_PREFIX.into();
    plain.groups_prefix = "corp/".into();
    let user = identity(&plain, &claims(valid())).unwrap();
    assert_eq!(user.name, "alice");
    assert_eq!(user.groups, ["corp/dev", "corp/ops", AUTHENTICATED_GROUP]);

    let single = with(valid(), "groups", json!("dev"));
    assert_eq!(
        identity(&config(), &single).unwrap().groups,
        ["oidc:dev", AUTHENTICATED_GROUP]
    );
    let none = without(valid(), "groups");
    assert_eq!(
        identity(&config(), &none).unwrap().groups,
        [AUTHENTICATED_GROUP]
    );
    let mut ignored = config();
    ignored.groups_claim = None;
    assert_eq!(
        identity(&ignored, &claims(valid())).unwrap().groups,
        [AUTHENTICATED_GROUP]
    );
}

#[test]
fn the_username_claim_must_be_a_non_empty_string() {
    assert_eq!(
        identity(&config(), &without(valid(), "sub")).unwrap_err().0,
        "sub: missing"
    );
    assert!(identity(&config(), &with(valid(), "sub", json!(""))).is_err());
    assert!(identity(&config(), &with(valid(), "sub", json!(42))).is_err());
    assert!(identity(&config(), &with(valid(), "sub", json!(["alice"]))).is_err());
}

#[test]
fn groups_of_the_wrong_type_are_refused() {
    for bad in [json!(7), json!({"a": 1}), json!(["dev", 1]), json!(true)] {
        let err = identity(&config(), &with(valid(), "groups", bad.clone())).unwrap_err();
        assert!(err.0.starts_with("groups"), "{bad}: {err:?}");
    }
}

#[test]
fn an_email_username_must_be_verified_when_the_idp_says_so() {
    let mut by_email = config();
    by_email.username_claim = "email".into();
    let base = with(valid(), "email", json!("alice@example.com"));
    assert_eq!(
        identity(&by_email, &base).unwrap().name,
        "oidc:alice@example.com"
    );
    let verified = with(Value::Object(base.clone()), "email_verified", json!(true));
    assert!(identity(&by_email, &verified).is_ok());
    let unverified = with(Value::Object(base.clone()), "email_verified", json!(false));
    assert_eq!(
        identity(&by_email, &unverified).unwrap_err().0,
        "email not verified"
    );
    let stringly = with(Value::Object(base), "email_verified", json!("true"));
    assert!(identity(&by_email, &stringly).is_err());
}

#[test]
fn without_a_prefix_the_idp_cannot_claim_system_identities() {
    let mut plain = config();
    plain.username_prefix = NO_PREFIX.into();
    plain.groups_prefix = NO_PREFIX.into();
    let admin = with(valid(), "sub", json!("system:admin"));
    assert!(identity(&plain, &admin).unwrap_err().0.contains("reserved"));
    let masters = with(valid(), "groups", json!(["system:masters"]));
    assert!(
        identity(&plain, &masters)
            .unwrap_err()
            .0
            .contains("reserved")
    );
    // With the default prefix the same claims are harmless.
    assert_eq!(
        identity(&config(), &masters).unwrap().groups[0],
        "oidc:system:masters"
    );
}

#[test]
fn issuer_audience_times_and_required_claims_are_checked() {
    let now = 1500;
    assert!(check_claims(&config(), &claims(valid()), now).is_ok());
    let cases = [
        (with(valid(), "iss", json!("https://other")), "iss"),
        (with(valid(), "aud", json!("someone-else")), "aud"),
        (with(valid(), "aud", json!(["a", "b"])), "aud"),
        (without(valid(), "aud"), "aud"),
        (with(valid(), "exp", json!(1000)), "expired"),
        (with(valid(), "nbf", json!(1700)), "not valid before"),
        (without(valid(), "iat"), "iat"),
        (without(valid(), "exp"), "exp"),
    ];
    for (c, reason) in cases {
        let err = check_claims(&config(), &c, now).unwrap_err();
        assert!(err.0.contains(reason), "{c:?}: {err:?}");
    }
    assert!(check_claims(&config(), &with(valid(), "aud", json!(["x", "vdi"])), now).is_ok());

    let mut required = config();
    required
        .required_claims
        .insert("tenant".into(), "acme".into());
    assert!(
        check_claims(&required, &claims(valid()), now)
            .unwrap_err()
            .0
            .contains("missing")
    );
    let acme = with(valid(), "tenant", json!("acme"));
    assert!(check_claims(&required, &acme, now).is_ok());
    let other = with(valid(), "tenant", json!("evil"));
    assert!(
        check_claims(&required, &other, now)
            .unwrap_err()
            .0
            .contains("wrong value")
    );
    let typed = with(valid(), "tenant", json!(["acme"]));
    assert!(
        check_claims(&required, &typed, now)
            .unwrap_err()
            .0
            .contains("not a string")
    );
}

#[test]
fn configuration_is_checked_up_front() {
    assert!(OidcAuthenticator::new(config()).is_ok());
    let http = OidcConfig::new("http://idp.example", "vdi");
    assert!(OidcAuthenticator::new(http).is_err());
    let mut loopback = OidcConfig::new("http://127.0.0.1:5556", "vdi");
    assert!(
        OidcAuthenticator::new(loopback.clone()).is_err(),
        "loopback http needs the flag"
    );
    loopback.allow_insecure_loopback = true;
    assert!(OidcAuthenticator::new(loopback).is_ok());
    let mut remote = OidcConfig::new("http://10.0.0.1", "vdi");
    remote.allow_insecure_loopback = true;
    assert!(
        OidcAuthenticator::new(remote).is_err(),
        "the flag is for loopback only"
    );
    let mut hmac = config();
    hmac.signing_algs = vec![Algorithm::RS256, Algorithm::HS256];
    let err = OidcAuthenticator::new(hmac).err().unwrap().to_string();
    assert!(err.contains("symmetric"), "{err}");
    let mut no_client = config();
    no_client.client_id.clear();
    assert!(OidcAuthenticator::new(no_client).is_err());
    let mut bad_ca = config();
    bad_ca.ca_pem = Some("not a certificate".into());
    assert!(OidcAuthenticator::new(bad_ca).is_err());
}

#[test]
fn configuration_reads_from_camel_case_yaml_keys_with_kube_defaults() {
    let parsed: OidcConfig = serde_json::from_value(json!({
        "issuerUrl": ISSUER,
        "clientId": "vdi",
        "requiredClaims": {"tenant": "acme"},
        "signingAlgs": ["ES256"],
    }))
    .unwrap();
    assert_eq!(parsed.username_claim, "sub");
    assert_eq!(parsed.username_prefix, DEFAULT_PREFIX);
    assert_eq!(parsed.groups_claim.as_deref(), Some("groups"));
    assert_eq!(parsed.signing_algs, [Algorithm::ES256]);
    assert!(!parsed.allow_insecure_loopback);
    let unknown = serde_json::from_value::<OidcConfig>(
        json!({"issuerUrl": ISSUER, "clientId": "vdi", "clientSecret": "x"}),
    );
    assert!(unknown.is_err());
}

#[tokio::test]
async fn tokens_of_other_issuers_are_not_ours() {
    let auth = OidcAuthenticator::new(config()).unwrap();
    assert!(auth.authenticate("opaque").await.is_none());
    let other = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &json!({"iss": "https://elsewhere", "exp": 1}),
        &jsonwebtoken::EncodingKey::from_secret(b"k"),
    )
    .unwrap();
    assert!(auth.authenticate(&other).await.is_none());
}
