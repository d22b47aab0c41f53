//! `GET ...?watch=true`: a resource's events as a stream of JSON lines, from the store's
//! history or its current objects, with bookmarks and a timeout, as kube-apiserver sends them.
//!
//! An event's line is serialized once and shared by every watcher it reaches
//! ([`WatchEvent::shared_line`]); each watcher only filters (namespace, selectors). Tables and
//! the forms a resource serves other than its stored one are rendered per watcher.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::Response;
use futures::StreamExt;
use serde_json::json;
use tokio_stream::wrappers::BroadcastStream;

use super::{AppState, BOOKMARK_INTERVAL, DEFAULT_WATCH_TIMEOUT, Target, filter_for};
use crate::error::{ApiError, Result};
use crate::store::WatchEvent;

/// Starts a watch of `t` as the query `q` asks.
pub(super) fn watch(
    state: &AppState,
    t: &Target,
    q: &HashMap<String, String>,
    as_table: bool,
) -> Result<Response> {
    let from = match q.get("resourceVersion").map(String::as_str) {
        None | Some("") | Some("0") => None,
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::BadRequest(format!("invalid resourceVersion {rv:?}")))?,
        ),
    };
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(DEFAULT_WATCH_TIMEOUT, Duration::from_secs);
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|b| b == "true");
    let filter = filter_for(state, t, q)?;
    let ns = t.ns_in_path.then(|| t.ns.clone());
    let key = t.rt.key();
    let api_version = t.rt.api_version();
    let kind = t.rt.kind.clone();
    let start = match state.store.watch(&t.rt, ns.as_deref(), from) {
        Ok(s) => s,
        Err(e @ ApiError::Gone { .. }) => {
            // Kubernetes answers an expired watch with an ERROR event, not an HTTP error.
            let line = format!("{}\n", json!({"type": "ERROR", "object": e.status()}));
            return Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(line))
                .map_err(|e| ApiError::Internal(e.to_string()));
        }
        Err(e) => return Err(e),
    };
    let table_type = t.rt.clone();
    let render = move |e: &WatchEvent| -> Option<Bytes> {
        if e.key != key || ns.as_ref().is_some_and(|n| *n != e.namespace) || !filter(&e.object) {
            return None;
        }
        if !as_table && let Some(line) = e.shared_line(&table_type) {
            return Some(line);
        }
        let mut obj = e.object.clone();
        crate::events::present(&mut obj, &table_type);
        if let Some(o) = obj.as_object_mut() {
            o.insert("apiVersion".into(), json!(api_version));
        }
        if as_table {
            obj = crate::table::render(&table_type, &[obj], &e.rv.to_string());
        }
        Some(Bytes::from(format!(
            "{}\n",
            json!({"type": e.kind.as_str(), "object": obj})
        )))
    };
    let render = Arc::new(render);
    let backlog_render = render.clone();
    let backlog = futures::stream::iter(start.backlog).filter_map(move |e| {
        let line = backlog_render(&e);
        async move { line }
    });
    let live = BroadcastStream::new(start.receiver)
        .take_while(|r| futures::future::ready(r.is_ok()))
        .filter_map(move |r| {
            let line = r.ok().and_then(|e| render(&e));
            async move { line }
        });
    let store = state.store.clone();
    let bookmark_api_version = t.rt.api_version();
    let ticks = tokio_stream::wrappers::IntervalStream::new(tokio::time::interval(BOOKMARK_INTERVAL))
        .skip(1)
        .filter_map(move |_| {
            let line = bookmarks.then(|| {
                let rv = store.resource_version();
                Bytes::from(format!("{}\n", json!({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": bookmark_api_version, "metadata": {"resourceVersion": rv.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}}})))
            });
            async move { line }
        });
    let events = backlog.chain(futures::stream::select(live, ticks));
    let bounded = events
        .take_until(tokio::time::sleep(timeout))
        .map(Ok::<_, Infallible>);
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(bounded))
        .map_err(|e| ApiError::Internal(e.to_string()))
}
