//! The HTTP side: `/graphql` (POST for operations, GET for GraphiQL) and `/graphql/ws`
//! (graphql-transport-ws, authenticated in `connection_init`), the body cap and CORS.

use async_graphql::Data;
use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, GraphiQLSource, MultipartOptions};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt as _;
use serde_json::{Value, json};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::{self, Caller};
use crate::error::ApiError;
use crate::schema::{self, ApiSchema};
use crate::state::ApiState;

/// The path of operations and GraphiQL.
pub const GRAPHQL_PATH: &str = "/graphql";
/// The path of subscriptions.
pub const WS_PATH: &str = "/graphql/ws";

/// Room for a multipart request's `operations`, `map` and part headers beside the file.
const MULTIPART_OVERHEAD: usize = 64 * 1024;

#[derive(Clone)]
struct App {
    state: ApiState,
    schema: ApiSchema,
}

/// The API's routes: `POST /graphql`, `GET /graphql` (GraphiQL) and `GET /graphql/ws`.
pub fn router(state: ApiState) -> Router {
    let config = state.config().clone();
    let schema = schema::build(&config).data(state.clone()).finish();
    let app = App { state, schema };
    let router = Router::new()
        .route(GRAPHQL_PATH, get(graphiql).post(execute))
        .route(WS_PATH, get(subscribe))
        .with_state(app);
    match config
        .dashboard_origin
        .as_deref()
        .and_then(|o| HeaderValue::from_str(o).ok())
    {
        Some(origin) => router.layer(
            CorsLayer::new()
                // A list (not `exact`): other origins get no Access-Control-Allow-Origin.
                .allow_origin(AllowOrigin::list([origin]))
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]),
        ),
        None => router,
    }
}

async fn graphiql() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint(GRAPHQL_PATH)
            .subscription_endpoint(WS_PATH)
            .title("VDI API")
            .finish(),
    )
}

/// A GraphQL error response outside execution (no `data`).
fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"errors": [{"message": message, "extensions": {"code": code}}]}).to_string(),
    )
        .into_response()
}

async fn execute(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
    // Who asks comes first: a body may be as large as a module only for someone signed in.
    let config = app.state.config();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let caller = match sign_in(&app.state, authorization).await {
        Ok(c) => c,
        Err(e) => {
            // Read what an ordinary request may hold, so the client hears the answer rather
            // than a connection closed under its upload.
            let _ = read_limited(body, config.max_body_bytes).await;
            return error_response(StatusCode::UNAUTHORIZED, e.code(), &e.to_string());
        }
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let multipart = content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data");
    let limit = if multipart {
        config.max_upload_bytes.saturating_add(MULTIPART_OVERHEAD)
    } else {
        config.max_body_bytes
    };
    let too_large = || {
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            &format!("the request body is larger than {limit} bytes"),
        )
    };
    let body = match read_limited(body, limit).await {
        Ok(b) => b,
        Err(ReadError::TooLarge) => return too_large(),
        Err(ReadError::Failed(e)) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                &format!("the request body could not be read: {e}"),
            );
        }
    };
    let request = if multipart {
        let options = MultipartOptions::default()
            .max_file_size(config.max_upload_bytes)
            .max_num_files(1);
        async_graphql::http::receive_body(
            Some(content_type),
            futures::io::Cursor::new(body),
            options,
        )
        .await
        .map_err(|e| format!("the multipart request is malformed: {e}"))
    } else {
        serde_json::from_slice::<async_graphql::Request>(&body)
            .map_err(|e| format!("the body is not a GraphQL request (JSON with `query`): {e}"))
    };
    let request = match request {
        Ok(r) => r,
        Err(message) => {
            return error_response(StatusCode::BAD_REQUEST, "BAD_REQUEST", &message);
        }
    };
    let response = app.schema.execute(request.data(caller)).await;
    let mut body = match serde_json::to_value(&response) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "could not serialise a GraphQL response");
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_SERVER_ERROR",
                "internal error",
            );
        }
    };
    let status = mark_request_errors(&mut body);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// How much of an oversize body is read and dropped before the answer, so that a client still
/// sending hears the answer rather than a connection closed under it.
const DRAIN_BYTES: usize = 1 << 20;

/// Why a body was not read.
#[derive(Debug, PartialEq, Eq)]
enum ReadError {
    /// It is larger than the limit.
    TooLarge,
    /// The connection failed.
    Failed(String),
}

