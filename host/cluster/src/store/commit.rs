//! Group commit: concurrent writes share one SQLite transaction.
//!
//! A write is checked and *staged* under the store's lock: it gets the next resourceVersion,
//! its object is serialized, and the writers' view (`Inner::objects`) takes it, so the next
//! writer checks against it; readers and watches still see the committed view
//! (`Inner::committed`). The writer then releases the lock and [`Store::wait`]s: it takes the
//! database mutex, and unless an earlier holder already committed its write, it takes every
//! write staged so far and commits them in one transaction (synchronous=NORMAL in WAL mode, as
//! before: a committed transaction is in the WAL file, so it survives a crash of the process).
//! Only then are the writes applied to the committed view and published to watches, in
//! resourceVersion order, and their writers answered.
//!
//! Why nothing observed is ever lost: readers, watches and answers all follow a commit. Why
//! nothing is half-applied: when a transaction fails, every write in it fails with the error,
//! and so does every write staged after it (each was checked against a view that held the failed
//! ones); the writers' view is set back to the committed one. Failed versions are skipped, not
//! given again, so resourceVersions grow strictly in commit order.

use std::sync::{Arc, OnceLock};

use rusqlite::{Connection, params};
use serde_json::{Value, json};

use super::{EventType, Inner, Store, Stored, WatchEvent, dry_run, internal, meta, metadata_mut};
use super::{HISTORY_EVENTS, stamp_api_version};
use crate::error::{ApiError, Result};
use crate::resources::ResourceType;

/// The outcome of a staged write, set once by the committer that wrote (or failed) it.
pub(super) type Ticket = Arc<OnceLock<Result<()>>>;

/// A staged write.
pub(super) struct Staged {
    rv: u64,
    key: String,
    namespace: String,
    name: String,
    /// The new object; `None` for a deletion.
    stored: Option<Arc<Stored>>,
    event: WatchEvent,
    done: Ticket,
}

fn settled() -> Ticket {
    let ticket = Ticket::default();
    let _ = ticket.set(Ok(()));
    ticket
}

impl Inner {
    fn enqueue(&mut self, staged: Staged) -> Ticket {
        let done = staged.done.clone();
        self.staged_rv = staged.rv;
        let (key, ns, name) = (&staged.key, &staged.namespace, &staged.name);
        let slot = (ns.clone(), name.clone());
        match &staged.stored {
            Some(s) => {
                self.objects
                    .entry(key.clone())
                    .or_default()
                    .insert(slot, s.clone());
            }
            None => {
                if let Some(m) = self.objects.get_mut(key) {
                    m.remove(&slot);
                }
            }
        }
        self.queue.push(staged);
        done
    }

    /// Makes a committed write visible: the committed view, the history, the broadcast.
    fn publish(&mut self, store: &Store, staged: Staged) {
        let slot = (staged.namespace, staged.name);
        match staged.stored {
            Some(s) => {
                self.committed
                    .entry(staged.key)
                    .or_default()
                    .insert(slot, s);
            }
            None => {
                if let Some(m) = self.committed.get_mut(&staged.key) {
                    m.remove(&slot);
                }
                if staged.event.key == "customresourcedefinitions.apiextensions.k8s.io" {
                    store.registry.unregister_crd(&staged.event.object);
                }
            }
        }
        self.rv = staged.rv;
        let event = Arc::new(staged.event);
        if self.history.len() == HISTORY_EVENTS
            && let Some(old) = self.history.pop_front()
        {
            self.history_from = old.rv;
        }
        self.changed.insert(event.key.clone(), event.rv);
        self.history.push_back(event.clone());
        // No receiver is fine: nobody watches.
        let _ = store.events.send(event);
        let _ = staged.done.set(Ok(()));
    }

    /// Fails `failed` and every write staged after them, and sets the writers' view back to
    /// the committed one.
    fn fail(&mut self, failed: Vec<Staged>, error: &ApiError) {
        let later = std::mem::take(&mut self.queue);
        for staged in failed.into_iter().chain(later) {
            let slot = (staged.namespace, staged.name);
            match self.committed.get(&staged.key).and_then(|m| m.get(&slot)) {
                Some(s) => {
                    let s = s.clone();
                    self.objects.entry(staged.key).or_default().insert(slot, s);
                }
                None => {
                    if let Some(m) = self.objects.get_mut(&staged.key) {
                        m.remove(&slot);
                    }
                }
            }
            let _ = staged.done.set(Err(error.clone()));
        }
        // The failed versions are not given again: a read-modify-write that read a failed
        // write must not find its version on another.
    }
}

