//! The mutation root: sessions for users; templates and plugins for admins. Every mutation
//! takes one token of the caller's rate limit and acts as the caller.

use std::time::{SystemTime, UNIX_EPOCH};

use async_graphql::{Context, ID, Json, Object, SimpleObject, Upload};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use vdi_crd::{SessionPhase, VDIPlugin, VDIPluginSpec, VDISession, VDITemplate, VDITemplateSpec};
use vdi_operator::ModuleStore;
use vdi_operator::connect::CONNECT_WINDOW_SECS;
use vdi_operator::modules::FetchError;

use super::ctx;
use super::types::{Resources, Session};
use crate::auth::Caller;
use crate::config::IceServer;
use crate::error::{ApiError, Result};
use crate::ids;

/// The field manager of the API's server-side applies.
pub const FIELD_MANAGER: &str = "vdi-api";

/// What a viewer needs to open the desktop.
#[derive(SimpleObject)]
pub struct ConnectInfo {
    /// The session's URL.
    pub url: String,
    /// The connect token for the streamer (a short-lived Ed25519 JWT).
    pub token: String,
    /// When the token stops opening connections (RFC 3339).
    pub expires_at: String,
    /// ICE servers for the browser's peer connection.
    pub ice_servers: Vec<IceServer>,
}

/// A module in the upload store.
#[derive(SimpleObject)]
pub struct UploadedModule {
    /// Its digest (`sha256:<hex>`), for `VDIPlugin.spec.sha256`.
    pub sha256: String,
    /// Its size in bytes.
    pub size: usize,
    /// Whether it was stored now (false: it was there already).
    pub new: bool,
}

/// Mutations.
pub struct Mutation;

#[Object]
impl Mutation {
    /// Starts a desktop from `template` in the caller's namespace (created on first use);
    /// admission may clamp the timeout or refuse (`DENIED` with the plugin's reason).
    async fn launch_session(
        &self,
        ctx: &Context<'_>,
        template: String,
        resources: Option<Resources>,
        timeout: Option<String>,
    ) -> async_graphql::Result<Session> {
        check_name(&template, "template")?;
        if let Some(t) = &timeout {
            check_timeout(t, "timeout")?;
        }
        let (caller, client) = ctx::mutation(ctx)?;
        ctx::state(ctx)?.ensure_user(&caller).await?;
        let session = new_session(&caller, &template, resources, timeout)?;
        let made = Api::<VDISession>::namespaced(client, &caller.namespace())
            .create(&PostParams::default(), &session)
            .await
            .map_err(ApiError::from)?;
        Ok(Session(made))
    }

