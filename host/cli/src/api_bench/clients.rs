//! The two kinds of listener `vdi bench-api` times: a GraphQL subscriber over graphql-ws
//! (`sessionEvents` through the API) and, as the baseline, a plain Kubernetes watch of the same
//! session made straight on the control plane with the same user's token. Each reports, for
//! every round, the wall-clock time at which it saw the session reach that round's phase.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::wall_us;

/// What a listener tells the benchmark.
#[derive(Debug)]
pub(super) enum Heard {
    /// Subscribed (or watching): the benchmark may start changing the session.
    Ready,
    /// Saw the session in `phase` (as the listener spells it: `RUNNING` in GraphQL, `Running` in
    /// Kubernetes) at wall-clock microsecond `at`.
    Phase { phase: String, at: i64 },
}

/// Subscribes to `sessionEvents(id)` at `ws_url` with `token`; reports until the socket ends.
pub(super) async fn subscriber(
    ws_url: String,
    token: String,
    id: String,
    out: mpsc::UnboundedSender<Heard>,
) -> Result<()> {
    let mut request = ws_url.as_str().into_client_request()?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .context("open the subscription socket")?;
    let init = json!({"type": "connection_init", "payload": {"token": token}});
    ws.send(Message::text(init.to_string())).await?;
    let subscribe = json!({"id": "1", "type": "subscribe", "payload": {
        "query": "subscription($id: ID) { sessionEvents(id: $id) { type session { phase } } }",
        "variables": {"id": id},
    }});
    let mut subscribed = false;
    while let Some(msg) = ws.next().await {
        let Message::Text(text) = msg? else { continue };
        let at = wall_us();
        let m: Value = serde_json::from_str(&text)?;
        match m["type"].as_str() {
            Some("connection_ack") if !subscribed => {
                ws.send(Message::text(subscribe.to_string())).await?;
                subscribed = true;
                let _ = out.send(Heard::Ready);
            }
            Some("next") => {
                if let Some(phase) =
                    m["payload"]["data"]["sessionEvents"]["session"]["phase"].as_str()
                {
                    let _ = out.send(Heard::Phase {
                        phase: phase.to_owned(),
                        at,
                    });
                }
            }
            Some("ping") => ws.send(Message::text(r#"{"type":"pong"}"#)).await?,
            Some("error" | "complete") => bail!("the subscription ended: {m}"),
            _ => {}
        }
    }
    Ok(())
}

/// Watches the session `name` in `namespace` straight on the control plane at `base` with
/// `token` (the baseline); reports until the watch ends.
pub(super) async fn watcher(
    http: reqwest::Client,
    base: String,
    token: String,
    namespace: String,
    name: String,
    out: mpsc::UnboundedSender<Heard>,
) -> Result<()> {
    let url = format!(
        "{base}/apis/vdi.dev/v1alpha1/namespaces/{namespace}/vdisessions?watch=true&fieldSelector=metadata.name%3D{name}&timeoutSeconds=3600"
    );
    let mut res = http
        .get(url)
        .bearer_auth(token)
        .timeout(Duration::from_secs(3600))
        .send()
        .await?
        .error_for_status()?;
    let _ = out.send(Heard::Ready);
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = res.chunk().await? {
        let at = wall_us();
        buf.extend_from_slice(&chunk);
        while let Some(end) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            let Ok(event) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            if let Some(phase) = event["object"]["status"]["phase"].as_str() {
                let _ = out.send(Heard::Phase {
                    phase: phase.to_owned(),
                    at,
                });
            }
        }
    }
    Ok(())
}
