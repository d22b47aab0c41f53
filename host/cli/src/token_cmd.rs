//! `vdi token`: the exec credential plugin behind the kubeconfig user `vdi login` writes. Prints
//! an `ExecCredential` with the cached ID token, refreshing it first when it expires within a
//! minute; never interactive (kubectl may run it without a terminal).

use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use serde_json::json;

use crate::kubeconfig::EXEC_API_VERSION;
use crate::oidc::{IdClaims, OidcArgs, Provider};
use crate::token_cache::{self, CachedTokens};

/// A cached ID token with less life left than this is refreshed first.
const MIN_LIFETIME_S: i64 = 60;

/// Arguments of `vdi token`.
#[derive(clap::Args)]
pub(crate) struct TokenArgs {
    #[command(flatten)]
    pub(crate) oidc: OidcArgs,
}

pub(crate) fn run(args: &TokenArgs) -> Result<ExitCode> {
    let oidc = &args.oidc;
    let relogin = || {
        let ca = oidc
            .ca_file
            .as_ref()
            .map(|p| format!(" --ca-file {}", p.display()))
            .unwrap_or_default();
        format!(
            "run `vdi login --issuer {} --client-id {}{ca}` to sign in again",
            oidc.issuer, oidc.client_id
        )
    };
    let cached = token_cache::load(&oidc.issuer, &oidc.client_id)?
        .ok_or_else(|| anyhow!("no cached login for {}; {}", oidc.issuer, relogin()))?;
    let claims = IdClaims::parse(&cached.id_token)?;
    let now = jiff::Timestamp::now().as_second();
    let (id_token, exp) = if claims.exp - now > MIN_LIFETIME_S {
        (cached.id_token, claims.exp)
    } else {
        let refresh_token = cached.refresh_token.clone().ok_or_else(|| {
            anyhow!(
                "the ID token has expired and there is no refresh token; {}",
                relogin()
            )
        })?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("start the async runtime")?;
        let refreshed = rt
            .block_on(refresh(oidc, cached, &refresh_token))
            .map_err(|e| anyhow!("refreshing the ID token failed: {e:#}; {}", relogin()))?;
        let exp = IdClaims::parse(&refreshed.id_token)?.exp;
        token_cache::store(&refreshed)?;
        (refreshed.id_token, exp)
    };
    let expires = jiff::Timestamp::from_second(exp).context("the ID token's exp")?;
    let credential = json!({
        "apiVersion": EXEC_API_VERSION,
        "kind": "ExecCredential",
        "spec": {"interactive": false},
        "status": {
            "token": id_token,
            "expirationTimestamp": expires.to_string(),
        },
    });
    println!("{credential}");
    Ok(ExitCode::SUCCESS)
}

/// New tokens for `cached` from the provider's token endpoint; a rotated refresh token replaces
/// the old one.
async fn refresh(
    oidc: &OidcArgs,
    cached: CachedTokens,
    refresh_token: &str,
) -> Result<CachedTokens> {
    let provider = Provider::discover(oidc).await?;
    let response = provider.refresh(refresh_token).await?;
    let id_token = response
        .id_token
        .context("the provider's refresh answer has no ID token")?;
    IdClaims::parse(&id_token)?.check(provider.issuer(), &oidc.client_id, None)?;
    Ok(CachedTokens {
        id_token,
        refresh_token: response.refresh_token.or(cached.refresh_token),
        ..cached
    })
}
