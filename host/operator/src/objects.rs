//! A session's Kubernetes objects: rendering them through the template plugin, applying them
//! (server-side apply, kinds resolved by discovery and cached), and deleting them.

use std::time::Instant;

use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, Preconditions,
};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource as _, ResourceExt as _};
use serde_json::{Value, json};
use vdi_crd::{
    DecisionRecord, ObjectRecord, SESSION_UID_LABEL, VDISession, VDISessionStatus,
    session_field_manager,
};
use vdi_plugin_host::types::{Placement as WitPlacement, TemplateInfo};

use crate::admission::{admitted_request, duration_micros};
use crate::session::{Context, Error};

impl Context {
    /// The API resource serving `kind` of `api_version` (discovered once, then cached).
    pub(crate) async fn api_resource(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<ApiResource, Error> {
        let key = (api_version.to_owned(), kind.to_owned());
        if let Some(ar) = self
            .kinds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
        {
            return Ok(ar.clone());
        }
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (ar, _) = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .map_err(|e| {
                Error::Other(format!(
                    "{api_version} {kind} is not served by this cluster: {e}"
                ))
            })?;
        self.kinds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, ar.clone());
        Ok(ar)
    }

    pub(crate) async fn dynamic(
        &self,
        ns: &str,
        api_version: &str,
        kind: &str,
    ) -> Result<Api<DynamicObject>, Error> {
        let ar = self.api_resource(api_version, kind).await?;
        Ok(Api::namespaced_with(self.client.clone(), ns, &ar))
    }
}

/// Whether `obj` belongs to the session with uid `uid`: it carries that uid label. An object of
/// the same name without it was made by someone else and is never changed nor deleted.
fn owned_by(obj: &DynamicObject, uid: &str) -> bool {
    obj.labels().get(SESSION_UID_LABEL).map(String::as_str) == Some(uid)
}

/// The object `o` names, if it exists and belongs to `session`.
pub(crate) async fn get_owned(
    ctx: &Context,
    session: &VDISession,
    o: &ObjectRecord,
) -> Result<Option<DynamicObject>, Error> {
    let ns = session.namespace().unwrap_or_default();
    let uid = session.uid().unwrap_or_default();
    let api = ctx.dynamic(&ns, &o.api_version, &o.kind).await?;
    Ok(api
        .get_opt(&o.name)
        .await?
        .filter(|obj| owned_by(obj, &uid)))
}

