//! The operator's HTTP endpoints: health, Prometheus metrics, the admission webhooks
//! (`AdmissionReview` v1) and module uploads into the content-addressed store (`PUT /modules`,
//! bearer token; `?sha256=` pins the expected digest).

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, RequestExt as _, Router};
use kube::core::DynamicObject;
use kube::core::admission::AdmissionReview;
use kube::runtime::reflector::Store;
use serde_json::json;
use vdi_crd::{VDISession, VDITemplate};
use vdi_plugin_host::Digest;

use crate::admission::AdmissionSettings;
use crate::context::CachedSources;
use crate::metrics::OperatorMetrics;
use crate::modules::MAX_MODULE_BYTES;
use crate::registry::Registry;
use crate::webhook::answer_review;

/// What the endpoints need.
#[derive(Clone)]
pub(crate) struct HttpState {
    pub(crate) registry: Arc<Registry>,
    pub(crate) metrics: Arc<OperatorMetrics>,
    pub(crate) sessions: Store<VDISession>,
    pub(crate) templates: Store<VDITemplate>,
    pub(crate) upload_token: Option<Arc<str>>,
    /// Who the admission webhooks trust to act for other users.
    pub(crate) admission: Arc<AdmissionSettings>,
}

pub(crate) fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/validate", post(validate))
        .route("/mutate", post(mutate))
        .route(
            "/modules",
            put(upload).layer(DefaultBodyLimit::max(MAX_MODULE_BYTES)),
        )
        .with_state(state)
}

async fn readyz(State(s): State<HttpState>) -> Response {
    if s.registry.current().version > 0 {
        "ready".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "plugins not loaded yet").into_response()
    }
}

async fn metrics(State(s): State<HttpState>) -> Response {
    let body = s
        .metrics
        .encode_with(&s.registry.runtime().metrics().encode());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Answers on the plugin pool (never on this async worker); a pool that cannot answer is a
/// 500, which the API server treats by the webhook's failure policy.
async fn answer(s: &HttpState, review: AdmissionReview<DynamicObject>, mutate: bool) -> Response {
    let set = s.registry.current();
    let (sessions, templates) = (s.sessions.clone(), s.templates.clone());
    let settings = s.admission.clone();
    let budget = crate::calls::admission_budget(&set);
    let judged = s.registry.runtime().pool().run(budget, move || {
        let sources = CachedSources {
            sessions: &sessions,
            templates: &templates,
        };
        answer_review(&set, &sources, &settings, review, mutate)
    });
    match judged.await {
        Ok(review) => Json(review).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "admission review gave no answer");
            (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
        }
    }
}

async fn validate(
    State(s): State<HttpState>,
    Json(review): Json<AdmissionReview<DynamicObject>>,
) -> Response {
    answer(&s, review, false).await
}

async fn mutate(
    State(s): State<HttpState>,
    Json(review): Json<AdmissionReview<DynamicObject>>,
) -> Response {
    answer(&s, review, true).await
}

/// What `PUT /modules` accepts in its query.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    /// The digest the client expects (`sha256:<hex>`); a body that hashes otherwise is refused.
    sha256: Option<String>,
}

fn refuse(code: StatusCode, message: impl Into<String>) -> Response {
    (code, Json(json!({"error": message.into()}))).into_response()
}

fn too_large() -> Response {
    refuse(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "a module may be at most {MAX_MODULE_BYTES} bytes ({} MiB)",
            MAX_MODULE_BYTES >> 20
        ),
    )
}

/// Whether reading a body failed because it went over the route's limit.
fn over_limit(e: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// `PUT /modules`: stores a plugin component in the cluster-wide upload store. Checks, cheapest
/// first: the token (before reading the body), the size (declared, then read under the route's
/// limit), the digest the client pinned, that it compiles as a component.
async fn upload(State(s): State<HttpState>, request: Request) -> Response {
    let Some(token) = &s.upload_token else {
        return refuse(
            StatusCode::FORBIDDEN,
            "uploads are disabled (start the operator with an upload token)",
        );
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if presented != Some(&**token) {
        return refuse(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_MODULE_BYTES as u64) {
        return too_large();
    }
    let pinned = match Query::<UploadQuery>::try_from_uri(request.uri()) {
        Ok(Query(UploadQuery { sha256: None })) => None,
        Ok(Query(UploadQuery { sha256: Some(d) })) => match d.parse::<Digest>() {
            Ok(d) => Some(d),
            Err(_) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    format!("sha256: {d:?} is not sha256:<64 hex digits>"),
                );
            }
        },
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let body = match axum::body::to_bytes(request.into_limited_body(), usize::MAX).await {
        Ok(b) => b,
        Err(e) if over_limit(&e) => return too_large(),
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("reading the body: {e}")),
    };
    if body.is_empty() {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, "the module is empty");
    }
    let runtime = s.registry.runtime().clone();
    // Hash and compile on the plugin threads, after the size check, never on an async worker.
    let checked = crate::calls::on_pool(&s.registry, crate::calls::COMPILE_BUDGET, move || {
        let digest = Digest::of(&body);
        if let Some(pinned) = pinned
            && pinned != digest
        {
            return Err(format!(
                "digest mismatch: the query pins {pinned}, the body is {digest}"
            ));
        }
        match runtime.inspect(&body) {
            Ok(i) => Ok((digest, body, i.world)),
            Err(e) => Err(format!("not a plugin component: {e}")),
        }
    })
    .await;
    let (digest, body, world) = match checked {
        Ok(Ok(c)) => c,
        Ok(Err(reason)) => return refuse(StatusCode::UNPROCESSABLE_ENTITY, reason),
        Err(e) => {
            tracing::error!(error = %e, "checking an uploaded module gave no answer");
            return refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
    };
    match s
        .registry
        .fetcher()
        .store()
        .put_digested(digest, &body)
        .await
    {
        Ok(stored) => (
            if stored.new {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            Json(json!({"sha256": digest.to_string(), "size": body.len(), "world": world})),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(%digest, error = %e, "storing an uploaded module failed");
            refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storing the module failed (see the operator's log)",
            )
        }
    }
}
