//! The object store: every object in memory for reads and watches, every write committed to
//! SQLite (WAL) before it is acknowledged, one global, monotonic resourceVersion.
//!
//! Writes are checked and staged one at a time under one mutex, then committed in groups
//! ([`commit`]): whoever holds the database writes every staged change in one transaction. A
//! write is answered, and readers and watchers see it, only once its transaction committed, so
//! nothing observed is ever lost. Each stored object keeps its JSON (the SQLite row's body), so
//! lists and watch events are stitched from bytes serialized once per write. Watches get a
//! history of recent events and a broadcast of new ones, taken under the same lock so none is
//! missed or repeated.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use axum::body::Bytes;
use rusqlite::Connection;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::admission::AdmissionHook;
use crate::error::{ApiError, Result};
use crate::resources::{Registry, ResourceType};

/// Events kept for watches that resume from an older resourceVersion.
pub const HISTORY_EVENTS: usize = 50_000;
/// Finalizer the garbage collector uses for foreground deletion.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
/// Finalizer of a namespace whose contents are being deleted (it goes once they are gone).
pub const NAMESPACE_FINALIZER: &str = "kubernetes";

/// A watch event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Changed (including deletion started).
    Modified,
    /// Gone.
    Deleted,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, as watches see it.
#[derive(Debug, Clone)]
pub struct WatchEvent {
    /// resourceVersion of the change.
    pub rv: u64,
    /// Storage key of the resource (`pods`, `vdisessions.vdi.dev`).
    pub key: String,
    /// Namespace of the object ("" for cluster-scoped).
    pub namespace: String,
    /// What happened.
    pub kind: EventType,
    /// The object after the change (before it, for deletions, with the deletion's version).
    pub object: Value,
    /// `object` serialized (the stored form).
    json: Bytes,
    /// The watch line for watchers of the stored form, made by the first one that needs it.
    line: OnceLock<Bytes>,
}

impl WatchEvent {
    fn new(rv: u64, key: String, namespace: String, kind: EventType, stored: &Stored) -> Self {
        Self {
            rv,
            key,
            namespace,
            kind,
            object: stored.value.clone(),
            json: stored.json.clone(),
            line: OnceLock::new(),
        }
    }

    /// The event as a watch line (`{"type":...,"object":...}` and a newline) for a watcher of
    /// `rt`, serialized once and shared by every watcher; `None` when `rt` serves the object
    /// in another form than it is stored (the `events.k8s.io` view, another version), which
    /// the watcher renders itself.
    pub(crate) fn shared_line(&self, rt: &ResourceType) -> Option<Bytes> {
        if !servable_as_stored(&self.object, rt) {
            return None;
        }
        let line = self.line.get_or_init(|| {
            let kind = self.kind.as_str();
            let mut line = Vec::with_capacity(self.json.len() + kind.len() + 24);
            line.extend_from_slice(b"{\"type\":\"");
            line.extend_from_slice(kind.as_bytes());
            line.extend_from_slice(b"\",\"object\":");
            line.extend_from_slice(&self.json);
            line.extend_from_slice(b"}\n");
            Bytes::from(line)
        });
        Some(line.clone())
    }
}

/// One stored object and its JSON, serialized once when it was written.
#[derive(Debug)]
pub(crate) struct Stored {
    value: Value,
    json: Bytes,
}

impl Stored {
    /// Serializes `value`.
    fn new(value: Value) -> Result<Self> {
        let json = Bytes::from(serde_json::to_vec(&value).map_err(internal)?);
        Ok(Self { value, json })
    }

    /// The object as `rt` serves it, serialized: the stored bytes when they are that form.
    fn served_json(&self, rt: &ResourceType) -> Result<Bytes> {
        if servable_as_stored(&self.value, rt) {
            return Ok(self.json.clone());
        }
        let mut obj = self.value.clone();
        stamp_api_version(&mut obj, rt);
        Ok(Bytes::from(serde_json::to_vec(&obj).map_err(internal)?))
    }
}

impl std::ops::Deref for Stored {
    type Target = Value;

    fn deref(&self) -> &Value {
        &self.value
    }
}

