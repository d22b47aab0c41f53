//! kube-apiserver's `--oidc-*` flags, for `vdi cluster` and `vdi up`: which OpenID Provider's
//! ID tokens the embedded control plane accepts (Keycloak, Dex, Entra ID, the dev IdP).

use std::path::PathBuf;

use anyhow::{Context, Result};
use vdi_cluster::authn::OidcConfig;

/// The OIDC issuer to trust (none unless `--oidc-issuer-url` is given).
#[derive(clap::Args, Debug, Clone, Default)]
pub(crate) struct OidcFlags {
    /// The issuer URL (https); ID tokens from it authenticate users.
    #[arg(long, env = "VDI_OIDC_ISSUER_URL")]
    pub(crate) oidc_issuer_url: Option<String>,
    /// The client id ID tokens must name in `aud`.
    #[arg(long, env = "VDI_OIDC_CLIENT_ID", default_value = "vdi-cli")]
    pub(crate) oidc_client_id: String,
    /// PEM CA certificates for the issuer's HTTPS (default: the system's roots).
    #[arg(long, env = "VDI_OIDC_CA_FILE")]
    pub(crate) oidc_ca_file: Option<PathBuf>,
    /// The claim holding the user name.
    #[arg(long, default_value = vdi_cluster::authn::DEFAULT_USERNAME_CLAIM)]
    pub(crate) oidc_username_claim: String,
    /// Prepended to user names (`-` for none).
    #[arg(long, default_value = vdi_cluster::authn::DEFAULT_PREFIX)]
    pub(crate) oidc_username_prefix: String,
    /// The claim holding the groups.
    #[arg(long, default_value = vdi_cluster::authn::DEFAULT_GROUPS_CLAIM)]
    pub(crate) oidc_groups_claim: String,
    /// Prepended to groups (`-` for none).
    #[arg(long, default_value = vdi_cluster::authn::DEFAULT_PREFIX)]
    pub(crate) oidc_groups_prefix: String,
}

impl OidcFlags {
    /// The issuer these flags configure, if any.
    pub(crate) fn config(&self) -> Result<Option<OidcConfig>> {
        let Some(issuer) = &self.oidc_issuer_url else {
            return Ok(None);
        };
        let mut config = OidcConfig::new(issuer.clone(), self.oidc_client_id.clone());
        config.username_claim.clone_from(&self.oidc_username_claim);
        config
            .username_prefix
            .clone_from(&self.oidc_username_prefix);
        config.groups_claim = Some(self.oidc_groups_claim.clone());
        config.groups_prefix.clone_from(&self.oidc_groups_prefix);
        if let Some(file) = &self.oidc_ca_file {
            config.ca_pem = Some(
                std::fs::read_to_string(file)
                    .with_context(|| format!("read --oidc-ca-file {}", file.display()))?,
            );
        }
        Ok(Some(config))
    }
}
