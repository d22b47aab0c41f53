//! Server-side dry run (`?dryRun=All`): a write runs through everything a real one does (the
//! envelope checks, admission hooks, schema validation, conflicts, the namespace and name
//! checks) and answers what it would store, but nothing is persisted, no resourceVersion moves
//! and no watch event fires.
//!
//! The store's write paths are the same for both: only the last step, [`Store::commit`] and
//! [`Store::remove`], and the side effects outside them (serving a CRD, the default service
//! account of a new namespace, garbage collection) look at the flag. The flag is scoped to the
//! calling thread, for the life of a [`DryRun`] guard: the API's handlers call the store
//! synchronously, so every write one request makes, nested ones included, sees it.

use std::cell::Cell;

use serde_json::{Value, json};

use super::{Inner, Store, meta, metadata_mut, stamp_api_version};
use crate::error::{ApiError, Result};
use crate::resources::{Registry, ResourceType};

thread_local! {
    static DRY_RUN: Cell<bool> = const { Cell::new(false) };
}

/// While alive, the store's writes on this thread are dry runs (when it was entered with
/// `true`). Dropping it restores what was before, also on unwinding.
#[must_use = "the dry run ends when the guard is dropped"]
pub struct DryRun {
    previous: bool,
}

impl DryRun {
    /// Enters a dry run when `dry` is set (otherwise the guard changes nothing).
    pub fn enter(dry: bool) -> Self {
        let previous = DRY_RUN.with(|d| d.replace(d.get() || dry));
        Self { previous }
    }

    /// Reads the `dryRun` query parameter of a write: absent or empty means a real write,
    /// `All` a dry run; anything else is refused (the one value Kubernetes defines).
    pub fn requested(value: Option<&str>) -> Result<bool> {
        match value {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::BadRequest(format!(
                "dryRun: Unsupported value: {other:?}: supported values: \"All\""
            ))),
        }
    }
}

impl DryRun {
    /// Reads `dryRun` from a delete's `DeleteOptions` body (where kubectl and kube-rs put it):
    /// a list whose entries must all be `All`. A body that is not JSON is left to the handler
    /// to refuse.
    pub fn requested_in_options(body: &[u8]) -> Result<bool> {
        let Ok(opts) = serde_json::from_slice::<Value>(body) else {
            return Ok(false);
        };
        let mut dry = false;
        for value in opts["dryRun"].as_array().into_iter().flatten() {
            dry |= Self::requested(Some(value.as_str().unwrap_or("(not a string)")))?;
        }
        Ok(dry)
    }
}

impl Drop for DryRun {
    fn drop(&mut self) {
        DRY_RUN.with(|d| d.set(self.previous));
    }
}

/// Whether the current write is a dry run.
pub(crate) fn active() -> bool {
    DRY_RUN.with(Cell::get)
}

/// What a dry-run write of `obj` answers: the object as it would be stored, with the version it
/// has now (none for one that does not exist yet), as kube-apiserver answers it.
pub(super) fn preview(inner: &Inner, rt: &ResourceType, ns: &str, mut obj: Value) -> Result<Value> {
    let name = meta(&obj, "name");
    let current = inner
        .objects
        .get(&rt.key())
        .and_then(|m| m.get(&(ns.to_owned(), name)))
        .map(|o| meta(o, "resourceVersion"));
    let md = metadata_mut(&mut obj)?;
    match current {
        Some(rv) => md.insert("resourceVersion".into(), json!(rv)),
        None => md.remove("resourceVersion"),
    };
    stamp_api_version(&mut obj, rt);
    Ok(obj)
}

impl Store {
    /// Serves a CRD's versions, or in a dry run only checks that it could (on a scratch
    /// registry).
    pub(super) fn serve_crd(&self, crd: &Value) -> std::result::Result<(), String> {
        if active() {
            Registry::default().register_crd(crd)
        } else {
            self.registry.register_crd(crd)
        }
    }
}