/// Whether `obj`, as stored, is already the form `rt` serves (no relabelling, no view).
fn servable_as_stored(obj: &Value, rt: &ResourceType) -> bool {
    !crate::events::is_view(rt) && obj["apiVersion"].as_str() == Some(rt.api_version().as_str())
}

/// Where a watch starts.
pub struct WatchStart {
    /// Events to send first (synthetic ADDED for a fresh watch, or the history after the
    /// requested version).
    pub backlog: Vec<Arc<WatchEvent>>,
    /// New events.
    pub receiver: broadcast::Receiver<Arc<WatchEvent>>,
    /// The version the backlog brings the watcher to.
    pub rv: u64,
}

/// How dependents are deleted with their owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// Owner goes now; the collector deletes dependents afterwards.
    #[default]
    Background,
    /// Dependents go first; the owner waits with the `foregroundDeletion` finalizer.
    Foreground,
    /// Dependents are left alone.
    Orphan,
}

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Everything but status, where status is a subresource.
    Main,
    /// Status only.
    Status,
}

mod commit;
mod dry_run;
mod gc;
mod open;
mod write;

pub use dry_run::DryRun;

type Objects = HashMap<String, BTreeMap<(String, String), Arc<Stored>>>;

/// A page of a list: the items, the version it was read at, and the key to continue after when
/// more remain.
pub(crate) type Listed<T> = (Vec<T>, u64, Option<(String, String)>);

struct Inner {
    /// The last committed resourceVersion: what readers see.
    rv: u64,
    /// Committed objects: what readers and watches see.
    committed: Objects,
    /// Committed objects with the staged writes applied: what writers check against.
    objects: Objects,
    /// The last resourceVersion given to a staged write (`rv` when none waits).
    staged_rv: u64,
    /// Staged writes no committer has taken yet, in resourceVersion order.
    queue: Vec<commit::Staged>,
    history: VecDeque<Arc<WatchEvent>>,
    /// Every change after this version is in `history`.
    history_from: u64,
    /// The version of the last change of each resource (by storage key) since the store opened.
    changed: HashMap<String, u64>,
}

impl Inner {
    /// The object as writers see it (staged writes included), or NotFound.
    fn find(&self, rt: &ResourceType, ns: &str, name: &str) -> Result<&Value> {
        lookup(&self.objects, rt, ns, name).map(|s| &s.value)
    }
}

fn lookup<'a>(objects: &'a Objects, rt: &ResourceType, ns: &str, name: &str) -> Result<&'a Stored> {
    objects
        .get(&rt.key())
        .and_then(|m| m.get(&(ns.to_owned(), name.to_owned())))
        .map(|s| &**s)
        .ok_or_else(|| ApiError::NotFound {
            resource: rt.key(),
            name: name.to_owned(),
        })
}

