//! The platform's one HTTPS origin: the session proxy (`/sessions/…`), the GraphQL API
//! (`/graphql`, `/graphql/ws`), the dashboard's settings (`/config.json`) and its built assets
//! (everything else, with the single-page app's `index.html` for paths that name no file). One
//! origin means the dashboard reaches the API and the players without CORS, and the browser sends
//! the session proxy nothing the API set (the token lives in the page, not in a cookie).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use axum_server::tls_rustls::RustlsConfig;
use serde::Serialize;
use tower_http::services::{ServeDir, ServeFile};
use vdi_cluster::Store;

/// What the dashboard reads at start (`GET /config.json`), so the built assets carry no
/// environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DashboardConfig {
    /// The OpenID Provider users sign in with.
    pub issuer: String,
    /// The dashboard's OAuth client (public, code + PKCE).
    pub client_id: String,
    /// Where the API takes operations.
    pub graphql: String,
    /// Where the API takes subscriptions (graphql-transport-ws).
    pub graphql_ws: String,
}

impl DashboardConfig {
    /// The settings for `issuer` and `client_id`, with the API's paths on this origin.
    pub fn new(issuer: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            client_id: client_id.into(),
            graphql: vdi_api::GRAPHQL_PATH.to_owned(),
            graphql_ws: vdi_api::WS_PATH.to_owned(),
        }
    }
}

/// What the origin serves besides the session proxy.
#[derive(Default)]
pub struct Front {
    /// The GraphQL API.
    pub api: Option<vdi_api::ApiState>,
    /// The dashboard's settings.
    pub dashboard: Option<DashboardConfig>,
    /// The dashboard's built assets (`dashboard/dist`).
    pub assets: Option<PathBuf>,
}

/// The origin's router.
pub fn router(store: Arc<Store>, front: Front) -> Router {
    crate::proxy::router(store).merge(routes(front))
}

/// What [`router`] serves besides the session proxy: the API, the dashboard's settings and its
/// assets. `vdi api` serves these alone on a real cluster, where Traefik routes the sessions.
pub fn routes(front: Front) -> Router {
    let mut app = Router::new();
    if let Some(api) = front.api {
        app = app.merge(vdi_api::router(api));
    }
    if let Some(config) = front.dashboard {
        app = app.route(
            "/config.json",
            get(move || {
                let config = config.clone();
                async move { axum::Json(config) }
            }),
        );
    }
    if let Some(dir) = front.assets {
        let index = ServeFile::new(dir.join("index.html"));
        app = app.fallback_service(ServeDir::new(dir).fallback(index));
    }
    app
}

/// Serves [`router`] over HTTPS with `tls` on `listen` until the task is aborted; returns the
/// bound address.
pub(crate) fn serve(
    app: Router,
    listen: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = std::net::TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let server = axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(tls))?;
    let task = tokio::spawn(async move {
        if let Err(e) = server.serve(app.into_make_service()).await {
            tracing::error!(error = %e, "the platform's HTTPS origin stopped");
        }
    });
    tracing::info!(%addr, "the platform's HTTPS origin is listening");
    Ok((addr, task))
}
