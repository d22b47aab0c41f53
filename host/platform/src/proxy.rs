//! The session proxy: `/sessions/{namespace}/{name}/…` routed to the session's streamer, the URL
//! shape the desktop template's Traefik IngressRoute gives on k3s, so `status.url` works on the
//! embedded platform too.
//!
//! The upstream is resolved as the IngressRoute resolves it: the session's Service (named after
//! the session, labelled `vdi.dev/session`). On one machine there is no cluster network behind a
//! Service, so the address that serves it is what a node agent announces in the
//! [`LOCAL_ENDPOINT_ANNOTATION`] of the Service or of a Pod it selects. Only loopback addresses
//! are accepted there, so whoever may annotate a Service cannot point the proxy elsewhere.
//! Without one (simulated nodes run nothing) the answer is 503 naming the node.
//!
//! The path is forwarded whole, as the IngressRoute forwards it (it strips no prefix); HTTP
//! bodies stream both ways; an `Upgrade` request (WebSocket) is forwarded and, once the streamer
//! answers 101, both connections are spliced byte for byte. It serves HTTPS with the control
//! plane's serving certificate (localhost and 127.0.0.1, signed by the cluster's CA).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use vdi_cluster::{ApiError, LabelSelector, SIMULATED_LABEL, Store};

pub use vdi_crd::LOCAL_ENDPOINT_ANNOTATION;

/// The path prefix of sessions (the desktop template's default `pathPrefix`).
pub const SESSION_PREFIX: &str = "/sessions/";

/// Headers that describe one connection and are not forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
];

/// The proxy's router (`/sessions/{namespace}/{name}/{*rest}`), over the cluster's store.
pub fn router(store: Arc<Store>) -> Router {
    Router::new()
        .route("/sessions/{*path}", any(proxy))
        .with_state(store)
}

/// A refusal, answered as a Kubernetes `Status`.
struct Refusal {
    code: StatusCode,
    reason: &'static str,
    message: String,
}

impl Refusal {
    fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code.as_u16(),
        });
        (self.code, axum::Json(body)).into_response()
    }
}

fn internal(e: impl std::fmt::Display) -> Refusal {
    tracing::warn!(error = %e, "session proxy");
    let code = StatusCode::INTERNAL_SERVER_ERROR;
    Refusal::new(code, "InternalError", "the session proxy failed")
}

/// `(namespace, name)` of a session path, refusing dot segments (also percent-encoded) so no
/// path names one session and reaches another.
fn session_of(path: &str) -> Result<(&str, &str), Refusal> {
    let rest = path.strip_prefix(SESSION_PREFIX).unwrap_or(path);
    let bad = |s: &str| {
        let s = s.to_ascii_lowercase().replace("%2e", ".");
        s == "." || s == ".."
    };
    if rest.split('/').any(bad) || rest.to_ascii_lowercase().contains("%2f") {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "a session path may not contain '.' or '..' segments or encoded slashes",
        ));
    }
    let mut parts = rest.splitn(3, '/');
    match (parts.next(), parts.next()) {
        (Some(ns), Some(name)) if !ns.is_empty() && !name.is_empty() => Ok((ns, name)),
        _ => Err(Refusal::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            "session paths are /sessions/{namespace}/{name}/",
        )),
    }
}

fn get(
    store: &Store,
    group: &str,
    version: &str,
    plural: &str,
    ns: &str,
    name: &str,
) -> Result<Option<Value>, Refusal> {
    let rt = store
        .registry
        .find(group, version, plural)
        .ok_or_else(|| internal(format!("{plural} are not served")))?;
    match store.get(&rt, ns, name) {
        Ok(obj) => Ok(Some(obj)),
        Err(ApiError::NotFound { .. }) => Ok(None),
        Err(e) => Err(internal(e)),
    }
}

fn endpoint_of(obj: &Value) -> Option<&str> {
    obj["metadata"]["annotations"][LOCAL_ENDPOINT_ANNOTATION].as_str()
}