/// The store.
pub struct Store {
    inner: Mutex<Inner>,
    /// The database; whoever holds it commits every staged write ([`commit`]).
    db: Mutex<Connection>,
    events: broadcast::Sender<Arc<WatchEvent>>,
    /// Served resource types.
    pub registry: Registry,
    hooks: Mutex<Vec<Arc<dyn AdmissionHook>>>,
    /// Node agents that keep container logs, by node name (`pods/<name>/log` reads them).
    pub(crate) log_sources: crate::node_logs::LogSources,
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// `now` as Kubernetes writes timestamps.
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn meta(obj: &Value, field: &str) -> String {
    obj["metadata"][field]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The object's metadata, to write into. Every stored object has an object `metadata` (writes
/// are checked, reloads skip the rest), so an error here is the server's own bug.
fn metadata_mut(obj: &mut Value) -> Result<&mut serde_json::Map<String, Value>> {
    obj.get_mut("metadata")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| internal("an object without an object metadata reached the store"))
}

/// Sets `apiVersion` to the version the object is served as (stored objects are relabelled).
fn stamp_api_version(obj: &mut Value, rt: &ResourceType) {
    crate::events::present(obj, rt);
    if let Some(o) = obj.as_object_mut() {
        o.insert("apiVersion".into(), json!(rt.api_version()));
    }
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj["metadata"]["finalizers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether two objects agree on everything but metadata and status: what
/// `metadata.generation` tracks. Compared in place (no copies of either).
fn same_spec(a: &Value, b: &Value) -> bool {
    fn spec(o: &serde_json::Map<String, Value>) -> impl Iterator<Item = (&String, &Value)> {
        o.iter()
            .filter(|(k, _)| !matches!(k.as_str(), "metadata" | "status"))
    }
    match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => spec(a).eq(spec(b)),
        _ => a == b,
    }
}

/// Checks a DNS-1123 subdomain name.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

impl Store {
    /// Adds an admission hook, run on every create and update.
    pub fn add_admission_hook(&self, hook: Arc<dyn AdmissionHook>) {
        self.hooks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(hook);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// The version of the last change, since the store opened, to any of the resources
    /// `keys` name (storage keys, as [`ResourceType::key`]); 0 when none changed. Caches of
    /// derived state (the RBAC authorizer) rebuild when it moves.
    pub fn changed_at(&self, keys: &[&str]) -> u64 {
        let inner = self.lock();
        keys.iter()
            .filter_map(|k| inner.changed.get(*k).copied())
            .max()
            .unwrap_or(0)
    }

    /// Gets one object.
    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> Result<Value> {
        let mut obj = lookup(&self.lock().committed, rt, ns, name)?.value.clone();
        stamp_api_version(&mut obj, rt);
        Ok(obj)
    }

    /// Gets one object including writes staged but not yet committed, for a read-modify-write
    /// whose own write is staged after them: it is answered only after they committed, and a
    /// failed one fails it too (its version check no longer matches). Never answer a client
    /// with what this returns.
    pub(crate) fn get_latest(&self, rt: &ResourceType, ns: &str, name: &str) -> Result<Value> {
        let mut obj = self.lock().find(rt, ns, name)?.clone();
        stamp_api_version(&mut obj, rt);
        Ok(obj)
    }

    /// Gets one object as `rt` serves it, serialized.
    pub(crate) fn get_json(&self, rt: &ResourceType, ns: &str, name: &str) -> Result<Bytes> {
        lookup(&self.lock().committed, rt, ns, name)?.served_json(rt)
    }

    /// Lists objects of `rt` (in `ns`, or everywhere when `None`) that `filter` accepts, from
    /// the key after `after` on, at most `limit`. Returns the items, the list's version and
    /// whether more remain.
    pub fn list(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        after: Option<&(String, String)>,
        limit: Option<usize>,
        filter: &dyn Fn(&Value) -> bool,
    ) -> (Vec<Value>, u64, Option<(String, String)>) {
        let inner = self.lock();
        let (items, cont) = select(&inner.committed, rt, ns, after, limit, filter, |s| {
            let mut obj = s.value.clone();
            stamp_api_version(&mut obj, rt);
            obj
        });
        (items, inner.rv, cont)
    }

    /// [`Store::list`], each item serialized as `rt` serves it: the bytes stored with the
    /// object (shared, not copied) unless `rt` serves another form.
    pub(crate) fn list_json(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        after: Option<&(String, String)>,
        limit: Option<usize>,
        filter: &dyn Fn(&Value) -> bool,
    ) -> Result<Listed<Bytes>> {
        let inner = self.lock();
        let (items, cont) = select(&inner.committed, rt, ns, after, limit, filter, |s| {
            s.served_json(rt)
        });
        let items = items.into_iter().collect::<Result<Vec<_>>>()?;
        Ok((items, inner.rv, cont))
    }

    /// Starts a watch on `rt` in `ns` (everywhere when `None`) from `from` (`None`: send the
    /// current objects as ADDED first).
    pub fn watch(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        from: Option<u64>,
    ) -> Result<WatchStart> {
        let inner = self.lock();
        let key = rt.key();
        let receiver = self.events.subscribe();
        let in_scope = |e_ns: &str| ns.is_none_or(|n| n == e_ns);
        let backlog = match from {
            None => inner
                .committed
                .get(&key)
                .into_iter()
                .flat_map(|m| m.iter())
                .filter(|((o_ns, _), _)| in_scope(o_ns))
                .map(|((o_ns, _), obj)| {
                    Arc::new(WatchEvent::new(
                        inner.rv,
                        key.clone(),
                        o_ns.clone(),
                        EventType::Added,
                        obj,
                    ))
                })
                .collect(),
            Some(rv) if rv < inner.history_from => {
                return Err(ApiError::Gone {
                    requested: rv,
                    oldest: inner.history_from,
                });
            }
            // The history is in version order: start at the first event after `rv`.
            Some(rv) => inner
                .history
                .range(inner.history.partition_point(|e| e.rv <= rv)..)
                .filter(|e| e.key == key && in_scope(&e.namespace))
                .cloned()
                .collect(),
        };
        Ok(WatchStart {
            backlog,
            receiver,
            rv: inner.rv,
        })
    }

    fn type_for_key(&self, key: &str) -> Option<ResourceType> {
        self.registry.all().into_iter().find(|t| t.key() == key)
    }
}

fn invalid(rt: &ResourceType, name: &str, field: &str, reason: &str) -> ApiError {
    ApiError::Invalid {
        kind: rt.kind.clone(),
        name: name.to_owned(),
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Marks a CRD Established and its names accepted, as the real API server does once it serves it.
fn establish_crd(crd: &mut Value) {
    let t = now();
    let condition = |type_: &str, reason: &str| json!({"type": type_, "status": "True", "reason": reason, "message": "", "lastTransitionTime": t});
    crd["status"] = json!({
        "conditions": [condition("NamesAccepted", "NoConflicts"), condition("Established", "InitialNamesAccepted")],
        "acceptedNames": crd["spec"]["names"].clone(),
        "storedVersions": crd["spec"]["versions"].as_array().map(|vs| {
            vs.iter().filter(|v| v["storage"].as_bool() == Some(true)).map(|v| v["name"].clone()).collect::<Vec<_>>()
        }).unwrap_or_default(),
    });
}

/// The objects of `rt` in `ns` (everywhere when `None`) that `filter` accepts, from the key
/// after `after` on, at most `limit`, each made into a `T`; and the key to continue after when
/// more remain.
fn select<T>(
    objects: &Objects,
    rt: &ResourceType,
    ns: Option<&str>,
    after: Option<&(String, String)>,
    limit: Option<usize>,
    filter: &dyn Fn(&Value) -> bool,
    mut make: impl FnMut(&Stored) -> T,
) -> (Vec<T>, Option<(String, String)>) {
    let mut items = Vec::new();
    let (mut last, mut more) = (None, false);
    if let Some(map) = objects.get(&rt.key()) {
        let range = match after {
            Some(k) => map.range::<(String, String), _>((
                std::ops::Bound::Excluded(k),
                std::ops::Bound::Unbounded,
            )),
            None => map.range::<(String, String), _>(..),
        };
        for (key, obj) in range {
            if ns.is_some_and(|n| n != key.0) || !filter(&obj.value) {
                continue;
            }
            if limit.is_some_and(|l| items.len() >= l) {
                more = true;
                break;
            }
            items.push(make(obj));
            last = Some(key.clone());
        }
    }
    // The continue token names the last item returned; the next page starts after it.
    (items, if more { last } else { None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_is_everything_but_metadata_and_status() {
        let a =
            json!({"kind": "Pod", "metadata": {"name": "a"}, "spec": {"x": 1}, "status": {"s": 1}});
        let relabelled =
            json!({"kind": "Pod", "metadata": {"name": "b"}, "spec": {"x": 1}, "status": {"s": 2}});
        assert!(same_spec(&a, &relabelled));
        let respecced =
            json!({"kind": "Pod", "metadata": {"name": "a"}, "spec": {"x": 2}, "status": {"s": 1}});
        assert!(!same_spec(&a, &respecced));
        let extra = json!({"kind": "Pod", "metadata": {"name": "a"}, "spec": {"x": 1}, "data": {}});
        assert!(!same_spec(&a, &extra));
        assert!(!same_spec(
            &json!({"kind": "Pod"}),
            &json!({"kind": "Pod", "spec": null})
        ));
        assert!(same_spec(&json!("x"), &json!("x")));
    }
}
