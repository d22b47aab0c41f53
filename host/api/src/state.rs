//! What every request shares: the configuration, the OIDC authenticator, the service account's
//! client and the impersonating clients made from it, the connect keys, the rate limiter.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::OnceCell;
use vdi_cluster::authn::OidcAuthenticator;
use vdi_operator::connect::ConnectKeys;
use vdi_plugin_host::{Runtime, RuntimeConfig};

use crate::auth::{Caller, Clients};
use crate::config::{ApiConfig, DEFAULT_CLIENT_CACHE};
use crate::error::{ApiError, Result};
use crate::limits::RateLimiter;
use crate::schema::hub::WatchHub;

/// Where connect tokens' signing keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// The platform's Secret `vdi-system/vdi-connect-keys`, read (created on first use) with the
    /// API's service account and kept.
    Cluster,
    /// Keys given by the embedding program.
    Fixed(ConnectKeys),
}

/// The API's shared state; cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: ApiConfig,
    pub(crate) oidc: OidcAuthenticator,
    /// The API's own service account (reads the quota settings, creates users' namespaces,
    /// reads the connect keys).
    pub(crate) service: Client,
    pub(crate) clients: Clients,
    pub(crate) limiter: RateLimiter,
    key_source: KeySource,
    keys: OnceCell<ConnectKeys>,
    /// Users whose namespace this process has made sure of.
    ensured: Mutex<HashSet<String>>,
    /// The Kubernetes watches subscriptions share.
    pub(crate) watches: WatchHub,
    /// The plugin runtime that checks settings (`checkPluginSettings`), made on first use.
    runtime: OnceLock<Arc<Runtime>>,
}

impl ApiState {
    /// The state for `config`, acting through the service account whose configuration is
    /// `service_account` (its client, and impersonating clients made from it).
    pub fn new(config: ApiConfig, service_account: kube::Config, keys: KeySource) -> Result<Self> {
        let oidc = OidcAuthenticator::new(config.oidc.clone())
            .map_err(|e| ApiError::internal(format!("OIDC settings: {e}")))?;
        let service = Client::try_from(service_account.clone()).map_err(ApiError::internal)?;
        let limiter = RateLimiter::new(config.mutation_burst, config.mutations_per_minute);
        let keys_cell = OnceCell::new();
        if let KeySource::Fixed(k) = &keys {
            // Infallible: the cell is fresh.
            let _ = keys_cell.set(k.clone());
        }
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                oidc,
                service,
                clients: Clients::new(service_account, DEFAULT_CLIENT_CACHE),
                limiter,
                key_source: keys,
                keys: keys_cell,
                ensured: Mutex::new(HashSet::new()),
                watches: WatchHub::default(),
                runtime: OnceLock::new(),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    /// Fetches the OIDC issuer's keys now, so the first user does not wait.
    pub async fn prefetch(&self) -> bool {
        self.inner.oidc.prefetch().await
    }
}

impl Inner {
    /// The API's plugin runtime (the operator's sandbox and limits), made on first use.
    pub(crate) fn plugin_runtime(&self) -> Result<Arc<Runtime>> {
        if let Some(runtime) = self.runtime.get() {
            return Ok(runtime.clone());
        }
        let runtime = Runtime::new(RuntimeConfig::default())
            .map_err(|e| ApiError::internal(format!("start the plugin runtime: {e}")))?;
        // Two first uses at once make two; the second is dropped.
        Ok(self.runtime.get_or_init(|| Arc::new(runtime)).clone())
    }

    /// The connect keys (loaded, or created, once).
    pub(crate) async fn connect_keys(&self) -> Result<&ConnectKeys> {
        self.keys
            .get_or_try_init(|| async {
                match &self.key_source {
                    KeySource::Fixed(k) => Ok(k.clone()),
                    KeySource::Cluster => ConnectKeys::load_or_create(&self.service)
                        .await
                        .map_err(ApiError::internal),
                }
            })
            .await
    }

    /// Gives `caller` their namespace and role there, once per process, as `vdi user add`
    /// does; both may exist already.
    pub(crate) async fn ensure_user(&self, caller: &Caller) -> Result<()> {
        let known = self
            .ensured
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&caller.user);
        if known {
            return Ok(());
        }
        let ns = caller.namespace();
        let namespace: Namespace =
            serde_json::from_value(vdi_crd::users::user_namespace_object(&caller.user))
                .map_err(ApiError::internal)?;
        create_or_keep(&Api::all(self.service.clone()), &namespace).await?;
        let binding: RoleBinding =
            serde_json::from_value(vdi_crd::users::user_role_binding(&caller.user))
                .map_err(ApiError::internal)?;
        create_or_keep(&Api::namespaced(self.service.clone(), &ns), &binding).await?;
        self.ensured
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(caller.user.clone());
        Ok(())
    }
}

/// Creates `obj`; one that exists already is kept as it is.
async fn create_or_keep<K>(api: &Api<K>, obj: &K) -> Result<()>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.create(&PostParams::default(), obj).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(ApiError::internal(format!(
            "give the user their namespace: {e}"
        ))),
    }
}
