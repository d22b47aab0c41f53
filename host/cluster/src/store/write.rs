//! The write path: creates, updates and deletes are checked (envelope, names, admission,
//! schema, conflicts) and staged under the store's lock, then wait for their group commit
//! ([`super::commit`]) before they are answered.

use serde_json::{Value, json};

use super::gc::{has_dependents, orphan_dependents};
use super::{
    EventType, FOREGROUND_FINALIZER, NAMESPACE_FINALIZER, Part, Propagation, Store, dry_run,
    establish_crd, finalizers, internal, invalid, meta, metadata_mut, now, same_spec,
    stamp_api_version, valid_name,
};
use crate::admission::{Operation, Requester};
use crate::error::{ApiError, Result};
use crate::resources::ResourceType;

impl Store {
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
        let (created, ticket) = self.stage(&mut inner, rt, ns, obj, EventType::Added)?;
        drop(inner);
        self.wait(&ticket)?;
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
        let old = self.get_latest(rt, ns, name)?;
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
                if !same_spec(&n, &old) {
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
            let (gone, ticket) = self.stage_removal(&mut inner, rt, ns, name)?;
            drop(inner);
            self.wait(&ticket)?;
            self.collect_garbage()?;
            return Ok(gone);
        }
        let (updated, ticket) = self.stage(&mut inner, rt, ns, new, EventType::Modified)?;
        drop(inner);
        self.wait(&ticket)?;
        Ok(updated)
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
        let mut tickets = Vec::new();
        if propagation == Propagation::Orphan {
            tickets = orphan_dependents(self, &mut inner, &uid)?;
        }
        // A namespace goes after everything in it (the collector deletes its contents); until
        // then it is Terminating and refuses new objects.
        if rt.key() == "namespaces"
            && super::gc::namespace_has_contents(&inner.objects, name)
            && !fins.iter().any(|f| f == NAMESPACE_FINALIZER)
        {
            fins.push(NAMESPACE_FINALIZER.to_owned());
        }
        let mut result = if fins.is_empty() {
            let (gone, ticket) = self.stage_removal(&mut inner, rt, ns, name)?;
            tickets.push(ticket);
            gone
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
            let (marked, ticket) = self.stage(&mut inner, rt, ns, marked, EventType::Modified)?;
            tickets.push(ticket);
            marked
        } else {
            obj
        };
        drop(inner);
        for ticket in &tickets {
            self.wait(ticket)?;
        }
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
}
