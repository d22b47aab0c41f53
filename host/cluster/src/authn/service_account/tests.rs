use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use super::*;
use crate::authn::tests::Objects;

const NS: &str = "team";
const SA: &str = "builder";
const SA_UID: &str = "sa-uid-1";

fn spec() -> TokenSpec {
    TokenSpec {
        namespace: NS.into(),
        service_account: SA.into(),
        service_account_uid: SA_UID.into(),
        audiences: Vec::new(),
        expiration_seconds: DEFAULT_EXPIRATION_SECONDS,
        bound_object: None,
    }
}

fn objects() -> Objects {
    Objects::default().with_sa(NS, SA, SA_UID)
}

fn now() -> Timestamp {
    Timestamp::from_second(1_900_000_000).unwrap()
}

fn after(seconds: i64) -> Timestamp {
    now() + SignedDuration::from_secs(seconds)
}

fn reason(tokens: &ServiceAccountTokens, token: &str, lookup: &Objects, at: Timestamp) -> String {
    match tokens.check(token, lookup, at) {
        Some(Err(Rejected(reason))) => reason,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn minted_tokens_validate_as_the_service_account_with_kubernetes_claims() {
    let tokens = ServiceAccountTokens::generate().unwrap();
    let (token, expires) = tokens.mint(&spec(), now()).unwrap();
    assert_eq!(expires, after(DEFAULT_EXPIRATION_SECONDS));
    let user = tokens
        .validate_at(&token, &objects(), after(10))
        .unwrap()
        .unwrap();
    assert_eq!(user, UserInfo::service_account(NS, SA));
    assert!(user.in_group("system:serviceaccounts:team"));

    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(header.kid.as_deref(), Some(tokens.key_id()));
    let claims = jwt::peek_claims(&token).unwrap();
    assert_eq!(claims["iss"], DEFAULT_SA_ISSUER);
    assert_eq!(claims["sub"], "system:serviceaccount:team:builder");
    assert_eq!(claims["aud"], json!([DEFAULT_SA_ISSUER]));
    assert_eq!(claims["iat"], now().as_second());
    assert_eq!(claims["nbf"], now().as_second());
    assert_eq!(claims["exp"], now().as_second() + 3600);
    assert!(uuid::Uuid::parse_str(claims["jti"].as_str().unwrap()).is_ok());
    assert_eq!(
        claims["kubernetes.io"],
        json!({"namespace": NS, "serviceaccount": {"name": SA, "uid": SA_UID}})
    );
    let (again, _) = tokens.mint(&spec(), now()).unwrap();
    assert_ne!(jwt::peek_claims(&again).unwrap()["jti"], claims["jti"]);
}

#[test]
fn lifetimes_under_ten_minutes_are_refused_and_long_ones_capped() {
    let tokens = ServiceAccountTokens::generate().unwrap();
    let short = TokenSpec {
        expiration_seconds: 599,
        ..spec()
    };
    let err = tokens.mint(&short, now()).unwrap_err();
    assert!(matches!(&err, ApiError::Invalid { field, .. } if field == "spec.expirationSeconds"));
    assert!(err.to_string().contains("less than 10 minutes"), "{err}");
    let min = TokenSpec {
        expiration_seconds: MIN_EXPIRATION_SECONDS,
        ..spec()
    };
    assert_eq!(tokens.mint(&min, now()).unwrap().1, after(600));
    let long = TokenSpec {
        expiration_seconds: 365 * 24 * 3600,
        ..spec()
    };
    assert_eq!(
        tokens.mint(&long, now()).unwrap().1,
        after(MAX_EXPIRATION_SECONDS)
    );
}

#[test]
fn expired_and_not_yet_valid_tokens_are_rejected_with_a_minute_of_skew() {
    let tokens = ServiceAccountTokens::generate().unwrap();
    let (token, _) = tokens.mint(&spec(), now()).unwrap();
    let objects = objects();
    assert!(
        tokens
            .validate_at(&token, &objects, after(3600 + 60))
            .unwrap()
            .is_ok()
    );
    assert!(reason(&tokens, &token, &objects, after(3600 + 61)).contains("expired"));
    assert_eq!(
        tokens.validate_at(&token, &objects, after(3600 + 61)),
        Some(Err(ApiError::Unauthorized))
    );
    assert!(
        tokens
            .validate_at(&token, &objects, after(-60))
            .unwrap()
            .is_ok()
    );
    assert!(reason(&tokens, &token, &objects, after(-61)).contains("not valid before"));
}

#[test]
fn tokens_for_other_audiences_are_rejected() {
    let tokens = ServiceAccountTokens::generate().unwrap();
    let vault = TokenSpec {
        audiences: vec!["vault".into()],
        ..spec()
    };
    let (token, _) = tokens.mint(&vault, now()).unwrap();
    assert_eq!(jwt::peek_claims(&token).unwrap()["aud"], json!(["vault"]));
    assert_eq!(
        reason(&tokens, &token, &objects(), after(1)),
        "no audience of this API server"
    );
    let both = TokenSpec {
        audiences: vec!["vault".into(), DEFAULT_SA_ISSUER.into()],
        ..spec()
    };
    let (token, _) = tokens.mint(&both, now()).unwrap();
    assert!(
        tokens
            .validate_at(&token, &objects(), after(1))
            .unwrap()
            .is_ok()
    );
    let api = ServiceAccountTokens::generate()
        .unwrap()
        .with_api_audiences(vec!["api".into()]);
    let (token, _) = api.mint(&spec(), now()).unwrap();
    assert_eq!(jwt::peek_claims(&token).unwrap()["aud"], json!(["api"]));
    assert!(
        api.validate_at(&token, &objects(), after(1))
            .unwrap()
            .is_ok()
    );
}

#[test]
fn tampered_and_foreign_tokens_are_rejected() {
    let tokens = ServiceAccountTokens::generate().unwrap();
    let (token, _) = tokens.mint(&spec(), now()).unwrap();
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    // Claim another service account with the original signature.
    let mut claims = jwt::peek_claims(&token).unwrap();
    claims.insert(
        "sub".into(),
        json!("system:serviceaccount:kube-system:admin"),
    );
    use base64::Engine;
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&claims).unwrap());
    let forged = parts.join(".");
    assert!(reason(&tokens, &forged, &objects(), after(1)).starts_with("signature"));

    // Same issuer, another key.
    let other = ServiceAccountTokens::generate().unwrap();
    let (foreign, _) = other.mint(&spec(), now()).unwrap();
    assert_eq!(
        reason(&tokens, &foreign, &objects(), after(1)),
        "unknown signing key"
    );

    // Not ours at all: another issuer, or not a JWT.
    let elsewhere = ServiceAccountTokens::generate()
        .unwrap()
        .with_issuer("https://elsewhere");
    let (theirs, _) = elsewhere.mint(&spec(), now()).unwrap();
    assert_eq!(tokens.validate_at(&theirs, &objects(), after(1)), None);
    assert_eq!(
        tokens.validate_at("opaque-token", &objects(), after(1)),
        None
    );
}

