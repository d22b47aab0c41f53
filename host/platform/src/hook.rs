//! The embedded control plane's in-process admission for `VDISession`: the same chain the
//! operator's webhook runs on a real cluster, reading templates and the user's sessions
//! straight from the store.

use std::sync::Arc;

use serde_json::Value;
use vdi_cluster::{AdmissionHook, ApiError, Operation, Requester, ResourceType, Store};
use vdi_crd::{GROUP, SessionPhase, VDISessionSpec, VDISessionStatus, VDITemplateSpec};
use vdi_operator::{Admission, AdmissionSettings, AdmissionSources, Registry};

/// How long a create or update may wait for admission: a webhook's default `timeoutSeconds`.
const WEBHOOK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs the operator's admission chain on `VDISession` creates and updates.
pub(crate) struct SessionAdmission {
    registry: Arc<Registry>,
    store: Arc<Store>,
    settings: Arc<AdmissionSettings>,
}

impl SessionAdmission {
    /// A hook judging with `registry`'s plugins, reading from `store`, trusting whom
    /// `settings` names (the operator's own admission settings).
    pub(crate) fn new(
        registry: Arc<Registry>,
        store: Arc<Store>,
        settings: AdmissionSettings,
    ) -> Self {
        Self {
            registry,
            store,
            settings: Arc::new(settings),
        }
    }
}

struct StoreSources {
    store: Arc<Store>,
}

impl StoreSources {
    fn kind(&self, plural: &str) -> Option<ResourceType> {
        self.store.registry.find(GROUP, vdi_crd::VERSION, plural)
    }
}

impl AdmissionSources for StoreSources {
    fn template(&self, name: &str) -> Option<VDITemplateSpec> {
        let rt = self.kind("vditemplates")?;
        let obj = self.store.get(&rt, "", name).ok()?;
        serde_json::from_value(obj["spec"].clone()).ok()
    }

    fn sessions_of(&self, user: &str) -> Vec<(String, String, VDISessionSpec, SessionPhase)> {
        let Some(rt) = self.kind("vdisessions") else {
            return Vec::new();
        };
        let (items, _, _) = self.store.list(&rt, None, None, None, &|o| {
            o["spec"]["user"]["name"].as_str() == Some(user)
                && o["metadata"]["deletionTimestamp"].is_null()
        });
        items
            .into_iter()
            .filter_map(|o| {
                let spec: VDISessionSpec = serde_json::from_value(o["spec"].clone()).ok()?;
                let phase = serde_json::from_value::<VDISessionStatus>(o["status"].clone())
                    .map(|s| s.phase())
                    .unwrap_or_default();
                Some((
                    o["metadata"]["namespace"].as_str()?.to_owned(),
                    o["metadata"]["name"].as_str()?.to_owned(),
                    spec,
                    phase,
                ))
            })
            .collect()
    }
}

impl AdmissionHook for SessionAdmission {
    fn handles(&self, rt: &ResourceType) -> bool {
        rt.group == GROUP && rt.plural == "vdisessions"
    }

    fn admit(
        &self,
        op: Operation,
        requester: &Requester,
        _rt: &ResourceType,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> vdi_cluster::Result<()> {
        let set = self.registry.current();
        if set.version == 0 {
            // Fail closed, like a webhook with failurePolicy Fail that is not up yet.
            return Err(ApiError::Forbidden(
                "admission webhook \"vdisessions.vdi.dev\" is not ready: the plugins are still loading".into(),
            ));
        }
        let sources = StoreSources {
            store: self.store.clone(),
        };
        let who = vdi_operator::Requester {
            user: requester.user.clone(),
            groups: requester.groups.clone(),
        };
        let create = op == Operation::Create;
        // Plugin calls run on the runtime's plugin threads, never on the async worker serving
        // this request; the worker waits (outside the scheduler's way on a multi-threaded
        // runtime) with a watchdog.
        let budget = vdi_operator::admission_budget(&set);
        let (mut judged_obj, old) = (obj.clone(), old.cloned());
        let pool = self.registry.runtime().pool().clone();
        let settings = self.settings.clone();
        let job = move || {
            let admission = Admission {
                set: &set,
                sources: &sources,
                settings: &settings,
            };
            let r = admission.mutate(&who, create, &mut judged_obj, old.as_ref());
            r.map(|()| judged_obj)
        };
        let failed = |message: String| vdi_operator::Refusal { code: 500, message };
        let judged = match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                // A burst of creates waits for a plugin thread, as requests queue at a webhook
                // server, up to the webhook's timeout; only then is the create refused.
                tokio::task::block_in_place(|| {
                    h.block_on(async {
                        match tokio::time::timeout(WEBHOOK_TIMEOUT, pool.run(budget, job)).await {
                            Ok(Ok(judged)) => judged,
                            Ok(Err(e)) => Err(failed(e.to_string())),
                            Err(_) => Err(failed(format!(
                                "no plugin thread free within the webhook timeout ({}s)",
                                WEBHOOK_TIMEOUT.as_secs()
                            ))),
                        }
                    })
                })
            }
            _ => pool
                .run_blocking(budget, job)
                .unwrap_or_else(|e| Err(failed(e.to_string()))),
        };
        let judged = judged.map(|admitted| *obj = admitted);
        judged.map_err(|r| match r.code {
            403 => ApiError::Forbidden(format!(
                "admission webhook \"vdisessions.vdi.dev\" denied the request: {}",
                r.message
            )),
            500 => ApiError::Internal(format!(
                "admission webhook \"vdisessions.vdi.dev\" failed: {}",
                r.message
            )),
            _ => {
                let (field, reason) = field_of(&r.message);
                ApiError::Invalid {
                    kind: "VDISession".into(),
                    name: obj["metadata"]["name"].as_str().unwrap_or_default().into(),
                    field: field.into(),
                    reason: reason.into(),
                }
            }
        })
    }
}

/// The field a refusal's message names (`spec.template: may not change ...` names
/// `spec.template`), and the rest of the message; `spec` and the whole message when it names
/// none.
fn field_of(message: &str) -> (&str, &str) {
    match message.split_once(": ") {
        Some((field, reason))
            if (field.starts_with("spec.") || field.starts_with("metadata."))
                && !field.contains(char::is_whitespace) =>
        {
            (field, reason)
        }
        _ => ("spec", message),
    }
}

#[cfg(test)]
mod tests {
    use super::field_of;

    #[test]
    fn refusals_name_the_field_their_message_names() {
        assert_eq!(
            field_of("spec.template: may not change once the session is admitted"),
            (
                "spec.template",
                "may not change once the session is admitted"
            )
        );
        assert_eq!(
            field_of("metadata.labels: may not change"),
            ("metadata.labels", "may not change")
        );
        assert_eq!(
            field_of("spec.user is immutable"),
            ("spec", "spec.user is immutable")
        );
        assert_eq!(
            field_of("VDISession: bad: x"),
            ("spec", "VDISession: bad: x")
        );
    }
}
