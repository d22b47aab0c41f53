//! OIDC authentication over real HTTP: a small identity provider (discovery + JWKS) on
//! 127.0.0.1 serves RS256 and ES256 keys, rotates them and misbehaves, and the authenticator
//! must accept exactly the tokens kube-apiserver would.
//!
//! `fixtures/oidc-rsa-test-key.pem` is a throw-away RSA key made for these tests
//! (`openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`): generating one in a debug
//! build takes seconds. It protects nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256};
use serde_json::{Value, json};
use vdi_cluster::authn::{
    AdminToken, Authenticator, OidcAuthenticator, OidcConfig, ServiceAccountTokens, TokenLookup,
};
use vdi_cluster::rbac::AUTHENTICATED_GROUP;
use vdi_cluster::{ApiError, Result};

const CLIENT_ID: &str = "vdi-dashboard";
const RSA_PEM: &str = include_str!("fixtures/oidc-rsa-test-key.pem");

/// A signing key and the public JWK the provider publishes for it.
#[derive(Clone)]
struct SigningKey {
    alg: Algorithm,
    kid: String,
    encoding: EncodingKey,
    jwk: Jwk,
}

impl SigningKey {
    fn new(alg: Algorithm, kid: &str, encoding: EncodingKey) -> Self {
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).expect("jwk");
        jwk.common.key_id = Some(kid.to_owned());
        Self {
            alg,
            kid: kid.to_owned(),
            encoding,
            jwk,
        }
    }

    fn ec(kid: &str) -> Self {
        let pair = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("ec key");
        let encoding = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).expect("pem");
        Self::new(Algorithm::ES256, kid, encoding)
    }

    fn rsa(kid: &str) -> Self {
        let encoding = EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).expect("rsa pem");
        Self::new(Algorithm::RS256, kid, encoding)
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("sign")
    }
}

/// What the provider serves, changeable while it runs.
struct Served {
    /// The `issuer` its discovery document names.
    issuer: String,
    keys: Vec<Jwk>,
    /// Answer discovery with 500.
    broken: bool,
    jwks_fetches: usize,
}

