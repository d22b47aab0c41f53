//! The authentication and authorization filter every request passes: who sent it (a bearer
//! token, or nobody), whom it acts as (impersonation, authorized by RBAC), and whether RBAC
//! allows what it asks for. What passes carries its [`UserInfo`] and [`Requester`]. Also the
//! two token endpoints: TokenReview and the TokenRequest subresource.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{AppState, Target};
use crate::admission::Requester;
use crate::authz::{impersonate, request_attributes};
use crate::input::json_body;

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
    // Decoded as the handler decodes it (`?watch=%74rue` is a watch for both).
    let watch =
        axum::extract::Query::<std::collections::HashMap<String, String>>::try_from_uri(uri)
            .is_ok_and(|q| super::wants_watch(&q));
    let attrs = request_attributes(user.clone(), method.as_str(), uri.path(), watch);
    state.rbac.check(&state.store, &attrs)?;
    Ok(user)
}

/// Answers a TokenReview: who `spec.token` authenticates as (`status.authenticated` false
/// when nobody), for servers that accept the cluster's tokens.
pub(super) async fn token_review(state: &AppState, body: &Bytes) -> Result<Value> {
    let mut review: Value = json_body(body)?;
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
    // The audiences the caller accepts: the server's own when it names none. A token is
    // authenticated for a caller only when one of them is the server's (the audience every token
    // it accepts is checked against), so a token for this API is not one for another service.
    let ours: Vec<String> = state
        .authn
        .service_accounts()
        .map(|sa| sa.api_audiences().to_vec())
        .unwrap_or_default();
    let bad = || ApiError::BadRequest("spec.audiences must be a list of strings".into());
    let requested: Vec<String> = match &review["spec"]["audiences"] {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .iter()
            .map(|a| a.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    let shared: Vec<String> = if requested.is_empty() {
        ours.clone()
    } else {
        requested.into_iter().filter(|a| ours.contains(a)).collect()
    };
    let status = if shared.is_empty() {
        json!({"authenticated": false, "error": "the token's audiences do not include any requested audience"})
    } else {
        match state
            .authn
            .authenticate(Some(&format!("Bearer {token}")), &StoreLookup(&state.store))
            .await
        {
            Ok(user) => json!({"authenticated": true, "audiences": shared,
                "user": {"username": user.name, "groups": user.groups}}),
            Err(_) => json!({"authenticated": false, "error": "invalid bearer token"}),
        }
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
    /// The uid of `plural/name` in `ns`, while `ns` exists and is not being deleted: a token
    /// of a deleted namespace's account dies with the namespace.
    fn uid(&self, plural: &str, ns: &str, name: &str) -> Option<String> {
        let namespaces = self.0.registry.find("", "v1", "namespaces")?;
        let namespace = self.0.get(&namespaces, "", ns).ok()?;
        if namespace["metadata"]["deletionTimestamp"].is_string() {
            return None;
        }
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

/// `POST serviceaccounts/<name>/token`: a TokenRequest answered with a token for the account.
pub(super) fn token_request(state: &AppState, t: &Target, body: &Bytes) -> Result<Response> {
    let name = t.name.as_deref().unwrap_or_default();
    let account = state.store.get(&t.rt, &t.ns, name)?;
    let uid = account["metadata"]["uid"].as_str().unwrap_or_default();
    let issuer = state
        .authn
        .service_accounts()
        .ok_or_else(|| ApiError::Internal("this server issues no service-account tokens".into()))?;
    let request = json_body(body)?;
    // A token bound to a pod must be for the account that pod runs as.
    let bound = &request["spec"]["boundObjectRef"];
    if bound["kind"].as_str() == Some("Pod")
        && let Some(pod_name) = bound["name"].as_str()
        && let Some(pods) = state.store.registry.find("", "v1", "pods")
        && let Ok(pod) = state.store.get(&pods, &t.ns, pod_name)
    {
        let runs_as = pod["spec"]["serviceAccountName"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or("default");
        if runs_as != name {
            return Err(ApiError::Invalid {
                kind: "TokenRequest".into(),
                name: name.to_owned(),
                field: "spec.boundObjectRef".into(),
                reason: format!(
                    "pod {pod_name:?} runs as service account {runs_as:?}, not {name:?}"
                ),
            });
        }
    }
    let answer = issuer.token_request(
        &t.ns,
        name,
        uid,
        &request,
        &StoreLookup(&state.store),
        jiff::Timestamp::now(),
    )?;
    Ok((StatusCode::CREATED, axum::Json(answer)).into_response())
}
