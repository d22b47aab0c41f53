//! The union authenticator, and the in-memory objects the token tests look up.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::*;
use crate::rbac::{AUTHENTICATED_GROUP, MASTERS_GROUP};

/// Service accounts, pods and secrets by (namespace, name), with their uids.
#[derive(Default)]
pub(crate) struct Objects {
    pub(crate) service_accounts: BTreeMap<(String, String), String>,
    pub(crate) pods: BTreeMap<(String, String), String>,
    pub(crate) secrets: BTreeMap<(String, String), String>,
}

fn key(ns: &str, name: &str) -> (String, String) {
    (ns.to_owned(), name.to_owned())
}

impl Objects {
    pub(crate) fn with_sa(mut self, ns: &str, name: &str, uid: &str) -> Self {
        self.service_accounts.insert(key(ns, name), uid.to_owned());
        self
    }

    pub(crate) fn with_pod(mut self, ns: &str, name: &str, uid: &str) -> Self {
        self.pods.insert(key(ns, name), uid.to_owned());
        self
    }

    pub(crate) fn with_secret(mut self, ns: &str, name: &str, uid: &str) -> Self {
        self.secrets.insert(key(ns, name), uid.to_owned());
        self
    }
}

impl TokenLookup for Objects {
    fn service_account_uid(&self, namespace: &str, name: &str) -> Option<String> {
        self.service_accounts.get(&key(namespace, name)).cloned()
    }

    fn pod_uid(&self, namespace: &str, name: &str) -> Option<String> {
        self.pods.get(&key(namespace, name)).cloned()
    }

    fn secret_uid(&self, namespace: &str, name: &str) -> Option<String> {
        self.secrets.get(&key(namespace, name)).cloned()
    }
}

fn spec() -> TokenSpec {
    TokenSpec {
        namespace: "team".into(),
        service_account: "builder".into(),
        service_account_uid: "sa-uid".into(),
        audiences: Vec::new(),
        expiration_seconds: DEFAULT_EXPIRATION_SECONDS,
        bound_object: None,
    }
}

fn authenticator() -> Authenticator {
    Authenticator::new()
        .with_admin_token(AdminToken::from_value("admin-secret".into()).unwrap())
        .with_service_accounts(ServiceAccountTokens::generate().unwrap())
}

#[tokio::test]
async fn no_header_is_anonymous_unless_anonymous_is_off() {
    let objects = Objects::default();
    let user = authenticator().authenticate(None, &objects).await.unwrap();
    assert_eq!(user.name, ANONYMOUS_USER);
    assert_eq!(user.groups, [UNAUTHENTICATED_GROUP]);
    let closed = authenticator().with_anonymous(false);
    assert_eq!(
        closed.authenticate(None, &objects).await,
        Err(ApiError::Unauthorized)
    );
}

#[tokio::test]
async fn the_admin_token_is_system_admin_in_masters() {
    let objects = Objects::default();
    let auth = authenticator();
    for header in ["Bearer admin-secret", "bearer  admin-secret "] {
        let user = auth.authenticate(Some(header), &objects).await.unwrap();
        assert_eq!(user.name, ADMIN_USER);
        assert!(user.in_group(MASTERS_GROUP));
        assert!(user.in_group(AUTHENTICATED_GROUP));
    }
    assert_eq!(
        auth.authenticate(Some("Bearer admin-secreT"), &objects)
            .await,
        Err(ApiError::Unauthorized)
    );
}

#[tokio::test]
async fn malformed_headers_and_unknown_tokens_are_unauthorized() {
    let objects = Objects::default();
    let auth = authenticator();
    let huge = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1));
    for header in [
        "",
        "Bearer",
        "Bearer ",
        "Basic YWRtaW46YWRtaW4=",
        "admin-secret",
        "Bearer admin-secret extra",
        "Bearer a.b.c",
        huge.as_str(),
    ] {
        assert_eq!(
            auth.authenticate(Some(header), &objects).await,
            Err(ApiError::Unauthorized),
            "{header:.40}"
        );
    }
}

#[tokio::test]
async fn service_account_tokens_pass_through_the_union() {
    let auth = authenticator();
    let sa = auth.service_accounts().unwrap();
    let (token, _) = sa.mint(&spec(), Timestamp::now()).unwrap();
    let objects = Objects::default().with_sa("team", "builder", "sa-uid");
    let user = auth
        .authenticate(Some(&format!("Bearer {token}")), &objects)
        .await
        .unwrap();
    assert_eq!(user, UserInfo::service_account("team", "builder"));
    assert_eq!(
        auth.authenticate(Some(&format!("Bearer {token}")), &Objects::default())
            .await,
        Err(ApiError::Unauthorized),
        "the service account is gone"
    );
}

#[test]
fn the_authenticator_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Authenticator>();
}

#[test]
fn authentication_futures_can_move_across_threads() {
    fn assert_send<T: Send>(_: &T) {}
    let auth = authenticator();
    let objects = Objects::default();
    let future = auth.authenticate(Some("Bearer x"), &objects);
    assert_send(&future);
}
