//! The object store: every object in memory for reads and watches, every write committed to
//! SQLite (WAL) before it is acknowledged, one global, monotonic resourceVersion.
//!
//! Writes are serialised by one mutex; a commit takes tens of microseconds, so one writer is not
//! the bottleneck of a one-machine control plane. Watches get a history of recent events and a
//! broadcast of new ones, taken under the same lock so none is missed or repeated.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, params};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::admission::{AdmissionHook, Operation, Requester};
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

mod dry_run;
mod gc;
mod open;

pub use dry_run::DryRun;

use gc::{has_dependents, orphan_dependents};

type Objects = HashMap<String, BTreeMap<(String, String), Value>>;

struct Inner {
    db: Connection,
    rv: u64,
    objects: Objects,
    history: VecDeque<Arc<WatchEvent>>,
    /// Every change after this version is in `history`.
    history_from: u64,
    /// The version of the last change of each resource (by storage key) since the store opened.
    changed: HashMap<String, u64>,
}

impl Inner {
    /// Runs `sql` and records `rv` as the current resourceVersion in one transaction; the write
    /// is acknowledged only once this returns.
    fn persist(&mut self, rv: u64, sql: &str, args: impl rusqlite::Params) -> Result<()> {
        let tx = self.db.transaction().map_err(internal)?;
        tx.execute(sql, args).map_err(internal)?;
        tx.execute(
            "INSERT OR REPLACE INTO meta (k, v) VALUES ('rv', ?1)",
            params![rv as i64],
        )
        .map_err(internal)?;
        tx.commit().map_err(internal)?;
        self.rv = rv;
        Ok(())
    }

    /// The stored object, or NotFound.
    fn find(&self, rt: &ResourceType, ns: &str, name: &str) -> Result<&Value> {
        self.objects
            .get(&rt.key())
            .and_then(|m| m.get(&(ns.to_owned(), name.to_owned())))
            .ok_or_else(|| ApiError::NotFound {
                resource: rt.key(),
                name: name.to_owned(),
            })
    }
}

