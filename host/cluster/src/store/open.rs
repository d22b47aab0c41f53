//! Opening the store: the SQLite schema, every stored object loaded (a row that cannot be is
//! reported and skipped, never a reason not to start), the CRDs served again, the standard
//! namespaces created.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::{HISTORY_EVENTS, Inner, Objects, Store, Stored, internal, meta};
use crate::error::Result;
use crate::resources::Registry;

impl Store {
    /// Opens (or creates) the store in `dir`, loading every object.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(internal)?;
        let db = Connection::open(dir.join("cluster.db")).map_err(internal)?;
        db.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=NORMAL;
             CREATE TABLE IF NOT EXISTS objects (
                 resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
                 rv INTEGER NOT NULL, body TEXT NOT NULL,
                 PRIMARY KEY (resource, namespace, name));
             CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);",
        )
        .map_err(internal)?;
        let rv: u64 = db
            .query_row("SELECT v FROM meta WHERE k = 'rv'", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|v| v as u64)
            .unwrap_or(0);
        let mut objects: Objects = HashMap::new();
        {
            let mut stmt = db
                .prepare("SELECT resource, namespace, name, body FROM objects")
                .map_err(internal)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })
                .map_err(internal)?;
            // A row that cannot be used is reported and left in the database, not loaded: one bad
            // row must not keep the control plane from starting.
            for row in rows {
                let (resource, ns, name, body) = match row {
                    Ok(row) => row,
                    Err(e) => {
                        tracing::warn!(error = %e, "unreadable row in the store; skipped");
                        continue;
                    }
                };
                match loadable(&body).and_then(|obj| Stored::new(obj).map_err(|e| e.to_string())) {
                    Ok(obj) => {
                        objects
                            .entry(resource)
                            .or_default()
                            .insert((ns, name), Arc::new(obj));
                    }
                    Err(reason) => tracing::warn!(
                        object = %format!("{resource}/{ns}/{name}"),
                        %reason,
                        "stored object cannot be loaded; skipped"
                    ),
                }
            }
        }
        move_legacy_events(&db, &mut objects);
        let registry = Registry::default();
        for crd in objects
            .get("customresourcedefinitions.apiextensions.k8s.io")
            .into_iter()
            .flat_map(|m| m.values())
        {
            if let Err(e) = registry.register_crd(crd) {
                tracing::warn!(crd = %meta(crd, "name"), error = %e, "stored CRD not served");
            }
        }
        let (events, _) = broadcast::channel(HISTORY_EVENTS);
        let store = Self {
            inner: Mutex::new(Inner {
                rv,
                committed: objects.clone(),
                objects,
                staged_rv: rv,
                queue: Vec::new(),
                history: VecDeque::new(),
                history_from: rv,
                changed: HashMap::new(),
            }),
            db: Mutex::new(db),
            events,
            registry,
            hooks: Mutex::new(Vec::new()),
            log_sources: Default::default(),
        };
        let nt = store
            .registry
            .find("", "v1", "namespaces")
            .ok_or_else(|| internal("no namespaces type"))?;
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            if store.get(&nt, "", ns).is_err() {
                store.create(
                    &nt,
                    "",
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
                )?;
            }
        }
        // Namespaces stored before service accounts were served get theirs now.
        let (namespaces, _, _) = store.list(&nt, None, None, None, &|_| true);
        for ns in namespaces {
            store.ensure_default_service_account(&meta(&ns, "name"))?;
        }
        Ok(store)
    }

    /// Creates the `default` ServiceAccount of namespace `ns` unless it exists, as
    /// kube-controller-manager's service account controller does for every namespace.
    pub(super) fn ensure_default_service_account(&self, ns: &str) -> Result<()> {
        let Some(sa) = self.registry.find("", "v1", "serviceaccounts") else {
            return Ok(());
        };
        if self.get(&sa, ns, "default").is_ok() {
            return Ok(());
        }
        let account = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}});
        match self.create(&sa, ns, account) {
            Ok(_) | Err(crate::error::ApiError::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Moves Events stored under their own key (before `events.k8s.io/v1` became a view of the core
/// Events) to the core key, converted, in memory and in the database: so they stay served, and
/// go with their namespace. A row that cannot be moved is reported and left where it was.
fn move_legacy_events(db: &Connection, objects: &mut Objects) {
    const LEGACY: &str = "events.events.k8s.io";
    let Some(legacy) = objects.remove(LEGACY) else {
        return;
    };
    for ((ns, name), obj) in legacy {
        let core = crate::events::stored_form(&obj.value);
        let rv: i64 = meta(&core, "resourceVersion").parse().unwrap_or(0);
        let moved = serde_json::to_string(&core)
            .map_err(|e| e.to_string())
            .and_then(|body| {
                let tx = db.unchecked_transaction().map_err(|e| e.to_string())?;
                tx.execute(
                    "INSERT OR REPLACE INTO objects (resource, namespace, name, rv, body) VALUES ('events', ?1, ?2, ?3, ?4)",
                    rusqlite::params![ns, name, rv, body],
                )
                .and_then(|_| {
                    tx.execute(
                        "DELETE FROM objects WHERE resource = ?1 AND namespace = ?2 AND name = ?3",
                        rusqlite::params![LEGACY, ns, name],
                    )
                })
                .and_then(|_| tx.commit())
                .map_err(|e| e.to_string())
            });
        match moved.and_then(|()| Stored::new(core).map_err(|e| e.to_string())) {
            Ok(core) => {
                objects
                    .entry("events".into())
                    .or_default()
                    .insert((ns, name), Arc::new(core));
            }
            Err(e) => {
                tracing::warn!(event = %format!("{ns}/{name}"), error = %e, "stored events.k8s.io Event not moved")
            }
        }
    }
}

/// Parses a stored row: a JSON object with an object `metadata`, or why it is not.
fn loadable(body: &str) -> std::result::Result<Value, String> {
    let obj: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    if !obj.is_object() {
        return Err("not a JSON object".into());
    }
    if !obj["metadata"].is_object() {
        return Err("metadata is not an object".into());
    }
    Ok(obj)
}
