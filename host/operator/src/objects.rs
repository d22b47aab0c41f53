//! A session's Kubernetes objects: render (the template plugin) -> finish (owner reference, uid
//! label, pull secrets) -> apply (server-side, only when no name is taken by someone else), and
//! their deletion. Kinds are resolved through [`crate::discovery`].

use std::time::Instant;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, Preconditions};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource as _, ResourceExt as _};
use serde_json::{Map, Value, json};
use vdi_crd::{
    DecisionRecord, FIELD_MANAGER, HookKind, LocalRef, ObjectRecord, Outcome, RETAIN_ANNOTATION,
    SESSION_LABEL, SESSION_UID_LABEL, VDISession, VDISessionStatus, VDITemplateSpec,
    session_field_manager,
};
use vdi_plugin_host::types::{Placement, SessionRequest};

use crate::calls::duration_micros;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::wit;

/// Whether `obj` belongs to the session with uid `uid`: it carries that uid label. An object of
/// the same name without it was made by someone else and is never changed nor deleted.
fn owned_by(obj: &DynamicObject, uid: &str) -> bool {
    obj.labels().get(SESSION_UID_LABEL).map(String::as_str) == Some(uid)
}

/// Whether the (rendered or stored) object outlives its session: [`RETAIN_ANNOTATION`] is
/// `"true"`.
fn retained(obj: &Value) -> bool {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(RETAIN_ANNOTATION))
        .and_then(Value::as_str)
        == Some("true")
}