#[test]
fn tokens_die_with_their_service_account_or_its_uid() {
    let tokens = ServiceAccountTokens::generate().unwrap();
    let (token, _) = tokens.mint(&spec(), now()).unwrap();
    let gone = Objects::default();
    assert!(reason(&tokens, &token, &gone, after(1)).contains("gone or has a new uid"));
    let recreated = Objects::default().with_sa(NS, SA, "sa-uid-2");
    assert!(reason(&tokens, &token, &recreated, after(1)).contains("service account team/builder"));
}

#[test]
fn bound_tokens_die_with_their_pod_or_secret() {
    let tokens = ServiceAccountTokens::generate().unwrap();
    let pod_bound = TokenSpec {
        bound_object: Some(BoundObject {
            kind: BoundKind::Pod,
            name: "web-0".into(),
            uid: "pod-1".into(),
        }),
        ..spec()
    };
    let (token, _) = tokens.mint(&pod_bound, now()).unwrap();
    assert_eq!(
        jwt::peek_claims(&token).unwrap()["kubernetes.io"]["pod"],
        json!({"name": "web-0", "uid": "pod-1"})
    );
    let with_pod = objects().with_pod(NS, "web-0", "pod-1");
    assert!(
        tokens
            .validate_at(&token, &with_pod, after(1))
            .unwrap()
            .is_ok()
    );
    assert!(reason(&tokens, &token, &objects(), after(1)).contains("bound pod team/web-0"));
    let replaced = objects().with_pod(NS, "web-0", "pod-2");
    assert!(reason(&tokens, &token, &replaced, after(1)).contains("bound pod"));

    let secret_bound = TokenSpec {
        bound_object: Some(BoundObject {
            kind: BoundKind::Secret,
            name: "s".into(),
            uid: "sec-1".into(),
        }),
        ..spec()
    };
    let (token, _) = tokens.mint(&secret_bound, now()).unwrap();
    let with_secret = objects().with_secret(NS, "s", "sec-1");
    assert!(
        tokens
            .validate_at(&token, &with_secret, after(1))
            .unwrap()
            .is_ok()
    );
    assert!(reason(&tokens, &token, &objects(), after(1)).contains("bound secret team/s"));
}

#[test]
fn the_signing_key_is_created_private_and_reused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sa.key");
    let first = ServiceAccountTokens::load_or_create(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("BEGIN PRIVATE KEY")
    );
    let (token, _) = first.mint(&spec(), now()).unwrap();
    let second = ServiceAccountTokens::load_or_create(&path).unwrap();
    assert_eq!(second.key_id(), first.key_id());
    assert!(
        second
            .validate_at(&token, &objects(), after(1))
            .unwrap()
            .is_ok(),
        "restart keeps tokens valid"
    );

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let err = ServiceAccountTokens::load_or_create(&path).err().unwrap();
    assert!(err.to_string().contains("mode 640"), "{err}");

    let rsa_like = dir.path().join("bad.key");
    files::create_private(
        &rsa_like,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    assert!(ServiceAccountTokens::load_or_create(&rsa_like).is_err());
}

#[test]
fn the_jwks_verifies_issued_tokens() {
    let tokens = ServiceAccountTokens::generate().unwrap();
    let (token, _) = tokens.mint(&spec(), now()).unwrap();
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(tokens.jwks()).unwrap();
    let jwk = jwks.find(tokens.key_id()).unwrap();
    let key = DecodingKey::from_jwk(jwk).unwrap();
    assert!(jwt::verify(&token, &key, Algorithm::ES256).is_ok());
    let doc = tokens.openid_configuration("https://x/openid/v1/jwks");
    assert_eq!(doc["issuer"], DEFAULT_SA_ISSUER);
    assert_eq!(doc["jwks_uri"], "https://x/openid/v1/jwks");
}
