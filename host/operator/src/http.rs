//! The operator's HTTP endpoints: health, Prometheus metrics, the admission webhooks
//! (`AdmissionReview` v1) and module uploads into the content-addressed store.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use kube::core::DynamicObject;
use kube::core::admission::AdmissionReview;
use kube::runtime::reflector::Store;
use serde_json::json;
use vdi_crd::{VDISession, VDITemplate};

use crate::admission::answer_review;
use crate::metrics::OperatorMetrics;
use crate::registry::Registry;
use crate::session::CachedSources;

/// What the endpoints need.
#[derive(Clone)]
pub(crate) struct HttpState {
    pub(crate) registry: Arc<Registry>,
    pub(crate) metrics: Arc<OperatorMetrics>,
    pub(crate) sessions: Store<VDISession>,
    pub(crate) templates: Store<VDITemplate>,
    pub(crate) upload_token: Option<Arc<str>>,
}

pub(crate) fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/validate", post(validate))
        .route("/mutate", post(mutate))
        .route("/modules", put(upload))
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

fn answer(s: &HttpState, review: AdmissionReview<DynamicObject>, mutate: bool) -> Response {
    let set = s.registry.current();
    let sources = CachedSources {
        sessions: &s.sessions,
        templates: &s.templates,
    };
    Json(answer_review(&set, &sources, review, mutate)).into_response()
}

async fn validate(
    State(s): State<HttpState>,
    Json(review): Json<AdmissionReview<DynamicObject>>,
) -> Response {
    answer(&s, review, false)
}

async fn mutate(
    State(s): State<HttpState>,
    Json(review): Json<AdmissionReview<DynamicObject>>,
) -> Response {
    answer(&s, review, true)
}

async fn upload(State(s): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(token) = &s.upload_token else {
        return (
            StatusCode::FORBIDDEN,
            Json(
                json!({"error": "uploads are disabled (start the operator with an upload token)"}),
            ),
        )
            .into_response();
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if presented != Some(&**token) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "a valid bearer token is required"})),
        )
            .into_response();
    }
    if let Err(e) = s.registry.runtime().inspect(&body) {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": format!("not a plugin component: {e}")})),
        )
            .into_response();
    }
    match s.registry.fetcher().store().put(&body) {
        Ok(digest) => (
            StatusCode::CREATED,
            Json(json!({"sha256": digest.to_string(), "size": body.len()})),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}