/// The object `o` names, if it exists and belongs to `session`.
pub(crate) async fn get_owned(
    ctx: &Context,
    session: &VDISession,
    o: &ObjectRecord,
) -> Result<Option<DynamicObject>> {
    let ns = session.namespace().unwrap_or_default();
    let uid = session.uid().unwrap_or_default();
    let api = ctx.discovery.dynamic(&ns, &o.api_version, &o.kind).await?;
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
) -> Result<()> {
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
        let api = ctx.discovery.dynamic(&ns, &o.api_version, &o.kind).await?;
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

/// Renders the objects of the session (`request`, built by the reconcile) with its template's
/// renderer, finishes them and creates them (see [`apply`]: a name taken by an object the
/// session does not own leaves nothing applied). Returns what was applied and the renderer's
/// decision.
pub(crate) async fn provision(
    ctx: &Context,
    session: &VDISession,
    status: &VDISessionStatus,
    request: &SessionRequest,
) -> Result<(Vec<ObjectRecord>, DecisionRecord), ProvisionError> {
    let (Some(admitted), Some(placement)) = (status.admitted.as_ref(), wit::placement(status))
    else {
        return Err(Error::Other("provisioning without a placement".into()).into());
    };
    let Some(template) = ctx.templates.get(&ObjectRef::new(&admitted.template)) else {
        return Err(ProvisionError::Fatal {
            reason: RENDER_FAILED,
            message: format!("VDITemplate {:?} does not exist", admitted.template),
            decision: None,
        });
    };
    let (objects, record) =
        render(ctx, &admitted.template, &template.spec, request, placement).await?;
    let owner = session
        .controller_owner_ref(&())
        .ok_or_else(|| Error::Other("session has no uid".into()))?;
    let uid = session.uid().unwrap_or_default();
    // The streamer reads the connect keys from the namespace's ConfigMap: put it there first.
    // Without it the desktop still starts (and the keys task publishes them later), so a
    // failure here only delays connecting.
    let ns = session.namespace().unwrap_or_default();
    if let Err(e) = ctx.keys.ensure(&ctx.client, &ns).await {
        tracing::warn!(namespace = %ns, error = %e, "connect keys not published yet");
    }
    let finished =
        finish(objects, &owner, &uid, &template.spec.image_pull_secrets).map_err(|message| {
            ProvisionError::Fatal {
                reason: RENDER_FAILED,
                message,
                decision: Some(record.clone()),
            }
        })?;
    apply(ctx, session, &uid, finished, record).await
}

/// Calls the renderer of template `name` on the plugin pool.
async fn render(
    ctx: &Context,
    name: &str,
    template: &VDITemplateSpec,
    request: &SessionRequest,
    placement: Placement,
) -> Result<(Vec<Value>, DecisionRecord), ProvisionError> {
    let set = ctx.registry.current();
    let renderer = set
        .renderer(template.renderer.as_deref())
        .map_err(Error::Other)?
        .clone();
    let info = wit::template_info(name, template);
    let policy = ctx.settings.render_policy.clone().with_allowed_secrets(
        template
            .image_pull_secrets
            .iter()
            .chain(&template.secrets)
            .map(|s| s.name.clone()),
    );
    let started = Instant::now();
    let rendered = crate::calls::on_pool(&ctx.registry, renderer.limits().timeout, {
        let renderer = renderer.clone();
        let request = request.clone();
        move || renderer.render(&request, &info, &placement, &policy)
    })
    .await?;
    let latency = duration_micros(started.elapsed());
    let record = |outcome: Outcome, message: String| {
        DecisionRecord::new(
            HookKind::Template,
            renderer.name(),
            renderer.digest().to_string(),
            outcome,
            message,
            latency,
        )
    };
    match rendered {
        Ok(objects) => {
            let decision = record(Outcome::Rendered, format!("{} objects", objects.len()));
            Ok((objects, decision))
        }
        Err(e) => Err(ProvisionError::Fatal {
            reason: RENDER_FAILED,
            message: format!("template plugin {}: {e}", renderer.name()),
            decision: Some(record(Outcome::Failed, e.to_string())),
        }),
    }
}

/// Gives each rendered object the session's owner reference and uid label, and each Pod the
/// template's pull secrets; a retained object ([`RETAIN_ANNOTATION`]) gets neither and loses
/// the session label, as it outlives the session. Pure; the render check already made every object a JSON object with
/// an object `metadata`, so the error (a shape the check let through) is a safeguard.
fn finish(
    objects: Vec<Value>,
    owner: &OwnerReference,
    uid: &str,
    pull_secrets: &[LocalRef],
) -> Result<Vec<(ObjectRecord, Value)>, String> {
    let pull_secrets: Vec<Value> = pull_secrets
        .iter()
        .map(|s| json!({"name": s.name}))
        .collect();
    let mut finished = Vec::with_capacity(objects.len());
    for (index, mut obj) in objects.into_iter().enumerate() {
        let malformed = |what: &str| format!("rendered object {index}: {what} is not an object");
        let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
        let meta = obj.get("metadata").unwrap_or(&Value::Null);
        let o = ObjectRecord {
            api_version: text(&obj, "apiVersion").unwrap_or_default(),
            kind: text(&obj, "kind").unwrap_or_default(),
            name: text(meta, "name").unwrap_or_default(),
        };
        let fields = obj.as_object_mut().ok_or_else(|| malformed("it"))?;
        if o.kind == "Pod" && !pull_secrets.is_empty() {
            let spec = object_at(fields, "spec").ok_or_else(|| malformed("spec"))?;
            spec.insert("imagePullSecrets".into(), json!(pull_secrets));
        }
        let keep = retained(&Value::Object(fields.clone()));
        let meta = object_at(fields, "metadata").ok_or_else(|| malformed("metadata"))?;
        if keep {
            let labels = object_at(meta, "labels").ok_or_else(|| malformed("metadata.labels"))?;
            labels.remove(SESSION_LABEL);
            labels.remove(SESSION_UID_LABEL);
        } else {
            meta.insert("ownerReferences".into(), json!([owner]));
            let labels = object_at(meta, "labels").ok_or_else(|| malformed("metadata.labels"))?;
            labels.insert(SESSION_UID_LABEL.into(), json!(uid));
        }
        finished.push((o, obj));
    }
    Ok(finished)
}

/// The object under `key` of `map`, made empty when absent; `None` when it is something else.
fn object_at<'a>(map: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    let v = map.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if v.is_null() {
        *v = Value::Object(Map::new());
    }
    v.as_object_mut()
}

