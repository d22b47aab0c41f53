//! API errors as Kubernetes `metav1.Status` objects with the conventional code and reason.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error the API answers with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// 404 NotFound.
    #[error("{resource} \"{name}\" not found")]
    NotFound {
        /// Plural resource, e.g. `pods` or `vdisessions.vdi.dev`.
        resource: String,
        /// Object name.
        name: String,
    },
    /// 404 NotFound for a path that names no served group, version, resource or subresource,
    /// worded as kube-apiserver words it.
    #[error("the server could not find the requested resource")]
    UnknownResource,
    /// 409 AlreadyExists.
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists {
        /// Plural resource.
        resource: String,
        /// Object name.
        name: String,
    },
    /// 409 Conflict (stale resourceVersion).
    #[error(
        "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
    )]
    Conflict {
        /// Plural resource.
        resource: String,
        /// Object name.
        name: String,
    },
    /// 409 Conflict of a server-side apply with fields other managers own.
    #[error("{message}")]
    ApplyConflict {
        /// Kind of the object.
        kind: String,
        /// Object name.
        name: String,
        /// The conflicts, one per line.
        message: String,
    },
    /// 422 Invalid, naming the field.
    #[error("{kind} \"{name}\" is invalid: {field}: {reason}")]
    Invalid {
        /// Kind of the object.
        kind: String,
        /// Object name.
        name: String,
        /// Path of the field.
        field: String,
        /// Why.
        reason: String,
    },
    /// 400 BadRequest.
    #[error("{0}")]
    BadRequest(String),
    /// 403 Forbidden, e.g. an admission hook's denial (shown to the client verbatim).
    #[error("{0}")]
    Forbidden(String),
    /// 401 Unauthorized.
    #[error("Unauthorized")]
    Unauthorized,
    /// 405 MethodNotAllowed.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 410 Gone (watch or continue token too old).
    #[error("too old resource version: {requested} ({oldest})")]
    Gone {
        /// The version asked for.
        requested: u64,
        /// The oldest version still known.
        oldest: u64,
    },
    /// 413 RequestEntityTooLarge: the request body is over the limit.
    #[error("Request entity too large: limit is {limit} bytes")]
    RequestEntityTooLarge {
        /// The largest body accepted, in bytes.
        limit: usize,
    },
    /// 415 UnsupportedMediaType: a body in a type (or, in protobuf, of a kind) not accepted;
    /// the message says what is.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 500, logged with its cause.
    #[error("Internal error occurred: {0}")]
    Internal(String),
}

impl ApiError {
    /// HTTP status and Kubernetes reason.
    pub fn code_and_reason(&self) -> (StatusCode, &'static str) {
        match self {
            Self::NotFound { .. } | Self::UnknownResource => (StatusCode::NOT_FOUND, "NotFound"),
            Self::AlreadyExists { .. } => (StatusCode::CONFLICT, "AlreadyExists"),
            Self::Conflict { .. } | Self::ApplyConflict { .. } => {
                (StatusCode::CONFLICT, "Conflict")
            }
            Self::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "Invalid"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "BadRequest"),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "Unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "Forbidden"),
            Self::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
            Self::Gone { .. } => (StatusCode::GONE, "Expired"),
            Self::RequestEntityTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge")
            }
            Self::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType")
            }
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
        }
    }

    /// The `metav1.Status` body.
    pub fn status(&self) -> serde_json::Value {
        let (code, reason) = self.code_and_reason();
        let mut details = serde_json::Map::new();
        match self {
            Self::NotFound { resource, name }
            | Self::AlreadyExists { resource, name }
            | Self::Conflict { resource, name } => {
                let (res, group) = resource.split_once('.').unwrap_or((resource, ""));
                details.insert("name".into(), json!(name));
                details.insert("group".into(), json!(group));
                details.insert("kind".into(), json!(res));
            }
            Self::Invalid {
                kind,
                name,
                field,
                reason,
            } => {
                details.insert("name".into(), json!(name));
                details.insert("kind".into(), json!(kind));
                details.insert(
                    "causes".into(),
                    json!([{ "reason": "FieldValueInvalid", "message": format!("Invalid value: {reason}"), "field": field }]),
                );
            }
            _ => {}
        }
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": reason,
            "details": details,
            "code": code.as_u16(),
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(cause) = &self {
            tracing::error!(%cause, "internal API error");
        }
        let (code, _) = self.code_and_reason();
        (code, axum::Json(self.status())).into_response()
    }
}

/// Results of API operations.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;
