//! The crate's one error type and how Kubernetes' answers map onto GraphQL error codes.
//!
//! Every error reaches the client as a GraphQL error with `extensions.code`; user mistakes say
//! what was wrong (the field, the plugin's reason), internal failures say only "internal error"
//! and are logged with their cause.

/// `Result` with the crate's error.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// The admission webhook's words before the plugin's reason (kube-apiserver's, which the
/// embedded control plane's in-process hook uses too).
const DENIED_MARKER: &str = "denied the request: ";

/// Why a GraphQL operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// No valid bearer token.
    #[error("not signed in: {0}")]
    Unauthenticated(String),
    /// An admission plugin refused the request; the reason is the plugin's.
    #[error("denied: {reason}")]
    Denied {
        /// The plugin's reason.
        reason: String,
    },
    /// RBAC (or the API's own ownership check) refused.
    #[error("{0}")]
    Forbidden(String),
    /// The object does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Invalid input: `field` names the argument or field at fault.
    #[error("{field}: {reason}")]
    BadInput {
        /// The argument or field (`timeout`, `spec.image`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The object changed or exists already.
    #[error("{0}")]
    Conflict(String),
    /// Too many mutations from this user.
    #[error("too many mutations: try again in {retry_after_secs} s")]
    RateLimited {
        /// Seconds until the next mutation is allowed.
        retry_after_secs: u64,
    },
    /// Anything else; the cause is logged, never shown.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// An invalid-input error naming `field`.
    pub fn bad_input(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::BadInput {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// An internal error; `cause` is logged when it reaches the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    /// The GraphQL `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::Denied { .. } => "DENIED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::BadInput { .. } => "BAD_USER_INPUT",
            Self::Conflict(_) => "CONFLICT",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    /// The error Kubernetes answered with `code` and `message` (a `Status`).
    pub fn from_status(code: u16, message: &str) -> Self {
        match code {
            401 => Self::Unauthenticated(message.to_owned()),
            403 => match message.find(DENIED_MARKER) {
                Some(at) if message.contains("admission webhook") => Self::Denied {
                    reason: message
                        .get(at + DENIED_MARKER.len()..)
                        .unwrap_or_default()
                        .to_owned(),
                },
                _ => Self::Forbidden(message.to_owned()),
            },
            404 => Self::NotFound(message.to_owned()),
            409 => Self::Conflict(message.to_owned()),
            400 | 422 => Self::bad_input(invalid_field(message), message),
            429 => Self::RateLimited {
                retry_after_secs: 1,
            },
            _ => Self::internal(format!("Kubernetes answered {code}: {message}")),
        }
    }
}

/// The field a Kubernetes validation message names (`VDISession "x" is invalid: spec.timeout:
/// …` → `spec.timeout`), else `input`.
fn invalid_field(message: &str) -> String {
    message
        .split_once("is invalid: ")
        .and_then(|(_, rest)| rest.split_once(':'))
        .map(|(field, _)| field.trim().to_owned())
        .filter(|f| !f.is_empty() && !f.contains(' '))
        .unwrap_or_else(|| "input".to_owned())
}

impl From<kube::Error> for ApiError {
    fn from(e: kube::Error) -> Self {
        match e {
            kube::Error::Api(status) => Self::from_status(status.code, &status.message),
            other => Self::internal(other),
        }
    }
}

/// Gives a resolver's error its `extensions` (`code`, and `reason`, `field` or
/// `retryAfterSeconds`) when it was an [`ApiError`], and logs the cause of an internal one.
/// (async-graphql turns any `Display` error into its own, keeping the original as the source.)
pub fn decorate(err: &mut async_graphql::ServerError) {
    let Some(e) = err.source::<ApiError>().cloned() else {
        return;
    };
    if let ApiError::Internal(cause) = &e {
        tracing::error!(%cause, path = ?err.path, "GraphQL operation failed");
    }
    let ext = err.extensions.get_or_insert_with(Default::default);
    ext.set("code", e.code());
    match e {
        ApiError::Denied { reason } => ext.set("reason", reason),
        ApiError::BadInput { field, .. } => ext.set("field", field),
        ApiError::RateLimited { retry_after_secs } => {
            ext.set("retryAfterSeconds", retry_after_secs)
        }
        _ => {}
    }
}

/// The schema extension that runs [`decorate`] on every response, subscriptions' included.
pub struct ErrorCodes;

impl async_graphql::extensions::ExtensionFactory for ErrorCodes {
    fn create(&self) -> std::sync::Arc<dyn async_graphql::extensions::Extension> {
        std::sync::Arc::new(ErrorCodes)
    }
}

fn decorate_all(mut r: async_graphql::Response) -> async_graphql::Response {
    r.errors.iter_mut().for_each(decorate);
    r
}

#[async_graphql::async_trait::async_trait]
impl async_graphql::extensions::Extension for ErrorCodes {
    async fn execute(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: async_graphql::extensions::NextExecute<'_>,
    ) -> async_graphql::Response {
        decorate_all(next.run(ctx, operation_name).await)
    }

    fn subscribe<'s>(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        stream: futures::stream::BoxStream<'s, async_graphql::Response>,
        next: async_graphql::extensions::NextSubscribe<'_>,
    ) -> futures::stream::BoxStream<'s, async_graphql::Response> {
        use futures::StreamExt as _;
        next.run(ctx, stream).map(decorate_all).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_admission_denial_carries_the_plugins_reason() {
        let e = ApiError::from_status(
            403,
            "admission webhook \"vdisessions.vdi.dev\" denied the request: template \"x\" is not allowed",
        );
        assert_eq!(
            e,
            ApiError::Denied {
                reason: "template \"x\" is not allowed".into()
            }
        );
        assert_eq!(e.code(), "DENIED");
    }

    #[test]
    fn an_rbac_refusal_is_forbidden() {
        let e = ApiError::from_status(
            403,
            "vdisessions.vdi.dev \"desk\" is forbidden: User \"oidc:bob\" cannot get resource",
        );
        assert_eq!(e.code(), "FORBIDDEN");
        // A webhook that is not ready is no plugin's decision.
        let e = ApiError::from_status(
            403,
            "admission webhook \"vdisessions.vdi.dev\" is not ready: the plugins are still loading",
        );
        assert_eq!(e.code(), "FORBIDDEN");
    }

    #[test]
    fn other_codes_map_to_their_kind() {
        assert_eq!(ApiError::from_status(401, "no").code(), "UNAUTHENTICATED");
        assert_eq!(ApiError::from_status(404, "gone").code(), "NOT_FOUND");
        assert_eq!(ApiError::from_status(409, "exists").code(), "CONFLICT");
        assert_eq!(ApiError::from_status(429, "slow").code(), "RATE_LIMITED");
        assert_eq!(
            ApiError::from_status(500, "boom").code(),
            "INTERNAL_SERVER_ERROR"
        );
    }

    #[test]
    fn a_validation_error_names_its_field() {
        let e = ApiError::from_status(
            422,
            "VDISession \"d\" is invalid: spec.timeout: Invalid value: \"x\": must match",
        );
        assert_eq!(
            e,
            ApiError::bad_input(
                "spec.timeout",
                "VDISession \"d\" is invalid: spec.timeout: Invalid value: \"x\": must match"
            )
        );
        assert_eq!(
            ApiError::from_status(400, "bad request").code(),
            "BAD_USER_INPUT"
        );
        assert!(matches!(
            ApiError::from_status(400, "bad"),
            ApiError::BadInput { field, .. } if field == "input"
        ));
    }

    fn served(e: ApiError) -> async_graphql::ServerError {
        let mut e = async_graphql::Error::from(e)
            .into_server_error(async_graphql::Pos { line: 1, column: 1 });
        decorate(&mut e);
        e
    }

    #[test]
    fn an_internal_error_hides_its_cause_from_the_client() {
        let e = served(ApiError::internal("database password is hunter2"));
        assert_eq!(e.message, "internal error");
        let ext = serde_json::to_value(&e.extensions).unwrap();
        assert_eq!(ext["code"], "INTERNAL_SERVER_ERROR");
    }

    #[test]
    fn extensions_carry_the_code_and_the_details() {
        let e = served(ApiError::bad_input("timeout", "not a duration"));
        let ext = serde_json::to_value(&e.extensions).unwrap();
        assert_eq!(ext["code"], "BAD_USER_INPUT");
        assert_eq!(ext["field"], "timeout");
        assert_eq!(e.message, "timeout: not a duration");
        let e = served(ApiError::Denied {
            reason: "no GPUs for you".into(),
        });
        let ext = serde_json::to_value(&e.extensions).unwrap();
        assert_eq!(
            (ext["code"].as_str(), ext["reason"].as_str()),
            (Some("DENIED"), Some("no GPUs for you"))
        );
    }

    #[test]
    fn other_errors_are_left_alone() {
        let mut e = async_graphql::Error::new("plain")
            .into_server_error(async_graphql::Pos { line: 1, column: 1 });
        decorate(&mut e);
        assert!(e.extensions.is_none());
    }
}