    /// Ends a session (its objects go with it); returns its ID.
    async fn terminate_session(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ID> {
        let (ns, name) = ids::parse_session_id(&id, "id")?;
        let (_, client) = ctx::mutation(ctx)?;
        Api::<VDISession>::namespaced(client, &ns)
            .delete(&name, &DeleteParams::default())
            .await
            .map_err(ApiError::from)?;
        Ok(id)
    }

    /// Asks for a new lifetime (`2h`); admission clamps it, RBAC decides who may change a
    /// session.
    async fn extend_session(
        &self,
        ctx: &Context<'_>,
        id: ID,
        timeout: String,
    ) -> async_graphql::Result<Session> {
        let (ns, name) = ids::parse_session_id(&id, "id")?;
        check_timeout(&timeout, "timeout")?;
        let (_, client) = ctx::mutation(ctx)?;
        let api = Api::<VDISession>::namespaced(client, &ns);
        let patched = api
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"timeout": timeout}})),
            )
            .await
            .map_err(ApiError::from)?;
        Ok(Session(patched))
    }

    /// A connect token for a Running session: its owner's, or an admin's (who may update
    /// sessions in its namespace).
    async fn connect_session(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<ConnectInfo> {
        let (ns, name) = ids::parse_session_id(&id, "id")?;
        let (caller, client) = ctx::mutation(ctx)?;
        let session = Api::<VDISession>::namespaced(client.clone(), &ns)
            .get(&name)
            .await
            .map_err(ApiError::from)?;
        // An admin is who may update sessions in every namespace: users may update (extend)
        // the sessions of their own namespace, which must not let them into one an admin
        // started there for someone else.
        if session.spec.user.name != caller.user
            && !may(&client, "update", "vdisessions", None).await?
        {
            return Err(ApiError::Forbidden(format!(
                "only the session's owner or an admin may connect to {ns}/{name}"
            ))
            .into());
        }
        let status = session.status.clone().unwrap_or_default();
        if status.phase() != SessionPhase::Running {
            return Err(ApiError::Conflict(format!(
                "the session is {}, not Running",
                status.phase().as_str()
            ))
            .into());
        }
        let url = status
            .url
            .clone()
            .ok_or_else(|| ApiError::Conflict("the session has no URL yet".into()))?;
        // A session the warm pool serves streams as the pool session it claimed.
        let target = vdi_operator::connect::stream_target(&session).map_err(ApiError::internal)?;
        let expires = status
            .expires_at
            .as_deref()
            .ok_or_else(|| ApiError::Conflict("the session has no expiry yet".into()))
            .and_then(unix_seconds)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(ApiError::internal)?
            .as_secs();
        let state = ctx::state(ctx)?;
        let keys = state.connect_keys().await?;
        let token = keys
            .mint(
                &target.namespace,
                &target.name,
                &target.uid,
                &session.spec.user.name,
                expires,
                now,
            )
            .map_err(|e| match e {
                vdi_operator::connect::ConnectError::SessionExpired => {
                    ApiError::Conflict("the session has expired".into())
                }
                other => ApiError::internal(other),
            })?;
        let token_exp = (now + CONNECT_WINDOW_SECS).min(expires);
        Ok(ConnectInfo {
            url,
            token,
            expires_at: rfc3339(token_exp)?,
            ice_servers: state.config.ice_servers.clone(),
        })
    }

    /// Creates or replaces a template (admins).
    async fn upsert_template(
        &self,
        ctx: &Context<'_>,
        name: String,
        spec: Json<serde_json::Value>,
    ) -> async_graphql::Result<String> {
        check_name(&name, "name")?;
        let spec: VDITemplateSpec = serde_json::from_value(spec.0)
            .map_err(|e| ApiError::bad_input("spec", e.to_string()))?;
        let (_, client) = ctx::mutation(ctx)?;
        let obj = VDITemplate::new(&name, spec);
        apply(&Api::<VDITemplate>::all(client), &name, &obj).await?;
        Ok(name)
    }

    /// Deletes a template (admins); returns its name.
    async fn delete_template(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> async_graphql::Result<String> {
        check_name(&name, "name")?;
        let (_, client) = ctx::mutation(ctx)?;
        Api::<VDITemplate>::all(client)
            .delete(&name, &DeleteParams::default())
            .await
            .map_err(ApiError::from)?;
        Ok(name)
    }

    /// Creates or replaces a plugin (admins); the operator loads it and reports in `plugins`.
    async fn upsert_plugin(
        &self,
        ctx: &Context<'_>,
        name: String,
        spec: Json<serde_json::Value>,
    ) -> async_graphql::Result<String> {
        check_name(&name, "name")?;
        let spec: VDIPluginSpec = serde_json::from_value(spec.0)
            .map_err(|e| ApiError::bad_input("spec", e.to_string()))?;
        let (_, client) = ctx::mutation(ctx)?;
        let obj = VDIPlugin::new(&name, spec);
        apply(&Api::<VDIPlugin>::all(client), &name, &obj).await?;
        Ok(name)
    }

    /// Stores a WebAssembly module in the operator's upload store (GraphQL multipart request;
    /// for those who may create plugins); name its digest in `upsertPlugin` with
    /// `source: {upload: {}}`.
    async fn upload_module(
        &self,
        ctx: &Context<'_>,
        file: Upload,
    ) -> async_graphql::Result<UploadedModule> {
        let (_, client) = ctx::mutation(ctx)?;
        if !may(&client, "create", "vdiplugins", None).await? {
            return Err(ApiError::Forbidden(
                "only those who may create VDIPlugins may upload modules".into(),
            )
            .into());
        }
        let value = file
            .value(ctx)
            .map_err(|e| ApiError::bad_input("file", e.to_string()))?;
        let state = ctx::state(ctx)?;
        if value.content.is_empty() {
            return Err(ApiError::bad_input("file", "is empty").into());
        }
        let store = ModuleStore::new(state.service.clone(), &state.config.module_namespace);
        let stored = store.put(&value.content).await.map_err(|e| match e {
            FetchError::Invalid(reason) => ApiError::bad_input("file", reason),
            FetchError::Store(k) => ApiError::from(k),
            other => ApiError::internal(other),
        })?;
        Ok(UploadedModule {
            sha256: stored.digest.to_string(),
            size: value.content.len(),
            new: stored.new,
        })
    }

    /// What the uploaded module `sha256`'s own `configure` says about `settings`, before they
    /// are saved in a `VDIPlugin` (for those who may create plugins). Nothing is stored.
    async fn check_plugin_settings(
        &self,
        ctx: &Context<'_>,
        sha256: String,
        settings: Json<serde_json::Value>,
    ) -> async_graphql::Result<super::settings_check::SettingsCheck> {
        let (_, client) = ctx::mutation(ctx)?;
        if !may(&client, "create", "vdiplugins", None).await? {
            return Err(ApiError::Forbidden(
                "only those who may create VDIPlugins may check plugin settings".into(),
            )
            .into());
        }
        Ok(super::settings_check::check(ctx::state(ctx)?, &sha256, &settings.0).await?)
    }

    /// Deletes a plugin (admins); returns its name.
    async fn delete_plugin(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> async_graphql::Result<String> {
        check_name(&name, "name")?;
        let (_, client) = ctx::mutation(ctx)?;
        Api::<VDIPlugin>::all(client)
            .delete(&name, &DeleteParams::default())
            .await
            .map_err(ApiError::from)?;
        Ok(name)
    }
}

/// Server-side applies `obj` as the caller, taking over fields others set.
async fn apply<K>(api: &Api<K>, name: &str, obj: &K) -> Result<()>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(obj),
    )
    .await
    .map_err(ApiError::from)?;
    Ok(())
}