/// The body, if it holds at most `limit` bytes; past that, up to [`DRAIN_BYTES`] more are read
/// and dropped.
async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ReadError> {
    let mut stream = body.into_data_stream();
    let mut kept: Vec<u8> = Vec::new();
    let mut seen: usize = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ReadError::Failed(e.to_string()))?;
        seen = seen.saturating_add(chunk.len());
        if seen <= limit {
            kept.extend_from_slice(&chunk);
        } else if seen > limit.saturating_add(DRAIN_BYTES) {
            break;
        }
    }
    if seen > limit {
        Err(ReadError::TooLarge)
    } else {
        Ok(Bytes::from(kept))
    }
}

/// Errors that stopped the operation before it ran (parse, validation, depth, complexity)
/// carry no code: they get `GRAPHQL_VALIDATION_FAILED` and the answer is a 400.
fn mark_request_errors(body: &mut Value) -> StatusCode {
    let ran = body.get("data").is_some_and(|d| !d.is_null());
    let Some(errors) = body.get_mut("errors").and_then(Value::as_array_mut) else {
        return StatusCode::OK;
    };
    let mut refused = false;
    for e in errors {
        let has_code = e.pointer("/extensions/code").is_some();
        if !has_code && !ran && e.get("path").is_none() {
            refused = true;
            if let Some(obj) = e.as_object_mut() {
                obj.insert(
                    "extensions".into(),
                    json!({"code": "GRAPHQL_VALIDATION_FAILED"}),
                );
            }
        }
    }
    if refused {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    }
}

async fn sign_in(state: &ApiState, authorization: Option<&str>) -> Result<Caller, ApiError> {
    let token = auth::bearer(authorization)?;
    auth::authenticate(&state.inner.oidc, token).await
}

async fn subscribe(
    State(app): State<App>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let App { state, schema } = app;
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |params| connection_init(state, params))
                .serve()
        })
}

/// Browsers cannot set headers on a WebSocket: the token comes in `connection_init`'s payload
/// as `authorization` (`Bearer …`) or `token`.
async fn connection_init(state: ApiState, params: Value) -> async_graphql::Result<Data> {
    let header = init_authorization(&params);
    let caller = sign_in(&state, header.as_deref()).await?;
    let mut data = Data::default();
    data.insert(caller);
    if let Some(exp) = auth::bearer(header.as_deref())
        .ok()
        .and_then(auth::token_expiry)
    {
        data.insert(exp);
    }
    Ok(data)
}

/// The `Authorization` value a `connection_init` payload carries: `authorization` as is, or
/// `token` as a bearer token.
fn init_authorization(params: &Value) -> Option<String> {
    match (params.get("authorization"), params.get("token")) {
        (Some(Value::String(a)), _) => Some(a.clone()),
        (_, Some(Value::String(t))) => Some(format!("Bearer {t}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_is_read_up_to_its_limit() {
        let ok = read_limited(Body::from(vec![7u8; 5]), 5).await.unwrap();
        assert_eq!(ok.len(), 5);
        let over = read_limited(Body::from(vec![7u8; 6]), 5).await;
        assert_eq!(over, Err(ReadError::TooLarge));
        let huge = read_limited(Body::from(vec![7u8; 3 * DRAIN_BYTES]), 5).await;
        assert_eq!(huge, Err(ReadError::TooLarge));
    }

    #[test]
    fn a_websocket_signs_in_with_its_init_payload() {
        let header = init_authorization(&json!({"authorization": "Bearer abc"}));
        assert_eq!(header.as_deref(), Some("Bearer abc"));
        let header = init_authorization(&json!({"token": "abc"}));
        assert_eq!(header.as_deref(), Some("Bearer abc"));
        assert_eq!(init_authorization(&json!({"token": 7})), None);
        assert_eq!(init_authorization(&Value::Null), None);
    }

    #[test]
    fn refused_operations_get_a_code_and_a_400() {
        let mut body = json!({"data": null, "errors": [{"message": "Query is nested too deep."}]});
        assert_eq!(mark_request_errors(&mut body), StatusCode::BAD_REQUEST);
        assert_eq!(
            body["errors"][0]["extensions"]["code"],
            "GRAPHQL_VALIDATION_FAILED"
        );
    }

    #[test]
    fn resolver_errors_keep_their_code_and_a_200() {
        let mut body = json!({"data": null, "errors": [
            {"message": "x", "path": ["session"], "extensions": {"code": "NOT_FOUND"}}]});
        assert_eq!(mark_request_errors(&mut body), StatusCode::OK);
        assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND");
        let mut ok = json!({"data": {"me": {}}});
        assert_eq!(mark_request_errors(&mut ok), StatusCode::OK);
    }
}
