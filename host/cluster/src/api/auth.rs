//! The authentication and authorization filter every request passes: who sent it (a bearer
//! token, or nobody), whom it acts as (impersonation, authorized by RBAC), and whether RBAC
//! allows what it asks for. What passes carries its [`UserInfo`] and [`Requester`].

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::admission::Requester;
use crate::authz::{impersonate, request_attributes};
use serde_json::{Value, json};

use crate::authn::TokenLookup;
use crate::error::{ApiError, Result};
use crate::rbac::UserInfo;
use crate::store::Store;

/// Paths a request without credentials may reach (still subject to RBAC, which grants them to
/// `system:unauthenticated`); any other anonymous request is answered 401, as kube-apiserver's
/// anonymous authenticator does when limited to these paths.
pub const ANONYMOUS_PATHS: &[&str] = &["/healthz", "/livez", "/readyz", "/version"];

pub(super) async fn filter(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let (headers, method, uri) = (
        req.headers().clone(),
        req.method().clone(),
        req.uri().clone(),
    );
    match identify(&state, &headers, &method, &uri).await {
        Ok(user) => {
            req.extensions_mut().insert(Requester {
                user: user.name.clone(),
                groups: user.groups.clone(),
            });
            req.extensions_mut().insert(user);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

async fn identify(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
    uri: &Uri,
) -> Result<UserInfo> {
    let authorization = match headers.get(header::AUTHORIZATION) {
        Some(value) => Some(value.to_str().map_err(|_| ApiError::Unauthorized)?),
        None if ANONYMOUS_PATHS.contains(&uri.path()) => None,
        None => return Err(ApiError::Unauthorized),
    };
    let user = state
        .authn
        .authenticate(authorization, &StoreLookup(&state.store))
        .await?;
    let user = impersonate(&state.rbac, &state.store, user, headers)?;
    let watch = uri.query().is_some_and(|q| {
        q.split('&')
            .any(|kv| kv == "watch=true" || kv == "watch=1" || kv == "watch")
    });
    let attrs = request_attributes(user.clone(), method.as_str(), uri.path(), watch);
    state.rbac.check(&state.store, &attrs)?;
    Ok(user)
}

/// Answers a TokenReview: who `spec.token` authenticates as (`status.authenticated` false
/// when nobody), for servers that accept the cluster's tokens.
pub(super) async fn token_review(state: &AppState, body: &Bytes) -> Result<Value> {
    let mut review: Value = crate::input::json_body(body)?;
    let token = review["spec"]["token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::Invalid {
            kind: "TokenReview".into(),
            name: String::new(),
            field: "spec.token".into(),
            reason: "Required value".into(),
        })?
        .to_owned();
    let status = match state
        .authn
        .authenticate(Some(&format!("Bearer {token}")), &StoreLookup(&state.store))
        .await
    {
        Ok(user) => {
            json!({"authenticated": true, "user": {"username": user.name, "groups": user.groups}})
        }
        Err(_) => json!({"authenticated": false, "error": "invalid bearer token"}),
    };
    review["status"] = status;
    review["apiVersion"] = json!("authentication.k8s.io/v1");
    review["kind"] = json!("TokenReview");
    Ok(review)
}

/// The store's answers to token validation: does the service account (pod, secret) a token
/// names still exist, and under which uid.
pub(super) struct StoreLookup<'a>(pub(super) &'a Store);

impl StoreLookup<'_> {
    fn uid(&self, plural: &str, ns: &str, name: &str) -> Option<String> {
        let rt = self.0.registry.find("", "v1", plural)?;
        let obj = self.0.get(&rt, ns, name).ok()?;
        obj["metadata"]["uid"].as_str().map(str::to_owned)
    }
}

impl TokenLookup for StoreLookup<'_> {
    fn service_account_uid(&self, namespace: &str, name: &str) -> Option<String> {
        self.uid("serviceaccounts", namespace, name)
    }

    fn pod_uid(&self, namespace: &str, name: &str) -> Option<String> {
        self.uid("pods", namespace, name)
    }

    fn secret_uid(&self, namespace: &str, name: &str) -> Option<String> {
        self.uid("secrets", namespace, name)
    }
}