/// The loopback address that serves session `ns/name`.
fn upstream(store: &Store, ns: &str, name: &str) -> Result<SocketAddr, Refusal> {
    let session = get(
        store,
        vdi_crd::GROUP,
        vdi_crd::VERSION,
        "vdisessions",
        ns,
        name,
    )?
    .ok_or_else(|| {
        Refusal::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("vdisessions.vdi.dev \"{name}\" not found in namespace \"{ns}\""),
        )
    })?;
    let phase = session["status"]["phase"].as_str().unwrap_or("Pending");
    if phase != "Running" {
        return Err(Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            format!("the session is {phase}, not Running"),
        ));
    }
    let unreachable = |why: String| {
        Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            format!("the session's streamer is not reachable: {why}"),
        )
    };
    let service = get(store, "", "v1", "services", ns, name)?
        .filter(|s| s["metadata"]["labels"]["vdi.dev/session"].as_str() == Some(name))
        .ok_or_else(|| unreachable("the session has no Service".into()))?;
    let pods = match service["spec"]["selector"].as_object() {
        Some(sel) if !sel.is_empty() => {
            let sel = sel
                .iter()
                .filter_map(|(k, v)| Some(format!("{k}={}", v.as_str()?)))
                .collect::<Vec<_>>()
                .join(",");
            let sel = LabelSelector::parse(&sel).map_err(internal)?;
            let rt = store
                .registry
                .find("", "v1", "pods")
                .ok_or_else(|| internal("pods are not served"))?;
            store.list(&rt, Some(ns), None, None, &|p| sel.matches(p)).0
        }
        _ => Vec::new(),
    };
    let announced = endpoint_of(&service).or_else(|| pods.iter().find_map(endpoint_of));
    let Some(announced) = announced else {
        let node = pods.iter().find_map(|p| p["spec"]["nodeName"].as_str());
        return Err(unreachable(match node {
            None => "no pod of the session is scheduled".into(),
            Some(node) => {
                let simulated = get(store, "", "v1", "nodes", "", node)?.is_some_and(|n| {
                    n["metadata"]["labels"][SIMULATED_LABEL].as_str() == Some("true")
                });
                if simulated {
                    format!("it runs on simulated node {node}")
                } else {
                    format!("node {node} announces no {LOCAL_ENDPOINT_ANNOTATION}")
                }
            }
        }));
    };
    match announced.parse::<SocketAddr>() {
        Ok(addr) if addr.ip().is_loopback() => Ok(addr),
        _ => Err(unreachable(format!(
            "{LOCAL_ENDPOINT_ANNOTATION} {announced:?} is not a loopback host:port"
        ))),
    }
}

/// Whether the request asks to switch protocols (`Connection: upgrade` and an `Upgrade`).
fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Drops hop-by-hop headers and those `Connection` names; keeps the upgrade pair when asked.
fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty() && t != "upgrade")
        .collect();
    for h in HOP_BY_HOP
        .iter()
        .copied()
        .chain(named.iter().map(String::as_str))
    {
        headers.remove(h);
    }
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

/// 502: the announced streamer did not answer.
fn bad_gateway(what: String) -> Response {
    let message = format!("the session's streamer {what}");
    Refusal::new(StatusCode::BAD_GATEWAY, "BadGateway", message).into_response()
}

async fn proxy(State(store): State<Arc<Store>>, mut req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let addr = match session_of(&path).and_then(|(ns, name)| upstream(&store, ns, name)) {
        Ok(addr) => addr,
        Err(refusal) => return refusal.into_response(),
    };
    let upgrade = wants_upgrade(req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers, upgrade);
    // HTTP/2 carries the host in the URI; HTTP/1.1 needs it as a header.
    if !parts.headers.contains_key(header::HOST)
        && let Some(host) = parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        parts.headers.insert(header::HOST, host);
    }
    if let Some(pq) = parts.uri.path_and_query().cloned() {
        parts.uri = pq.into();
    }
    parts.version = Version::HTTP_11;
    let stream = match tokio::net::TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => return bad_gateway(format!("at {addr} is not reachable: {e}")),
    };
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    {
        Ok(pair) => pair,
        Err(e) => return internal(e).into_response(),
    };
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "session proxy upstream connection");
        }
    });
    let mut resp = match sender.send_request(Request::from_parts(parts, body)).await {
        Ok(r) => r,
        Err(e) => return bad_gateway(format!("failed: {e}")),
    };
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            return internal("the streamer switched protocols unasked").into_response();
        };
        let upstream_upgrade = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            match tokio::try_join!(client_upgrade, upstream_upgrade) {
                Ok((client, upstream)) => {
                    let _ = tokio::io::copy_bidirectional(
                        &mut TokioIo::new(client),
                        &mut TokioIo::new(upstream),
                    )
                    .await;
                }
                Err(e) => tracing::debug!(error = %e, "session proxy upgrade"),
            }
        });
        let (parts, _) = resp.into_parts();
        return Response::from_parts(parts, Body::empty());
    }
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers, false);
    Response::from_parts(parts, Body::new(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_paths() {
        assert_eq!(session_of("/sessions/ns/a/").ok(), Some(("ns", "a")));
        assert_eq!(session_of("/sessions/ns/a/x/y").ok(), Some(("ns", "a")));
        for bad in [
            "/sessions/ns/a/../b/",
            "/sessions/ns/../b/",
            "/sessions/ns/a/%2E%2e/b/",
            "/sessions/ns/a%2Fb/",
        ] {
            assert_eq!(
                session_of(bad).err().map(|r| r.code),
                Some(StatusCode::BAD_REQUEST)
            );
        }
        assert_eq!(
            session_of("/sessions/ns/").err().map(|r| r.code),
            Some(StatusCode::NOT_FOUND)
        );
    }

    #[test]
    fn hop_by_hop_headers_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(wants_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(
            h.get(header::UPGRADE).map(|v| v.as_bytes()),
            Some(&b"websocket"[..])
        );
    }
}
