//! The upload store kept in an OCI registry instead of ConfigMaps: module `d` is the Wasm
//! artifact tagged `sha256-<hex of d>` in one repository, so every replica pointed at that
//! repository sees every upload, and etcd holds none of the bytes.

use oci_client::secrets::RegistryAuth;
use vdi_plugin_host::Digest;

use super::Stored;
use crate::modules::oci::{OciError, OciReference, OciRegistries};
use crate::modules::{FetchError, MAX_MODULE_BYTES, verify};

/// Modules by digest in one registry repository.
#[derive(Debug, Clone)]
pub(crate) struct RegistryStore {
    repository: OciReference,
    registries: OciRegistries,
    auth: RegistryAuth,
}

impl RegistryStore {
    pub(crate) fn new(
        repository: OciReference,
        registries: OciRegistries,
        auth: RegistryAuth,
    ) -> Result<Self, FetchError> {
        if repository.digest().is_some() {
            return Err(FetchError::Invalid(format!(
                "module registry {repository}: name a repository, not a digest"
            )));
        }
        Ok(Self {
            repository,
            registries,
            auth,
        })
    }

    /// Where the module with `digest` lives.
    pub(crate) fn reference(&self, digest: &Digest) -> OciReference {
        self.repository
            .with_tag(&format!("sha256-{}", digest.hex()))
            .unwrap_or_else(|_| unreachable!("sha256-<64 hex> is a valid tag"))
    }

    /// Pushes `bytes` unless the registry already holds them intact.
    pub(crate) async fn put(&self, digest: Digest, bytes: &[u8]) -> Result<Stored, FetchError> {
        match self.get(&digest).await {
            Ok(_) => return Ok(Stored { digest, new: false }),
            // Missing, or replaced by something else under the tag: (re)write it.
            Err(FetchError::NotUploaded(_) | FetchError::DigestMismatch { .. }) => {}
            Err(e) => return Err(e),
        }
        self.registries
            .push(&self.reference(&digest), bytes, &self.auth)
            .await?;
        Ok(Stored { digest, new: true })
    }

    /// The module with `digest`, checked.
    pub(crate) async fn get(&self, digest: &Digest) -> Result<Vec<u8>, FetchError> {
        let reference = self.reference(digest);
        match self
            .registries
            .pull(&reference, &self.auth, MAX_MODULE_BYTES)
            .await
        {
            Ok(pulled) => {
                verify(digest, &pulled.bytes)?;
                Ok(pulled.bytes)
            }
            Err(OciError::NotFound { .. }) => Err(FetchError::NotUploaded(digest.to_string())),
            Err(e) => Err(e.into()),
        }
    }
}