/// Applies the finished objects of session `uid` with its own field manager, unless one of their
/// names is taken by an object it does not own: then nothing is applied and the session fails.
/// A retained object is created once (with the operator's shared field manager) and left as
/// it is when it exists and is itself retained: an earlier session of the same user and
/// template made it.
async fn apply(
    ctx: &Context,
    session: &VDISession,
    uid: &str,
    finished: Vec<(ObjectRecord, Value)>,
    record: DecisionRecord,
) -> Result<(Vec<ObjectRecord>, DecisionRecord), ProvisionError> {
    let ns = session.namespace().unwrap_or_default();
    let mut planned = Vec::with_capacity(finished.len());
    for (o, obj) in finished {
        let api = ctx.discovery.dynamic(&ns, &o.api_version, &o.kind).await?;
        planned.push((o, obj, api));
    }
    // Fresh names (the common case) are created: one request each and no read. A taken name
    // is looked at: the session's own object (from an earlier pass) is applied again, a
    // retained one is kept; anything else is a conflict, and what this pass created is deleted
    // again, so a conflict leaves nothing applied.
    let manager = session_field_manager(uid);
    let mut created = Vec::new();
    let mut conflicts = Vec::new();
    let mut records = Vec::with_capacity(planned.len());
    for (o, obj, api) in &planned {
        let keep = retained(obj);
        let manager = if keep {
            FIELD_MANAGER
        } else {
            manager.as_str()
        };
        match create(api, obj, manager).await {
            Ok(true) => created.push((o, api)),
            Ok(false) => {
                let existing = api.get_opt(&o.name).await?;
                match existing {
                    Some(e) if keep && serde_json::to_value(&e).is_ok_and(|v| retained(&v)) => {}
                    Some(e) if !keep && owned_by(&e, uid) => {
                        let params = PatchParams::apply(manager).force();
                        api.patch(&o.name, &params, &Patch::Apply(obj)).await?;
                    }
                    // Deleted since the create was refused: created on the next pass.
                    None => {
                        return Err(Error::Other(format!("{} {} went away", o.kind, o.name)).into());
                    }
                    Some(_) => conflicts.push(format!(
                        "{}/{} already exists and is not owned by this session",
                        o.kind, o.name
                    )),
                }
            }
            Err(e) => return Err(e.into()),
        }
        records.push(o.clone());
    }
    if conflicts.is_empty() {
        return Ok((records, record));
    }
    for (o, api) in created {
        match api.delete(&o.name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(ProvisionError::Fatal {
        reason: OBJECT_CONFLICT,
        message: format!("{}; nothing was applied", conflicts.join("; ")),
        decision: Some(record),
    })
}

/// Creates `obj` through `api` as `manager`: `true` when created, `false` when the name is
/// taken.
async fn create(
    api: &kube::Api<DynamicObject>,
    obj: &Value,
    manager: &str,
) -> std::result::Result<bool, Error> {
    let object: DynamicObject =
        serde_json::from_value(obj.clone()).map_err(|e| Error::Other(e.to_string()))?;
    let params = kube::api::PostParams {
        dry_run: false,
        field_manager: Some(manager.to_owned()),
    };
    match api.create(&params, &object).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 && e.reason == "AlreadyExists" => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> OwnerReference {
        OwnerReference {
            api_version: "vdi.dev/v1alpha1".into(),
            kind: "VDISession".into(),
            name: "s".into(),
            uid: "u-1".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    #[test]
    fn finish_adds_owner_label_and_pull_secrets() {
        let objects = vec![
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "desktop",
                "labels": {"vdi.dev/session": "s"}}, "spec": {"containers": []}}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "desktop"}}),
        ];
        let secrets = [LocalRef {
            name: "registry".into(),
        }];
        let finished = finish(objects, &owner(), "u-1", &secrets).unwrap();
        let (pod, pod_obj) = &finished[0];
        assert_eq!((pod.kind.as_str(), pod.name.as_str()), ("Pod", "desktop"));
        assert_eq!(pod_obj["metadata"]["labels"][SESSION_UID_LABEL], "u-1");
        assert_eq!(pod_obj["metadata"]["labels"]["vdi.dev/session"], "s");
        assert_eq!(pod_obj["metadata"]["ownerReferences"][0]["uid"], "u-1");
        assert_eq!(
            pod_obj["spec"]["imagePullSecrets"],
            json!([{"name": "registry"}])
        );
        let (svc, svc_obj) = &finished[1];
        assert_eq!(svc.kind, "Service");
        assert_eq!(svc_obj["metadata"]["labels"][SESSION_UID_LABEL], "u-1");
        assert!(svc_obj.get("spec").is_none(), "only Pods get pull secrets");
    }

    #[test]
    fn finish_leaves_retained_objects_unowned() {
        let objects = vec![json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "home-ubuntu", "labels": {"vdi.dev/session": "s"},
                "annotations": {RETAIN_ANNOTATION: "true"}}})];
        let finished = finish(objects, &owner(), "u-1", &[]).unwrap();
        let (_, pvc) = &finished[0];
        assert!(pvc["metadata"].get("ownerReferences").is_none());
        assert!(pvc["metadata"]["labels"].get(SESSION_UID_LABEL).is_none());
        assert!(pvc["metadata"]["labels"].get(SESSION_LABEL).is_none());
        assert!(retained(pvc));
        let not = json!({"metadata": {"annotations": {RETAIN_ANNOTATION: "yes"}}});
        assert!(!retained(&not), "only \"true\" retains");
    }

    #[test]
    fn finish_refuses_shapes_the_render_check_would_not_pass() {
        let bad = vec![json!({"kind": "Pod", "metadata": {"name": "p", "labels": "x"}})];
        assert!(finish(bad, &owner(), "u", &[]).is_err());
        assert!(finish(vec![json!([1])], &owner(), "u", &[]).is_err());
    }
}