/// Writes `batch` and the last version in one transaction.
fn write_batch(db: &mut Connection, batch: &[Staged]) -> rusqlite::Result<()> {
    let Some(last) = batch.last() else {
        return Ok(());
    };
    let tx = db.transaction()?;
    {
        let mut put = tx.prepare_cached(
            "INSERT OR REPLACE INTO objects (resource, namespace, name, rv, body) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut delete = tx.prepare_cached(
            "DELETE FROM objects WHERE resource = ?1 AND namespace = ?2 AND name = ?3",
        )?;
        for s in batch {
            match &s.stored {
                Some(stored) => {
                    let body = std::str::from_utf8(&stored.json)
                        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
                    put.execute(params![s.key, s.namespace, s.name, s.rv as i64, body])?;
                }
                None => {
                    delete.execute(params![s.key, s.namespace, s.name])?;
                }
            }
        }
        tx.prepare_cached("INSERT OR REPLACE INTO meta (k, v) VALUES ('rv', ?1)")?
            .execute(params![last.rv as i64])?;
    }
    tx.commit()
}

impl Store {
    /// Stages `obj` with the next resourceVersion; the write is done once [`Store::wait`]
    /// on the ticket returns Ok. Returns the object as the answer shows it.
    pub(super) fn stage(
        &self,
        inner: &mut Inner,
        rt: &ResourceType,
        ns: &str,
        mut obj: Value,
        kind: EventType,
    ) -> Result<(Value, Ticket)> {
        crate::events::to_storage(&mut obj, rt);
        // The last check before it is stored: whatever is stored must load again.
        crate::input::check_stored(&obj).map_err(|m| m.invalid(&rt.kind, &meta(&obj, "name")))?;
        if dry_run::active() {
            return Ok((dry_run::preview(inner, rt, ns, obj)?, settled()));
        }
        let rv = inner.staged_rv + 1;
        metadata_mut(&mut obj)?.insert("resourceVersion".into(), json!(rv.to_string()));
        let name = meta(&obj, "name");
        let stored = Arc::new(Stored::new(obj)?);
        let event = WatchEvent::new(rv, rt.key(), ns.to_owned(), kind, &stored);
        let mut answer = event.object.clone();
        stamp_api_version(&mut answer, rt);
        let ticket = inner.enqueue(Staged {
            rv,
            key: rt.key(),
            namespace: ns.to_owned(),
            name,
            stored: Some(stored),
            event,
            done: Ticket::default(),
        });
        Ok((answer, ticket))
    }

    /// Stages the deletion of an object; see [`Store::stage`].
    pub(super) fn stage_removal(
        &self,
        inner: &mut Inner,
        rt: &ResourceType,
        ns: &str,
        name: &str,
    ) -> Result<(Value, Ticket)> {
        let current = inner.find(rt, ns, name)?.clone();
        if dry_run::active() {
            return Ok((dry_run::preview(inner, rt, ns, current)?, settled()));
        }
        let rv = inner.staged_rv + 1;
        let mut gone = current;
        metadata_mut(&mut gone)?.insert("resourceVersion".into(), json!(rv.to_string()));
        let stored = Stored::new(gone)?;
        let event = WatchEvent::new(rv, rt.key(), ns.to_owned(), EventType::Deleted, &stored);
        let mut answer = stored.value;
        stamp_api_version(&mut answer, rt);
        let ticket = inner.enqueue(Staged {
            rv,
            key: rt.key(),
            namespace: ns.to_owned(),
            name: name.to_owned(),
            stored: None,
            event,
            done: Ticket::default(),
        });
        Ok((answer, ticket))
    }

    /// Waits until the write behind `ticket` is committed (or failed), committing it, and
    /// every other staged write, when no one else is.
    pub(super) fn wait(&self, ticket: &Ticket) -> Result<()> {
        if let Some(outcome) = ticket.get() {
            return outcome.clone();
        }
        let mut db = self
            .db
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // An earlier holder may have committed it with its own.
        if let Some(outcome) = ticket.get() {
            return outcome.clone();
        }
        let batch = std::mem::take(&mut self.lock().queue);
        let written = write_batch(&mut db, &batch);
        let mut inner = self.lock();
        match written {
            Ok(()) => {
                for staged in batch {
                    inner.publish(self, staged);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, writes = batch.len(), "store transaction failed");
                inner.fail(batch, &internal(e));
            }
        }
        drop(inner);
        drop(db);
        ticket.get().cloned().unwrap_or_else(|| {
            Err(internal(
                "a staged write was neither committed nor failed by its committer",
            ))
        })
    }
}
