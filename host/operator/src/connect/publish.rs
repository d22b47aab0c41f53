//! The connect keys' public half where streamers read it: a ConfigMap [`KEYS_CONFIGMAP`]
//! (entry [`KEYS_PEM`]: the current and previous public keys, PEM, concatenated) in every
//! namespace that has a session. The session controller applies it before a session's objects;
//! a task re-reads the Secret every [`KEYS_RESYNC`] and rewrites the ConfigMaps when the keys
//! rotated (a streamer re-reads the mounted file when it changes).

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt as _};
use serde_json::{Value, json};
use vdi_crd::{FIELD_MANAGER, VDISession};

use super::ConnectKeys;
use crate::Result;

/// Name of the ConfigMap holding the public keys in each session namespace.
pub const KEYS_CONFIGMAP: &str = "vdi-connect-keys";
/// Its entry: the public keys, PEM, current first.
pub const KEYS_PEM: &str = "keys.pem";
/// How often the Secret is read again for a rotation.
pub const KEYS_RESYNC: Duration = Duration::from_secs(30);

/// The public keys as the streamer's key file holds them.
pub fn keys_pem(keys: &ConnectKeys) -> String {
    let mut out = String::new();
    for pem in keys.public_pems() {
        out.push_str(pem.trim_end());
        out.push('\n');
    }
    out
}

/// The ConfigMap of `namespace` holding `pem`.
pub fn keys_configmap(namespace: &str, pem: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": KEYS_CONFIGMAP,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "vdi"},
        },
        "data": { KEYS_PEM: pem },
    })
}

/// What was published where: the PEM and the namespaces that have it.
#[derive(Default)]
pub struct PublishedKeys {
    state: Mutex<Published>,
}

#[derive(Default)]
struct Published {
    pem: Option<String>,
    namespaces: HashSet<String>,
}

async fn apply(client: &Client, namespace: &str, pem: &str) -> Result<()> {
    let api: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), namespace);
    api.patch(
        KEYS_CONFIGMAP,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(keys_configmap(namespace, pem)),
    )
    .await?;
    Ok(())
}

impl PublishedKeys {
    fn lock(&self) -> std::sync::MutexGuard<'_, Published> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes sure `namespace` has the public keys (creating the keys if there are none yet).
    pub async fn ensure(&self, client: &Client, namespace: &str) -> Result<()> {
        let known = {
            let state = self.lock();
            if state.namespaces.contains(namespace) {
                return Ok(());
            }
            state.pem.clone()
        };
        let pem = match known {
            Some(pem) => pem,
            None => keys_pem(&ConnectKeys::load_or_create(client).await?),
        };
        apply(client, namespace, &pem).await?;
        let mut state = self.lock();
        if state.pem.as_deref().is_none_or(|p| p == pem) {
            state.pem = Some(pem);
            state.namespaces.insert(namespace.to_owned());
        }
        Ok(())
    }

    /// Reads the keys again; when they changed (a rotation), rewrites the ConfigMap of every
    /// namespace with a session (and publishes to namespaces that lack it). Nothing while there
    /// is no session. Failures are logged and retried on the next call.
    pub async fn resync(&self, client: &Client, sessions: &Store<VDISession>) {
        if sessions.state().is_empty() {
            return; // nothing to publish to (and no reason to create keys yet)
        }
        let pem = match ConnectKeys::load_or_create(client).await {
            Ok(keys) => keys_pem(&keys),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the connect keys");
                return;
            }
        };
        let namespaces: HashSet<String> = {
            let mut state = self.lock();
            if state.pem.as_deref() != Some(pem.as_str()) {
                state.namespaces.clear();
                state.pem = Some(pem.clone());
            }
            sessions
                .state()
                .iter()
                .filter_map(|s| s.namespace())
                .filter(|ns| !state.namespaces.contains(ns))
                .collect()
        };
        for ns in namespaces {
            match apply(client, &ns, &pem).await {
                Ok(()) => {
                    let mut state = self.lock();
                    if state.pem.as_deref() == Some(pem.as_str()) {
                        state.namespaces.insert(ns);
                    }
                }
                Err(e) => {
                    tracing::warn!(namespace = %ns, error = %e, "connect keys not published");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configmap_holds_current_then_previous_public_key() {
        let keys = ConnectKeys::generate()
            .and_then(|k| k.rotated())
            .expect("keys");
        let pem = keys_pem(&keys);
        let previous = keys.previous.as_ref().expect("previous key");
        let current_at = pem.find(keys.current.public_pem.trim_end());
        let previous_at = pem.find(previous.public_pem.trim_end());
        assert!(current_at < previous_at && previous_at.is_some(), "{pem}");
        assert_eq!(pem.matches("-----BEGIN PUBLIC KEY-----").count(), 2);
        assert!(
            !pem.contains("PRIVATE"),
            "never a private key in a ConfigMap"
        );
        let cm = keys_configmap("alice", &pem);
        assert_eq!(cm["metadata"]["namespace"], "alice");
        assert_eq!(cm["metadata"]["name"], KEYS_CONFIGMAP);
        assert_eq!(cm["data"][KEYS_PEM], pem);
    }
}
