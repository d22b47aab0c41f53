//! The authentication and authorization filter every request passes: who sent it (a bearer
//! token, or nobody), whom it acts as (impersonation, authorized by RBAC), and whether RBAC
//! allows what it asks for. What passes carries its [`UserInfo`] and [`Requester`].

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::admission::Requester;
use crate::authz::{ANONYMOUS_USER, impersonate, request_attributes};
use crate::error::{ApiError, Result};
use crate::rbac::{AUTHENTICATED_GROUP, MASTERS_GROUP, UNAUTHENTICATED_GROUP, UserInfo};

/// Paths a request without credentials may reach (still subject to RBAC, which grants them to
/// `system:unauthenticated`); any other anonymous request is answered 401, as kube-apiserver's
/// anonymous authenticator does when limited to these paths.
pub const ANONYMOUS_PATHS: &[&str] = &["/healthz", "/livez", "/readyz", "/version"];

pub(super) async fn filter(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    match identify(&state, &req) {
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

fn identify(state: &AppState, req: &Request) -> Result<UserInfo> {
    let user = authenticate(state, req)?;
    let user = impersonate(&state.rbac, &state.store, user, req.headers())?;
    let watch = req.uri().query().is_some_and(|q| {
        q.split('&')
            .any(|kv| kv == "watch=true" || kv == "watch=1" || kv == "watch")
    });
    let attrs = request_attributes(user.clone(), req.method().as_str(), req.uri().path(), watch);
    state.rbac.check(&state.store, &attrs)?;
    Ok(user)
}

fn authenticate(state: &AppState, req: &Request) -> Result<UserInfo> {
    let Some(token) = &state.token else {
        return Ok(admin());
    };
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        if ANONYMOUS_PATHS.contains(&req.uri().path()) {
            return Ok(UserInfo::new(ANONYMOUS_USER, [UNAUTHENTICATED_GROUP]));
        }
        return Err(ApiError::Unauthorized);
    };
    let presented = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthorized)?;
    if presented == &**token {
        return Ok(admin());
    }
    Err(ApiError::Unauthorized)
}

fn admin() -> UserInfo {
    UserInfo::new("system:admin", [MASTERS_GROUP, AUTHENTICATED_GROUP])
}
