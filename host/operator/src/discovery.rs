//! Which API resource serves a kind: asked of the cluster's discovery once per kind, then
//! cached, so rendering and cleanup resolve the objects a session owns without a round trip.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Api, Client};

use crate::error::{Error, Result};

/// Resolves kinds to API resources, caching what it found.
pub(crate) struct Discovery {
    client: Client,
    kinds: Mutex<HashMap<(String, String), ApiResource>>,
}

impl Discovery {
    /// Discovery through `client`, nothing cached yet.
    pub(crate) fn new(client: Client) -> Self {
        Self {
            client,
            kinds: Mutex::default(),
        }
    }

    /// The API resource serving `kind` of `api_version` (discovered once, then cached).
    pub(crate) async fn api_resource(&self, api_version: &str, kind: &str) -> Result<ApiResource> {
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

    /// An API for `kind` of `api_version` in namespace `ns`.
    pub(crate) async fn dynamic(
        &self,
        ns: &str,
        api_version: &str,
        kind: &str,
    ) -> Result<Api<DynamicObject>> {
        let ar = self.api_resource(api_version, kind).await?;
        Ok(Api::namespaced_with(self.client.clone(), ns, &ar))
    }
}