/// The identity provider, on 127.0.0.1 over plain HTTP; stops when dropped.
struct Idp {
    issuer: String,
    served: Arc<Mutex<Served>>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

type Shared = Arc<Mutex<Served>>;

async fn discovery(State(served): State<Shared>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let served = served.lock().unwrap();
    if served.broken {
        return http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let jwks_uri = format!("{}/keys", served.issuer.trim_end_matches("/evil"));
    Json(json!({ "issuer": served.issuer, "jwks_uri": jwks_uri })).into_response()
}

async fn jwks(State(served): State<Shared>) -> Json<Value> {
    let mut served = served.lock().unwrap();
    served.jwks_fetches += 1;
    Json(json!({ "keys": served.keys }))
}

impl Idp {
    async fn start(keys: &[&SigningKey]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let served = Arc::new(Mutex::new(Served {
            issuer: issuer.clone(),
            keys: keys.iter().map(|k| k.jwk.clone()).collect(),
            broken: false,
            jwks_fetches: 0,
        }));
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/keys", get(jwks))
            .with_state(served.clone());
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            issuer,
            served,
            _shutdown: shutdown,
        }
    }

    fn config(&self) -> OidcConfig {
        let mut config = OidcConfig::new(&self.issuer, CLIENT_ID);
        config.allow_insecure_loopback = true;
        config
    }

    /// An authenticator that may refetch keys at once (rotation tests need no waiting).
    fn authenticator(&self) -> OidcAuthenticator {
        OidcAuthenticator::new(self.config())
            .unwrap()
            .with_key_refresh(Duration::ZERO, Duration::from_secs(300))
    }

    fn set(&self, change: impl FnOnce(&mut Served)) {
        change(&mut self.served.lock().unwrap());
    }

    fn jwks_fetches(&self) -> usize {
        self.served.lock().unwrap().jwks_fetches
    }

    /// Claims of a valid ID token for alice, valid from a minute ago for an hour.
    fn claims(&self) -> Value {
        let now = jiff::Timestamp::now().as_second();
        json!({
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "sub": "alice",
            "iat": now - 60,
            "nbf": now - 60,
            "exp": now + 3600,
            "groups": ["dev", "ops"],
        })
    }
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().unwrap().remove(key);
    claims
}

async fn accepted(auth: &OidcAuthenticator, token: &str) -> vdi_cluster::rbac::UserInfo {
    match auth.authenticate(token).await {
        Some(Ok(user)) => user,
        other => panic!("expected the token to be accepted, got {other:?}"),
    }
}

async fn rejected(auth: &OidcAuthenticator, token: &str) -> bool {
    matches!(
        auth.authenticate(token).await,
        Some(Err(ApiError::Unauthorized))
    )
}

#[tokio::test]
async fn rs256_and_es256_tokens_become_prefixed_identities() {
    let (rsa, ec) = (SigningKey::rsa("rsa-1"), SigningKey::ec("ec-1"));
    let idp = Idp::start(&[&rsa, &ec]).await;
    let auth = idp.authenticator();
    assert!(auth.prefetch().await);
    for key in [&rsa, &ec] {
        let user = accepted(&auth, &key.sign(&idp.claims())).await;
        assert_eq!(user.name, "oidc:alice");
        assert_eq!(user.groups, ["oidc:dev", "oidc:ops", AUTHENTICATED_GROUP]);
    }
    assert_eq!(idp.jwks_fetches(), 1, "keys are cached");
}

#[tokio::test]
async fn tokens_fail_on_issuer_audience_and_time() {
    let key = SigningKey::ec("ec-1");
    let idp = Idp::start(&[&key]).await;
    let auth = idp.authenticator();
    let now = jiff::Timestamp::now().as_second();
    accepted(&auth, &key.sign(&idp.claims())).await;
    // Another issuer's token is not ours to judge...
    let foreign = key.sign(&with(idp.claims(), "iss", json!("https://elsewhere")));
    assert!(auth.authenticate(&foreign).await.is_none());
    // ...but one that claims ours must pass every check.
    for claims in [
        with(idp.claims(), "aud", json!("another-client")),
        with(idp.claims(), "aud", json!(["a", "b"])),
        with(idp.claims(), "exp", json!(now - 120)),
        with(idp.claims(), "nbf", json!(now + 600)),
        without(idp.claims(), "iat"),
        without(idp.claims(), "exp"),
    ] {
        assert!(rejected(&auth, &key.sign(&claims)).await, "{claims}");
    }
    let audiences = with(idp.claims(), "aud", json!(["a", CLIENT_ID]));
    accepted(&auth, &key.sign(&audiences)).await;
}

#[tokio::test]
async fn tampered_unsigned_and_symmetric_tokens_are_refused() {
    let key = SigningKey::ec("ec-1");
    let idp = Idp::start(&[&key]).await;
    let auth = idp.authenticator();
    let token = key.sign(&idp.claims());
    accepted(&auth, &token).await;

    let mut parts: Vec<&str> = token.split('.').collect();
    let admin = URL_SAFE_NO_PAD.encode(with(idp.claims(), "sub", json!("root")).to_string());
    parts[1] = &admin;
    assert!(
        rejected(&auth, &parts.join(".")).await,
        "payload swapped under the signature"
    );

    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(idp.claims().to_string());
    assert!(
        rejected(&auth, &format!("{none_header}.{payload}.")).await,
        "alg none"
    );

    let hs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &idp.claims(),
        &EncodingKey::from_secret(CLIENT_ID.as_bytes()),
    )
    .unwrap();
    assert!(rejected(&auth, &hs256).await, "HS256");

    // A key the provider never published, under a published kid.
    let impostor = SigningKey::ec("ec-1");
    assert!(rejected(&auth, &impostor.sign(&idp.claims())).await);

    // ES256 is off: only RS256 accepted.
    let mut rs_only = idp.config();
    rs_only.signing_algs = vec![Algorithm::RS256];
    let rs_only = OidcAuthenticator::new(rs_only).unwrap();
    assert!(rejected(&rs_only, &token).await);
}

#[tokio::test]
async fn username_and_groups_claims_must_have_the_right_shape() {
    let key = SigningKey::rsa("rsa-1");
    let idp = Idp::start(&[&key]).await;
    let auth = idp.authenticator();
    accepted(&auth, &key.sign(&idp.claims())).await;
    for claims in [
        without(idp.claims(), "sub"),
        with(idp.claims(), "sub", json!("")),
        with(idp.claims(), "sub", json!(7)),
        with(idp.claims(), "groups", json!(7)),
        with(idp.claims(), "groups", json!(["dev", {"x": 1}])),
    ] {
        assert!(rejected(&auth, &key.sign(&claims)).await, "{claims}");
    }
    let single = with(idp.claims(), "groups", json!("dev"));
    let user = accepted(&auth, &key.sign(&single)).await;
    assert_eq!(user.groups, ["oidc:dev", AUTHENTICATED_GROUP]);

    let mut by_email = idp.config();
    by_email.username_claim = "email".into();
    by_email.username_prefix = "-".into();
    by_email
        .required_claims
        .insert("hd".into(), "example.com".into());
    let by_email = OidcAuthenticator::new(by_email).unwrap();
    let mut claims = with(idp.claims(), "email", json!("alice@example.com"));
    claims["hd"] = json!("example.com");
    claims["email_verified"] = json!(true);
    assert_eq!(
        accepted(&by_email, &key.sign(&claims)).await.name,
        "alice@example.com"
    );
    claims["email_verified"] = json!(false);
    assert!(
        rejected(&by_email, &key.sign(&claims)).await,
        "unverified email"
    );
    claims["email_verified"] = json!(true);
    claims["hd"] = json!("evil.com");
    assert!(
        rejected(&by_email, &key.sign(&claims)).await,
        "required claim"
    );
}