/// The store.
pub struct Store {
    inner: Mutex<Inner>,
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

/// Everything but metadata and status: what `metadata.generation` tracks.
fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("metadata");
        o.remove("status");
    }
    v
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
        let mut obj = self.lock().find(rt, ns, name)?.clone();
        stamp_api_version(&mut obj, rt);
        Ok(obj)
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
        let mut items = Vec::new();
        let (mut last, mut more) = (None, false);
        if let Some(map) = inner.objects.get(&rt.key()) {
            let range = match after {
                Some(k) => map.range::<(String, String), _>((
                    std::ops::Bound::Excluded(k),
                    std::ops::Bound::Unbounded,
                )),
                None => map.range::<(String, String), _>(..),
            };
            for (key, obj) in range {
                if ns.is_some_and(|n| n != key.0) || !filter(obj) {
                    continue;
                }
                if limit.is_some_and(|l| items.len() >= l) {
                    more = true;
                    break;
                }
                let mut obj = obj.clone();
                stamp_api_version(&mut obj, rt);
                items.push(obj);
                last = Some(key.clone());
            }
        }
        // The continue token names the last item returned; the next page starts after it.
        let cont = if more { last } else { None };
        (items, inner.rv, cont)
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
                .objects
                .get(&key)
                .into_iter()
                .flat_map(|m| m.iter())
                .filter(|((o_ns, _), _)| in_scope(o_ns))
                .map(|((o_ns, _), obj)| {
                    Arc::new(WatchEvent {
                        rv: inner.rv,
                        key: key.clone(),
                        namespace: o_ns.clone(),
                        kind: EventType::Added,
                        object: obj.clone(),
                    })
                })
                .collect(),
            Some(rv) if rv < inner.history_from => {
                return Err(ApiError::Gone {
                    requested: rv,
                    oldest: inner.history_from,
                });
            }
            Some(rv) => inner
                .history
                .iter()
                .filter(|e| e.rv > rv && e.key == key && in_scope(&e.namespace))
                .cloned()
                .collect(),
        };
        Ok(WatchStart {
            backlog,
            receiver,
            rv: inner.rv,
        })
    }

    /// Creates an object as the admin identity.
    pub fn create(&self, rt: &ResourceType, ns: &str, obj: Value) -> Result<Value> {
        self.create_as(rt, ns, obj, &Requester::admin())
    }

    /// Creates an object on behalf of `requester` (whom admission hooks see).
    pub fn create_as(
        &self,
        rt: &ResourceType,
        ns: &str,
        mut obj: Value,
        requester: &Requester,
    ) -> Result<Value> {
        self.check_identity(rt, ns, &mut obj)?;
        let md = obj["metadata"]
            .as_object_mut()
            .ok_or_else(|| ApiError::BadRequest("metadata is required".into()))?;
        if md
            .get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            let prefix = md
                .get("generateName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if prefix.is_empty() {
                return Err(invalid(
                    rt,
                    "",
                    "metadata.name",
                    "name or generateName is required",
                ));
            }
            let suffix: String = uuid::Uuid::new_v4()
                .simple()
                .to_string()
                .chars()
                .take(5)
                .collect();
            md.insert("name".into(), json!(format!("{prefix}{suffix}")));
        }
        let name = meta(&obj, "name");
        // RBAC objects are named like paths (`system:discovery`), everything else like DNS.
        if rt.group == crate::rbac::RBAC_GROUP {
            // Kubernetes allows any path segment; printable ASCII without the characters a
            // URL would have to escape keeps every such object addressable by kubectl.
            let addressable = name.len() <= 253
                && name
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b"/%?#\\".contains(&b));
            if name == "." || name == ".." || !addressable {
                return Err(invalid(
                    rt,
                    &name,
                    "metadata.name",
                    "must be at most 253 printable ASCII characters without '/', '%', '?', '#' or '\\', and not '.' or '..'",
                ));
            }
        } else if !valid_name(&name) {
            return Err(invalid(
                rt,
                &name,
                "metadata.name",
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            ));
        }
        if rt.status_subresource
            && rt.schema.is_some()
            && let Some(o) = obj.as_object_mut()
        {
            o.remove("status");
        }
        self.admit(Operation::Create, requester, rt, &mut obj, None)?;
        crate::schema::validate(rt, &obj)?;
        let mut inner = self.lock();
        if rt.namespaced {
            let namespace = inner
                .objects
                .get("namespaces")
                .and_then(|m| m.get(&(String::new(), ns.to_owned())));
            match namespace {
                None => {
                    return Err(ApiError::NotFound {
                        resource: "namespaces".into(),
                        name: ns.to_owned(),
                    });
                }
                Some(n) if !meta(n, "deletionTimestamp").is_empty() => {
                    return Err(ApiError::Forbidden(format!(
                        "{} {name:?} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                        rt.key()
                    )));
                }
                Some(_) => {}
            }
        }
        if inner
            .objects
            .get(&rt.key())
            .is_some_and(|m| m.contains_key(&(ns.to_owned(), name.clone())))
        {
            return Err(ApiError::AlreadyExists {
                resource: rt.key(),
                name,
            });
        }
        let md = obj["metadata"]
            .as_object_mut()
            .ok_or_else(|| internal("metadata vanished"))?;
        md.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        md.insert("creationTimestamp".into(), json!(now()));
        md.insert("generation".into(), json!(1));
        md.remove("deletionTimestamp");
        md.remove("resourceVersion");
        if rt.key() == "customresourcedefinitions.apiextensions.k8s.io" {
            self.serve_crd(&obj)
                .map_err(|e| invalid(rt, &name, "spec", &e))?;
            establish_crd(&mut obj);
        }
        let created = self.commit(&mut inner, rt, ns, obj, EventType::Added)?;
        drop(inner);
        if rt.key() == "namespaces" && !dry_run::active() {
            self.ensure_default_service_account(&name)?;
        }
        Ok(created)
    }

    /// Replaces an object (or its status) as the admin identity. A non-empty
    /// `metadata.resourceVersion` must match.
    pub fn update(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        obj: Value,
        part: Part,
    ) -> Result<Value> {
        self.update_as(rt, ns, name, obj, part, &Requester::admin())
    }

    /// Replaces an object (or its status) on behalf of `requester`.
    pub fn update_as(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        mut obj: Value,
        part: Part,
        requester: &Requester,
    ) -> Result<Value> {
        self.check_identity(rt, ns, &mut obj)?;
        if meta(&obj, "name") != name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                meta(&obj, "name")
            )));
        }
        let old = self.get(rt, ns, name)?;
        let wanted_rv = meta(&obj, "resourceVersion");
        if !wanted_rv.is_empty() && wanted_rv != meta(&old, "resourceVersion") {
            return Err(ApiError::Conflict {
                resource: rt.key(),
                name: name.to_owned(),
            });
        }
        let mut new = match part {
            Part::Status => {
                let mut n = old.clone();
                if let Some(o) = n.as_object_mut() {
                    o.insert(
                        "status".into(),
                        obj.get("status").cloned().unwrap_or(Value::Null),
                    );
                }
                n
            }
            Part::Main => {
                let mut n = obj;
                if rt.status_subresource {
                    match old.get("status") {
                        Some(s) => n["status"] = s.clone(),
                        None => {
                            if let Some(o) = n.as_object_mut() {
                                o.remove("status");
                            }
                        }
                    }
                }
                // The server owns these.
                for f in [
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                ] {
                    match old["metadata"].get(f) {
                        Some(v) => n["metadata"][f] = v.clone(),
                        None => {
                            if let Some(md) = n["metadata"].as_object_mut() {
                                md.remove(f);
                            }
                        }
                    }
                }
                if spec_part(&n) != spec_part(&old) {
                    let generation = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
                    n["metadata"]["generation"] = json!(generation);
                }
                n
            }
        };
        if part == Part::Main {
            self.admit(Operation::Update, requester, rt, &mut new, Some(&old))?;
            crate::schema::validate(rt, &new)?;
        }
        let mut inner = self.lock();
        // Re-check under the lock: another writer may have won since `get`.
        let current = inner.find(rt, ns, name)?;
        if meta(current, "resourceVersion") != meta(&old, "resourceVersion") {
            return Err(ApiError::Conflict {
                resource: rt.key(),
                name: name.to_owned(),
            });
        }
        if rt.key() == "customresourcedefinitions.apiextensions.k8s.io" {
            self.serve_crd(&new)
                .map_err(|e| invalid(rt, name, "spec", &e))?;
            establish_crd(&mut new);
        }
        let deleting = !meta(&new, "deletionTimestamp").is_empty();
        if deleting && finalizers(&new).is_empty() {
            let gone = self.remove(&mut inner, rt, ns, name)?;
            drop(inner);
            self.collect_garbage()?;
            return Ok(gone);
        }
        self.commit(&mut inner, rt, ns, new, EventType::Modified)
    }

    /// Deletes an object: at once without finalizers, else marks it with a deletionTimestamp.
    pub fn delete(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        propagation: Propagation,
    ) -> Result<Value> {
        if rt.key() == "namespaces" && ["default", "kube-system", "kube-public"].contains(&name) {
            return Err(ApiError::Forbidden(format!(
                "namespaces {name:?} is forbidden: this namespace may not be deleted"
            )));
        }
        let mut inner = self.lock();
        let obj = inner.find(rt, ns, name)?.clone();
        let uid = meta(&obj, "uid");
        let mut fins = finalizers(&obj);
        if propagation == Propagation::Foreground
            && has_dependents(&inner.objects, &uid)
            && !fins.iter().any(|f| f == FOREGROUND_FINALIZER)
        {
            fins.push(FOREGROUND_FINALIZER.to_owned());
        }
        if propagation == Propagation::Orphan {
            orphan_dependents(self, &mut inner, &uid)?;
        }
        // A namespace goes after everything in it (the collector deletes its contents); until
        // then it is Terminating and refuses new objects.
        if rt.key() == "namespaces"
            && gc::namespace_has_contents(&inner.objects, name)
            && !fins.iter().any(|f| f == NAMESPACE_FINALIZER)
        {
            fins.push(NAMESPACE_FINALIZER.to_owned());
        }
        let mut result = if fins.is_empty() {
            self.remove(&mut inner, rt, ns, name)?
        } else if meta(&obj, "deletionTimestamp").is_empty() || fins != finalizers(&obj) {
            let mut marked = obj;
            let first = meta(&marked, "deletionTimestamp").is_empty();
            let md = metadata_mut(&mut marked)?;
            if first {
                md.insert("deletionTimestamp".into(), json!(now()));
                md.insert("deletionGracePeriodSeconds".into(), json!(0));
            }
            md.insert("finalizers".into(), json!(fins));
            if rt.key() == "namespaces" {
                marked["status"]["phase"] = json!("Terminating");
            }
            self.commit(&mut inner, rt, ns, marked, EventType::Modified)?
        } else {
            obj
        };
        drop(inner);
        stamp_api_version(&mut result, rt);
        self.collect_garbage()?;
        Ok(result)
    }

    /// Checks the object's envelope (see [`crate::input::check_object`]) and fills in its kind,
    /// apiVersion and namespace from the request.
    fn check_identity(&self, rt: &ResourceType, ns: &str, obj: &mut Value) -> Result<()> {
        crate::input::check_object(obj).map_err(|m| m.invalid(&rt.kind, &meta(obj, "name")))?;
        match obj.get("kind").and_then(Value::as_str) {
            Some(k) if k != rt.kind => {
                return Err(ApiError::BadRequest(format!(
                    "the kind {k:?} does not match the URL's resource {} ({})",
                    rt.plural, rt.kind
                )));
            }
            _ => obj["kind"] = json!(rt.kind),
        }
        obj["apiVersion"] = json!(rt.api_version());
        if obj["metadata"].is_null() {
            obj["metadata"] = json!({});
        }
        let body_ns = meta(obj, "namespace");
        if rt.namespaced {
            if !body_ns.is_empty() && body_ns != ns {
                return Err(ApiError::BadRequest(format!(
                    "the namespace of the provided object ({body_ns}) does not match the namespace sent on the request ({ns})"
                )));
            }
            obj["metadata"]["namespace"] = json!(ns);
        } else if let Some(md) = obj["metadata"].as_object_mut() {
            md.remove("namespace");
        }
        Ok(())
    }

    fn admit(
        &self,
        op: Operation,
        requester: &Requester,
        rt: &ResourceType,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> Result<()> {
        let hooks = self
            .hooks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for hook in hooks.iter().filter(|h| h.handles(rt)) {
            hook.admit(op, requester, rt, obj, old)?;
        }
        Ok(())
    }

    /// Persists `obj` with the next resourceVersion and publishes the event.
    fn commit(
        &self,
        inner: &mut Inner,
        rt: &ResourceType,
        ns: &str,
        mut obj: Value,
        kind: EventType,
    ) -> Result<Value> {
        crate::events::to_storage(&mut obj, rt);
        // The last check before it is stored: whatever is stored must load again.
        crate::input::check_stored(&obj).map_err(|m| m.invalid(&rt.kind, &meta(&obj, "name")))?;
        if dry_run::active() {
            return dry_run::preview(inner, rt, ns, obj);
        }
        let rv = inner.rv + 1;
        metadata_mut(&mut obj)?.insert("resourceVersion".into(), json!(rv.to_string()));
        let name = meta(&obj, "name");
        let body = serde_json::to_string(&obj).map_err(internal)?;
        inner.persist(
            rv,
            "INSERT OR REPLACE INTO objects (resource, namespace, name, rv, body) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![rt.key(), ns, name, rv as i64, body],
        )?;
        inner
            .objects
            .entry(rt.key())
            .or_default()
            .insert((ns.to_owned(), name), obj.clone());
        self.publish(
            inner,
            WatchEvent {
                rv,
                key: rt.key(),
                namespace: ns.to_owned(),
                kind,
                object: obj.clone(),
            },
        );
        stamp_api_version(&mut obj, rt);
        Ok(obj)
    }

    fn remove(&self, inner: &mut Inner, rt: &ResourceType, ns: &str, name: &str) -> Result<Value> {
        if dry_run::active() {
            return dry_run::preview(inner, rt, ns, inner.find(rt, ns, name)?.clone());
        }
        let rv = inner.rv + 1;
        inner.persist(
            rv,
            "DELETE FROM objects WHERE resource = ?1 AND namespace = ?2 AND name = ?3",
            params![rt.key(), ns, name],
        )?;
        let mut obj = inner
            .objects
            .get_mut(&rt.key())
            .and_then(|m| m.remove(&(ns.to_owned(), name.to_owned())))
            .ok_or_else(|| ApiError::NotFound {
                resource: rt.key(),
                name: name.to_owned(),
            })?;
        if let Ok(md) = metadata_mut(&mut obj) {
            md.insert("resourceVersion".into(), json!(rv.to_string()));
        }
        if rt.key() == "customresourcedefinitions.apiextensions.k8s.io" {
            self.registry.unregister_crd(&obj);
        }
        self.publish(
            inner,
            WatchEvent {
                rv,
                key: rt.key(),
                namespace: ns.to_owned(),
                kind: EventType::Deleted,
                object: obj.clone(),
            },
        );
        stamp_api_version(&mut obj, rt);
        Ok(obj)
    }

    fn publish(&self, inner: &mut Inner, event: WatchEvent) {
        let event = Arc::new(event);
        if inner.history.len() == HISTORY_EVENTS
            && let Some(old) = inner.history.pop_front()
        {
            inner.history_from = old.rv;
        }
        inner.changed.insert(event.key.clone(), event.rv);
        inner.history.push_back(event.clone());
        // No receiver is fine: nobody watches.
        let _ = self.events.send(event);
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
