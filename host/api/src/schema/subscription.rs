//! The subscription root: session changes from a Kubernetes watch, as the caller.
//!
//! Each change carries the resourceVersion it was seen at; a client that reconnects passes the
//! last one as `resourceVersion` and the watch resumes there, so no transition is missed. When
//! the server no longer has that version (410 Gone), the sessions are listed again and sent as
//! they are now (`SYNC`), and the watch goes on from the list.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_graphql::{Context, Enum, ID, SimpleObject, Subscription};
use futures::{FutureExt as _, Stream, StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::Node as KubeNode;
use kube::api::{ListParams, WatchEvent, WatchParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client, ResourceExt as _};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use vdi_crd::VDISession;

use super::ctx;
use super::hub::{Change, WatchKey};
use super::inventory::{NodeInventory, node_inventory};
use super::types::Session;
use crate::auth::TokenExpiry;
use crate::error::ApiError;
use crate::ids;

/// Seconds one watch request lasts before it is renewed (from the last version seen).
const WATCH_SECONDS: u32 = 290;
/// Changes buffered per subscriber before the watch waits for it.
pub(super) const BUFFER: usize = 64;

/// What happened to a session.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    /// It appeared.
    Added,
    /// It changed.
    Modified,
    /// It is gone.
    Deleted,
    /// As it is now, after the watch had to start over.
    Sync,
}

/// One change.
#[derive(SimpleObject)]
pub struct SessionEvent {
    /// What happened.
    #[graphql(name = "type")]
    pub type_: ChangeType,
    /// The resourceVersion to resume from.
    pub resource_version: String,
    /// The session after the change.
    pub session: Session,
}

/// Subscriptions.
pub struct Subscription;

