//! `vdi user add`: gives a user their namespace and the `vdi-user` role in it, as an admin
//! (the KUBECONFIG's identity must be allowed to create namespaces and bind `vdi-user`, as
//! `vdi-admin` is).

use std::process::ExitCode;

use anyhow::{Context, Result};

/// Arguments of `vdi user add`.
#[derive(clap::Args)]
pub(crate) struct AddArgs {
    /// The user as the API server names them: the OIDC username claim with its prefix
    /// (`oidc:alice` by default).
    user: String,
}

pub(crate) fn add(args: &AddArgs) -> Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("start the async runtime")?;
    rt.block_on(async {
        let client = kube::Client::try_default()
            .await
            .context("connect with KUBECONFIG")?;
        let ns = vdi_platform::add_user(&client, &args.user).await?;
        println!("{} may use namespace {ns}", args.user);
        Ok(ExitCode::SUCCESS)
    })
}
