//! Owner-reference garbage collection: dependents of deleted owners go (background), owners
//! deleted in the foreground wait for their dependents, orphaning strips the references.

use serde_json::{Value, json};

use super::commit::Ticket;
use super::{
    EventType, FOREGROUND_FINALIZER, Inner, NAMESPACE_FINALIZER, Objects, Part, Propagation, Store,
    finalizers, meta, metadata_mut,
};
use crate::error::{ApiError, Result};

impl Store {
    /// Deletes dependents whose owners are gone, and finishes foreground deletions whose
    /// dependents are gone. Repeats until nothing changes.
    pub fn collect_garbage(&self) -> Result<()> {
        if super::dry_run::active() {
            return Ok(()); // a dry run deleted nothing
        }
        loop {
            let (orphans, finished) = {
                let inner = self.lock();
                let all = || inner.objects.values().flat_map(|m| m.values());
                let uids: std::collections::HashSet<String> =
                    all().map(|o| meta(o, "uid")).collect();
                // Owners deleted in the foreground take their dependents with them first.
                let foreground: std::collections::HashSet<String> = all()
                    .filter(|o| finalizers(o).iter().any(|f| f == FOREGROUND_FINALIZER))
                    .map(|o| meta(o, "uid"))
                    .collect();
                let mut orphans = Vec::new();
                let mut finished = Vec::new();
                // Namespaces being deleted take everything in them; once empty, they go.
                let terminating: std::collections::HashSet<&str> = inner
                    .objects
                    .get("namespaces")
                    .into_iter()
                    .flat_map(|m| m.iter())
                    .filter(|(_, o)| !meta(o, "deletionTimestamp").is_empty())
                    .map(|((_, name), _)| name.as_str())
                    .collect();
                for name in &terminating {
                    if !namespace_has_contents(&inner.objects, name) {
                        finished.push(("namespaces".to_owned(), String::new(), (*name).to_owned()));
                    }
                }
                for (key, map) in &inner.objects {
                    for ((ns, name), obj) in map {
                        if terminating.contains(ns.as_str())
                            && meta(obj, "deletionTimestamp").is_empty()
                        {
                            orphans.push((key.clone(), ns.clone(), name.clone()));
                            continue;
                        }
                        let owners: Vec<String> = obj["metadata"]["ownerReferences"]
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|r| r["uid"].as_str().map(str::to_owned))
                                    .collect()
                            })
                            .unwrap_or_default();
                        let owner_gone =
                            !owners.is_empty() && owners.iter().all(|u| !uids.contains(u));
                        let owner_leaving = owners.iter().any(|u| foreground.contains(u));
                        let orphaned = (owner_gone || owner_leaving)
                            && meta(obj, "deletionTimestamp").is_empty();
                        let done = finalizers(obj).iter().any(|f| f == FOREGROUND_FINALIZER)
                            && !has_dependents(&inner.objects, &meta(obj, "uid"));
                        // The collector writes to what it collects: a malformed object would
                        // fail that write on every pass, so it is left alone (and reported).
                        if (orphaned || done) && !well_formed(key, ns, name, obj) {
                            continue;
                        }
                        if orphaned {
                            orphans.push((key.clone(), ns.clone(), name.clone()));
                        }
                        if done {
                            finished.push((key.clone(), ns.clone(), name.clone()));
                        }
                    }
                }
                (orphans, finished)
            };
            if orphans.is_empty() && finished.is_empty() {
                return Ok(());
            }
            for (key, ns, name) in orphans {
                if let Some(rt) = self.type_for_key(&key) {
                    match self.delete(&rt, &ns, &name, Propagation::Background) {
                        Ok(_) | Err(ApiError::NotFound { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            for (key, ns, name) in finished {
                let Some(rt) = self.type_for_key(&key) else {
                    continue;
                };
                let Ok(mut obj) = self.get(&rt, &ns, &name) else {
                    continue;
                };
                let rest: Vec<String> = finalizers(&obj)
                    .into_iter()
                    .filter(|f| f != FOREGROUND_FINALIZER && f != NAMESPACE_FINALIZER)
                    .collect();
                metadata_mut(&mut obj)?.insert("finalizers".into(), json!(rest));
                match self.update(&rt, &ns, &name, obj, Part::Main) {
                    Ok(_) | Err(ApiError::NotFound { .. }) | Err(ApiError::Conflict { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

/// Whether any namespaced object lives in namespace `ns`.
pub(super) fn namespace_has_contents(objects: &Objects, ns: &str) -> bool {
    objects
        .iter()
        .filter(|(key, _)| key.as_str() != "namespaces")
        .flat_map(|(_, m)| m.keys())
        .any(|(o_ns, _)| o_ns == ns)
}

pub(super) fn has_dependents(objects: &Objects, uid: &str) -> bool {
    !uid.is_empty()
        && objects.values().flat_map(|m| m.values()).any(|o| {
            o["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|a| a.iter().any(|r| r["uid"].as_str() == Some(uid)))
        })
}

/// Stages the removal of `uid` from its dependents' owner references; the tickets of the
/// staged writes.
pub(super) fn orphan_dependents(
    store: &Store,
    inner: &mut Inner,
    uid: &str,
) -> Result<Vec<Ticket>> {
    let mut changed = Vec::new();
    for (key, map) in &inner.objects {
        for ((ns, _), obj) in map {
            if let Some(refs) = obj["metadata"]["ownerReferences"].as_array()
                && refs.iter().any(|r| r["uid"].as_str() == Some(uid))
                && well_formed(key, ns, &meta(obj, "name"), obj)
            {
                let mut o = obj.value.clone();
                let kept: Vec<Value> = refs
                    .iter()
                    .filter(|r| r["uid"].as_str() != Some(uid))
                    .cloned()
                    .collect();
                metadata_mut(&mut o)?.insert("ownerReferences".into(), json!(kept));
                changed.push((key.clone(), ns.clone(), o));
            }
        }
    }
    let mut tickets = Vec::new();
    for (key, ns, o) in changed {
        if let Some(rt) = store.type_for_key(&key) {
            tickets.push(store.stage(inner, &rt, &ns, o, EventType::Modified)?.1);
        }
    }
    Ok(tickets)
}

/// Whether the collector may write to `obj`; reports it when not.
fn well_formed(key: &str, ns: &str, name: &str, obj: &Value) -> bool {
    match crate::input::check_object(obj) {
        Ok(()) => true,
        Err(m) => {
            tracing::warn!(object = %format!("{key}/{ns}/{name}"), reason = %m, "garbage collector skips a malformed stored object");
            false
        }
    }
}