/// Whether the client's identity may `verb` the platform's `resource` (in `namespace`).
async fn may(client: &Client, verb: &str, resource: &str, namespace: Option<&str>) -> Result<bool> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some(vdi_crd::GROUP.into()),
                resource: Some(resource.into()),
                verb: Some(verb.into()),
                namespace: namespace.map(str::to_owned),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let answer = Api::<SelfSubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .map_err(ApiError::from)?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

/// The session `caller` asks for; `spec.user` is the caller's, whatever the input.
fn new_session(
    caller: &Caller,
    template: &str,
    resources: Option<Resources>,
    timeout: Option<String>,
) -> Result<VDISession> {
    let prefix: String = template.chars().take(40).collect();
    serde_json::from_value(json!({
        "apiVersion": "vdi.dev/v1alpha1",
        "kind": "VDISession",
        "metadata": {"generateName": format!("{}-", prefix.trim_end_matches(['-', '.']))},
        "spec": {
            "user": {"name": caller.user, "groups": caller.groups},
            "template": template,
            "resources": resources.map(vdi_crd::SessionResources::from),
            "timeout": timeout,
        },
    }))
    .map_err(ApiError::internal)
}

fn check_name(name: &str, field: &str) -> Result<()> {
    if ids::is_dns_name(name) {
        Ok(())
    } else {
        Err(ApiError::bad_input(
            field,
            "must be a Kubernetes name: lower-case letters, digits, '-' and '.', at most 253",
        ))
    }
}

fn check_timeout(timeout: &str, field: &str) -> Result<()> {
    match vdi_crd::parse_duration(timeout) {
        Ok(secs) if secs > 0 => Ok(()),
        Ok(_) => Err(ApiError::bad_input(field, "must be longer than 0s")),
        Err(e) => Err(ApiError::bad_input(field, e.to_string())),
    }
}

fn unix_seconds(rfc3339: &str) -> Result<u64> {
    let t: jiff::Timestamp = rfc3339
        .parse()
        .map_err(|e| ApiError::internal(format!("status.expiresAt {rfc3339:?}: {e}")))?;
    u64::try_from(t.as_second())
        .map_err(|_| ApiError::internal(format!("status.expiresAt {rfc3339:?} is before 1970")))
}

fn rfc3339(unix: u64) -> Result<String> {
    let secs = i64::try_from(unix).map_err(ApiError::internal)?;
    jiff::Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Caller {
        Caller {
            user: "oidc:alice".into(),
            groups: vec!["oidc:staff".into()],
        }
    }

    #[test]
    fn a_new_session_is_the_callers_whatever_else_is_asked() {
        let s = new_session(&alice(), "ubuntu-desktop", None, Some("1h".into())).unwrap();
        assert_eq!(s.spec.user.name, "oidc:alice");
        assert_eq!(s.spec.user.groups, ["oidc:staff"]);
        assert_eq!(s.metadata.generate_name.as_deref(), Some("ubuntu-desktop-"));
        assert_eq!(s.spec.timeout.as_deref(), Some("1h"));
    }

    #[test]
    fn bad_input_names_the_argument() {
        let e = check_timeout("forever", "timeout").unwrap_err();
        assert!(matches!(&e, ApiError::BadInput { field, .. } if field == "timeout"));
        assert!(check_timeout("0s", "timeout").is_err());
        assert!(check_timeout("1h30m", "timeout").is_ok());
        let e = check_name("Ubuntu Desktop", "template").unwrap_err();
        assert!(matches!(&e, ApiError::BadInput { field, .. } if field == "template"));
    }

    #[test]
    fn times_convert_both_ways() {
        let t = unix_seconds("2026-12-01T12:00:00Z").unwrap();
        assert_eq!(rfc3339(t).unwrap(), "2026-12-01T12:00:00Z");
        assert!(unix_seconds("yesterday").is_err());
    }
}