/// Deletes those of `objects` that belong to `session` (background propagation); those already
/// gone, and same-named objects someone else made, are left alone.
pub(crate) async fn delete_objects(
    ctx: &Context,
    session: &VDISession,
    objects: &[ObjectRecord],
) -> Result<(), Error> {
    let ns = session.namespace().unwrap_or_default();
    for o in objects {
        let Some(obj) = get_owned(ctx, session, o).await? else {
            continue;
        };
        // The uid precondition keeps an object recreated since the read (by anyone) alive.
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: obj.uid(),
                resource_version: None,
            }),
            ..DeleteParams::background()
        };
        let api = ctx.dynamic(&ns, &o.api_version, &o.kind).await?;
        match api.delete(&o.name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Reason of a session whose template or renderer failed.
pub(crate) const RENDER_FAILED: &str = "RenderFailed";
/// Reason of a session whose objects' names are taken by objects it does not own.
pub(crate) const OBJECT_CONFLICT: &str = "ObjectConflict";

/// Why provisioning stopped.
pub(crate) enum ProvisionError {
    /// The session cannot be provisioned and fails: a reason word, the message, and the
    /// renderer's decision when it ran.
    Fatal {
        reason: &'static str,
        message: String,
        decision: Option<DecisionRecord>,
    },
    Api(Error),
}

impl From<Error> for ProvisionError {
    fn from(e: Error) -> Self {
        Self::Api(e)
    }
}

impl From<kube::Error> for ProvisionError {
    fn from(e: kube::Error) -> Self {
        Self::Api(e.into())
    }
}

/// Renders the session's objects with its template's renderer, adds the owner reference, the
/// uid label and the template's pull secrets, checks that none of their names is taken by an
/// object the session does not own, and only then server-side applies each one.
pub(crate) async fn provision(
    ctx: &Context,
    session: &VDISession,
    status: &VDISessionStatus,
) -> Result<(Vec<ObjectRecord>, DecisionRecord), ProvisionError> {
    let ns = session.namespace().unwrap_or_default();
    let (Some(admitted), Some(node)) = (status.admitted.clone(), status.node.clone()) else {
        return Err(Error::Other("provisioning without a placement".into()).into());
    };
    let Some(template) = ctx.templates.get(&ObjectRef::new(&admitted.template)) else {
        return Err(ProvisionError::Fatal {
            reason: RENDER_FAILED,
            message: format!("VDITemplate {:?} does not exist", admitted.template),
            decision: None,
        });
    };
    let set = ctx.registry.current();
    let renderer = set
        .renderer(template.spec.renderer.as_deref())
        .map_err(Error::Other)?
        .clone();
    let request = admitted_request(session, &admitted);
    let info = TemplateInfo {
        name: admitted.template.clone(),
        display_name: template.spec.display_name.clone(),
        image: template.spec.image.clone(),
        settings: template
            .spec
            .settings
            .as_ref()
            .map_or_else(String::new, Value::to_string),
    };
    let placement = WitPlacement {
        node: node.clone(),
        gpu: status.gpu,
        reason: status.message.clone().unwrap_or_default(),
    };
    let policy = ctx.settings.render_policy.clone().with_allowed_secrets(
        template
            .spec
            .image_pull_secrets
            .iter()
            .map(|s| s.name.clone()),
    );
    let started = Instant::now();
    let rendered = crate::calls::on_pool(&ctx.registry, renderer.limits().timeout, {
        let renderer = renderer.clone();
        move || renderer.render(&request, &info, &placement, &policy)
    })
    .await?;
    let mut record = DecisionRecord {
        hook: "template".into(),
        plugin: renderer.name().to_owned(),
        digest: renderer.digest().to_string(),
        outcome: "Rendered".into(),
        message: String::new(),
        latency_micros: duration_micros(started.elapsed()),
    };
    let objects = match rendered {
        Ok(o) => o,
        Err(e) => {
            record.outcome = "Failed".into();
            record.message = e.to_string();
            return Err(ProvisionError::Fatal {
                reason: RENDER_FAILED,
                message: format!("template plugin {}: {e}", renderer.name()),
                decision: Some(record),
            });
        }
    };
    record.message = format!("{} objects", objects.len());
    let owner = session
        .controller_owner_ref(&())
        .ok_or_else(|| Error::Other("session has no uid".into()))?;
    let uid = session.uid().unwrap_or_default();
    let pull_secrets: Vec<Value> = template
        .spec
        .image_pull_secrets
        .iter()
        .map(|s| json!({"name": s.name}))
        .collect();
    let mut planned = Vec::with_capacity(objects.len());
    for mut obj in objects {
        obj["metadata"]["ownerReferences"] = json!([owner]);
        obj["metadata"]["labels"][SESSION_UID_LABEL] = json!(uid);
        let o = ObjectRecord {
            api_version: obj["apiVersion"].as_str().unwrap_or_default().to_owned(),
            kind: obj["kind"].as_str().unwrap_or_default().to_owned(),
            name: obj["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        };
        if o.kind == "Pod" && !pull_secrets.is_empty() {
            obj["spec"]["imagePullSecrets"] = json!(pull_secrets);
        }
        let api = ctx.dynamic(&ns, &o.api_version, &o.kind).await?;
        planned.push((o, obj, api));
    }
    // All are checked before any is applied, so a conflict leaves nothing half-applied. (An
    // object created in the moment between the check and the apply is not caught.)
    let mut conflicts = Vec::new();
    for (o, _, api) in &planned {
        if let Some(existing) = api.get_opt(&o.name).await?
            && !owned_by(&existing, &uid)
        {
            conflicts.push(format!(
                "{}/{} already exists and is not owned by this session",
                o.kind, o.name
            ));
        }
    }
    if !conflicts.is_empty() {
        return Err(ProvisionError::Fatal {
            reason: OBJECT_CONFLICT,
            message: format!("{}; nothing was applied", conflicts.join("; ")),
            decision: Some(record),
        });
    }
    let manager = session_field_manager(&uid);
    let mut records = Vec::with_capacity(planned.len());
    for (o, obj, api) in planned {
        api.patch(
            &o.name,
            &PatchParams::apply(&manager).force(),
            &Patch::Apply(&obj),
        )
        .await?;
        records.push(o);
    }
    Ok((records, record))
}
