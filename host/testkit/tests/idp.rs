//! The development OpenID Provider, driven over real HTTPS: every demo user signs in through the
//! login form with code + PKCE, wrong passwords are refused, refresh tokens work.

use std::time::Duration;

use vdi_testkit::DevIdp;
use vdi_testkit::idp::{ALL_SCOPES, CLI_CLIENT, DASHBOARD_CLIENT, DEMO_USERS};

#[tokio::test]
async fn every_demo_user_gets_an_id_token_with_their_groups() {
    let idp = DevIdp::start();
    for &(user, password, groups) in DEMO_USERS {
        let tokens = idp.login(user, password, CLI_CLIENT, ALL_SCOPES).await;
        let claims = tokens.id_claims();
        assert_eq!(claims["iss"], idp.issuer(), "{claims}");
        assert_eq!(claims["aud"], CLI_CLIENT, "{claims}");
        assert_eq!(claims["sub"], user, "{claims}");
        assert_eq!(claims["preferred_username"], user, "{claims}");
        assert_eq!(claims["email"], format!("{user}@example.test"), "{claims}");
        assert_eq!(claims["email_verified"], true, "{claims}");
        assert_eq!(claims["groups"], serde_json::json!(groups), "{claims}");
        assert!(
            tokens.refresh_token.is_some(),
            "offline_access was asked for"
        );
        assert!(tokens.expires_in > 0);
    }
    assert!(idp.issuer().starts_with("https://127.0.0.1:"));
}

#[tokio::test]
async fn only_the_requested_scopes_reach_the_id_token() {
    let idp = DevIdp::start();
    let tokens = idp
        .login("carol", "carol-password", DASHBOARD_CLIENT, &["openid"])
        .await;
    let claims = tokens.id_claims();
    assert_eq!(claims["sub"], "carol");
    assert_eq!(claims["aud"], DASHBOARD_CLIENT);
    assert!(claims.get("groups").is_none(), "{claims}");
    assert!(claims.get("email").is_none(), "{claims}");
    assert!(
        tokens.refresh_token.is_none(),
        "no offline_access, no refresh token"
    );
}

#[tokio::test]
async fn wrong_passwords_and_unknown_users_are_refused() {
    let idp = DevIdp::start();
    let message = idp.login_error("alice", "bob-password").await;
    assert_eq!(message, "Unknown user or wrong password.");
    idp.login_error("mallory", "mallory-password").await;
    idp.login_error("alice", "").await;
}

#[tokio::test]
async fn a_refresh_token_buys_a_new_id_token_once() {
    let idp = DevIdp::start();
    let first = idp
        .login("bob", "bob-password", CLI_CLIENT, ALL_SCOPES)
        .await;
    // ID tokens carry seconds; a second later the new one must differ.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let refresh = first.refresh_token.as_deref().expect("refresh token");
    let second = idp.refresh(refresh, CLI_CLIENT).await;
    assert_ne!(second.id_token, first.id_token);
    let (old, new) = (first.id_claims(), second.id_claims());
    assert_eq!(new["sub"], "bob");
    assert_eq!(new["groups"], serde_json::json!(["staff"]));
    assert!(new["iat"].as_u64() > old["iat"].as_u64(), "{old} -> {new}");
    assert_ne!(second.refresh_token.as_deref(), Some(refresh), "rotated");
}