#[tokio::test]
async fn a_rotated_key_is_fetched_when_a_token_names_it() {
    let (old, new) = (SigningKey::ec("2026-11"), SigningKey::rsa("2026-12"));
    let idp = Idp::start(&[&old]).await;
    let auth = idp.authenticator();
    accepted(&auth, &old.sign(&idp.claims())).await;
    assert_eq!(idp.jwks_fetches(), 1);

    idp.set(|s| s.keys = vec![new.jwk.clone()]);
    let user = accepted(&auth, &new.sign(&idp.claims())).await;
    assert_eq!(user.name, "oidc:alice");
    assert_eq!(idp.jwks_fetches(), 2, "one refetch for the unknown kid");
    // The provider retired the old key: so do we.
    assert!(rejected(&auth, &old.sign(&idp.claims())).await);
}

#[tokio::test]
async fn unknown_kids_do_not_hammer_the_provider() {
    let key = SigningKey::ec("ec-1");
    let idp = Idp::start(&[&key]).await;
    // Default intervals: at most one fetch per 10 s.
    let auth = OidcAuthenticator::new(idp.config()).unwrap();
    accepted(&auth, &key.sign(&idp.claims())).await;
    for i in 0..5 {
        let stranger = SigningKey::ec(&format!("unknown-{i}"));
        assert!(rejected(&auth, &stranger.sign(&idp.claims())).await);
    }
    assert_eq!(idp.jwks_fetches(), 1);
    assert_eq!(
        OidcAuthenticator::default_key_refresh(),
        (Duration::from_secs(10), Duration::from_secs(300))
    );
}

#[tokio::test]
async fn a_discovery_document_naming_another_issuer_is_refused() {
    let key = SigningKey::ec("ec-1");
    let idp = Idp::start(&[&key]).await;
    let issuer = idp.issuer.clone();
    idp.set(|s| s.issuer = format!("{issuer}/evil"));
    let auth = idp.authenticator();
    assert!(!auth.prefetch().await);
    assert!(rejected(&auth, &key.sign(&idp.claims())).await);
    assert_eq!(
        idp.jwks_fetches(),
        0,
        "keys are never fetched from a mismatched issuer"
    );
}

#[tokio::test]
async fn an_unavailable_provider_is_retried_and_its_tokens_refused_meanwhile() {
    let key = SigningKey::ec("ec-1");
    let idp = Idp::start(&[&key]).await;
    idp.set(|s| s.broken = true);
    let auth = idp.authenticator();
    assert!(!auth.prefetch().await, "a failed start is not fatal");
    let token = key.sign(&idp.claims());
    assert!(rejected(&auth, &token).await);
    idp.set(|s| s.broken = false);
    accepted(&auth, &token).await;

    // Nobody listening at all.
    let gone = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut config = OidcConfig::new(format!("http://127.0.0.1:{gone}"), CLIENT_ID);
    config.allow_insecure_loopback = true;
    let auth = OidcAuthenticator::new(config.clone()).unwrap();
    let claims = with(idp.claims(), "iss", json!(config.issuer_url));
    assert!(rejected(&auth, &key.sign(&claims)).await);
}

struct NoObjects;

impl TokenLookup for NoObjects {
    fn service_account_uid(&self, _: &str, _: &str) -> Option<String> {
        None
    }
    fn pod_uid(&self, _: &str, _: &str) -> Option<String> {
        None
    }
    fn secret_uid(&self, _: &str, _: &str) -> Option<String> {
        None
    }
}

#[tokio::test]
async fn the_union_routes_oidc_tokens_to_their_issuer() -> Result<()> {
    let key = SigningKey::rsa("rsa-1");
    let idp = Idp::start(&[&key]).await;
    let auth = Authenticator::new()
        .with_admin_token(AdminToken::from_value("admin".into())?)
        .with_service_accounts(ServiceAccountTokens::generate()?)
        .with_oidc(idp.authenticator());
    assert!(auth.prefetch_oidc().await);
    assert_eq!(idp.jwks_fetches(), 1);
    let header = format!("Bearer {}", key.sign(&idp.claims()));
    let user = auth.authenticate(Some(&header), &NoObjects).await?;
    assert_eq!(user.name, "oidc:alice");
    let expired = with(idp.claims(), "exp", json!(0));
    let header = format!("Bearer {}", key.sign(&expired));
    assert_eq!(
        auth.authenticate(Some(&header), &NoObjects).await,
        Err(ApiError::Unauthorized)
    );
    Ok(())
}