#[Subscription]
impl Subscription {
    /// Changes of one session (`id`) or of all the caller's sessions, from `resourceVersion`
    /// when resuming (else the current sessions first, as `ADDED`).
    async fn session_events(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
        resource_version: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<SessionEvent>> + use<>>
    {
        let (caller, client) = ctx::acting(ctx)?;
        let (ns, name) = match &id {
            Some(id) => {
                let (ns, name) = ids::parse_session_id(id, "id")?;
                (ns, Some(name))
            }
            None => {
                ctx::state(ctx)?.ensure_user(&caller).await?;
                (caller.namespace(), None)
            }
        };
        let api: Api<VDISession> = Api::namespaced(client, &ns);
        let fields = name.map(|n| format!("metadata.name={n}"));
        // Checked before the stream starts, so a refusal is the subscription's error.
        let mut list = ListParams::default().limit(1);
        if let Some(f) = &fields {
            list = list.fields(f);
        }
        api.list(&list).await.map_err(ApiError::from)?;
        let (tx, rx) = mpsc::channel(BUFFER);
        let ends = token_deadline(ctx);
        match resource_version {
            // Resuming from its own version: its own watch, from there.
            Some(from) => {
                tokio::spawn(async move {
                    tokio::select! {
                        () = pump(api, fields, Some(from), tx.clone()) => {}
                        () = until(ends) => expired(&tx).await,
                    }
                });
            }
            // From now: the watch every subscriber of the same thing shares.
            None => {
                let key = WatchKey {
                    user: caller.user.clone(),
                    groups: caller.groups.clone(),
                    namespace: ns,
                    fields: fields.clone(),
                };
                let (shared, changes) = ctx::state(ctx)?.watches.join(key, api.clone());
                tokio::spawn(async move {
                    let _watch = shared; // the shared watch runs while a subscriber does
                    tokio::select! {
                        () = follow(api, fields, changes, tx.clone()) => {}
                        () = until(ends) => expired(&tx).await,
                    }
                });
            }
        }
        Ok(ReceiverStream::new(rx))
    }

    /// The GPU inventory (admins): now, then again after every change of a node or session
    /// (changes that arrive together give one inventory).
    async fn inventory(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Vec<NodeInventory>>> + use<>>
    {
        let (_, client) = ctx::acting(ctx)?;
        // Checked before the stream starts, so a refusal is the subscription's error.
        let first = node_inventory(&client).await?;
        let (tx, rx) = mpsc::channel(BUFFER);
        let ends = token_deadline(ctx);
        tokio::spawn(async move {
            tokio::select! {
                () = inventory_pump(client, first, tx.clone()) => {}
                () = until(ends) => expired(&tx).await,
            }
        });
        Ok(ReceiverStream::new(rx))
    }
}

type InventorySender = mpsc::Sender<async_graphql::Result<Vec<NodeInventory>>>;

/// Sends the inventory after every batch of node and session changes until the subscriber
/// goes.
async fn inventory_pump(client: Client, first: Vec<NodeInventory>, tx: InventorySender) {
    if tx.send(Ok(first)).await.is_err() {
        return;
    }
    let sessions = watcher(
        Api::<VDISession>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .map_ok(|_| ())
    .boxed();
    let nodes = watcher(
        Api::<KubeNode>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .map_ok(|_| ())
    .boxed();
    let mut changes = futures::stream::select(sessions, nodes);
    loop {
        let change = tokio::select! {
            () = tx.closed() => return,
            c = changes.next() => c,
        };
        match change {
            None => return,
            Some(Err(e)) => {
                // The watcher retries with backoff; the subscriber learns nothing new.
                tracing::debug!(error = %e, "inventory watch");
                continue;
            }
            Some(Ok(())) => {}
        }
        // Take every change already here, then send one inventory for all of them.
        while let Some(Some(_)) = changes.next().now_or_never() {}
        let inventory = node_inventory(&client).await.map_err(Into::into);
        if tx.send(inventory).await.is_err() {
            return;
        }
    }
}

/// When the subscriber's token expires, as a deadline on this process's clock.
fn token_deadline(ctx: &Context<'_>) -> Option<tokio::time::Instant> {
    let TokenExpiry(exp) = *ctx.data_opt::<TokenExpiry>()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(tokio::time::Instant::now() + Duration::from_secs(exp.saturating_sub(now)))
}

/// Waits for `deadline`; forever without one.
async fn until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Tells the subscriber its token expired (the subscription ends with it).
async fn expired<T>(tx: &mpsc::Sender<async_graphql::Result<T>>) {
    let e = ApiError::Unauthenticated("the token expired: subscribe again with a fresh one".into());
    let _ = tx.send(Err(e.into())).await;
}

type Sender = mpsc::Sender<async_graphql::Result<SessionEvent>>;

/// Sends every change until the subscriber goes or an error ends the watch.
pub(super) async fn pump(
    api: Api<VDISession>,
    fields: Option<String>,
    from: Option<String>,
    tx: Sender,
) {
    // A client resuming from its own version has seen the sessions: a relist is a SYNC.
    let mut listed = from.is_some();
    let mut version = from;
    loop {
        let rv = match version.take() {
            Some(rv) => rv,
            None => {
                let first = !listed;
                listed = true;
                match relist(&api, fields.as_deref(), &tx, first).await {
                    Some(rv) => rv,
                    None => return,
                }
            }
        };
        let mut params = WatchParams::default().timeout(WATCH_SECONDS);
        if let Some(f) = &fields {
            params = params.fields(f);
        }
        let stream = match api.watch(&params, &rv).await {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(Err(ApiError::from(e).into())).await;
                return;
            }
        };
        let mut stream = std::pin::pin!(stream);
        let mut next = Some(rv);
        loop {
            // A subscriber that goes ends its watch at once, not at the next change.
            let next_event = tokio::select! {
                () = tx.closed() => return,
                e = stream.try_next() => e,
            };
            let event = match next_event {
                Ok(Some(event)) => event,
                // The watch timed out: renew it from the last version.
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Err(ApiError::from(e).into())).await;
                    return;
                }
            };
            let (kind, session) = match event {
                WatchEvent::Added(s) => (ChangeType::Added, s),
                WatchEvent::Modified(s) => (ChangeType::Modified, s),
                WatchEvent::Deleted(s) => (ChangeType::Deleted, s),
                WatchEvent::Bookmark(b) => {
                    next = Some(b.metadata.resource_version);
                    continue;
                }
                WatchEvent::Error(e) if e.code == 410 => {
                    // Too old: list again.
                    next = None;
                    break;
                }
                WatchEvent::Error(e) => {
                    let _ = tx
                        .send(Err(ApiError::from_status(e.code, &e.message).into()))
                        .await;
                    return;
                }
            };
            let rv = session.resource_version().unwrap_or_default();
            next = Some(rv.clone());
            if !send(&tx, kind, rv, session).await {
                return;
            }
        }
        version = next;
        if tx.is_closed() {
            return;
        }
    }
}

/// Sends the sessions as they are (`ADDED`), then every change of the shared watch `changes`
/// joined before the list; a subscriber that fell behind is listed again (`SYNC`).
async fn follow(
    api: Api<VDISession>,
    fields: Option<String>,
    mut changes: broadcast::Receiver<Change>,
    tx: Sender,
) {
    if relist(&api, fields.as_deref(), &tx, true).await.is_none() {
        return;
    }
    loop {
        let change = tokio::select! {
            () = tx.closed() => return,
            c = changes.recv() => c,
        };
        match change {
            Ok(Ok((kind, rv, session))) => {
                if !send(&tx, kind, rv, session).await {
                    return;
                }
            }
            Ok(Err(e)) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::debug!(
                    missed,
                    "a subscriber fell behind its shared watch; listing again"
                );
                if relist(&api, fields.as_deref(), &tx, false).await.is_none() {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Lists the sessions and sends each; returns the list's version (None: stop).
async fn relist(
    api: &Api<VDISession>,
    fields: Option<&str>,
    tx: &Sender,
    first: bool,
) -> Option<String> {
    let mut params = ListParams::default();
    if let Some(f) = fields {
        params = params.fields(f);
    }
    let list = match api.list(&params).await {
        Ok(l) => l,
        Err(e) => {
            let _ = tx.send(Err(ApiError::from(e).into())).await;
            return None;
        }
    };
    let kind = if first {
        ChangeType::Added
    } else {
        ChangeType::Sync
    };
    let mut items = list.items;
    items.sort_by_key(|s| s.name_any());
    for s in items {
        let rv = s.resource_version().unwrap_or_default();
        if !send(tx, kind, rv, s).await {
            return None;
        }
    }
    list.metadata.resource_version
}

async fn send(tx: &Sender, kind: ChangeType, rv: String, s: VDISession) -> bool {
    tx.send(Ok(SessionEvent {
        type_: kind,
        resource_version: rv,
        session: Session(s),
    }))
    .await
    .is_ok()
}
