//! `vdi connect`: mints a connect token for a session's owner and prints the URL to open — the
//! kubectl user's way into a desktop. The same minting (`vdi_operator::connect`) serves every
//! client.
//!
//! Minting needs the platform's connect keys (the Secret `vdi-system/vdi-connect-keys`), so the
//! KUBECONFIG's identity must be able to read them; and it must be allowed to `get` the session,
//! which RBAC already confines to the user's own namespace (admins: any).

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::{Api, Client};
use vdi_crd::VDISession;
use vdi_operator::connect::ConnectKeys;

/// Arguments of `vdi connect`.
#[derive(clap::Args)]
pub(crate) struct ConnectArgs {
    /// The session.
    session: String,
    /// Its namespace (default: the KUBECONFIG context's).
    #[arg(short = 'n', long)]
    namespace: Option<String>,
}

pub(crate) fn run(args: &ConnectArgs) -> Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("start the async runtime")?;
    rt.block_on(async {
        let client = Client::try_default()
            .await
            .context("connect with KUBECONFIG")?;
        let ns = args
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_owned());
        println!("{}", url(&client, &ns, &args.session).await?);
        Ok(ExitCode::SUCCESS)
    })
}

/// The URL with a fresh connect token for the session `ns/name`.
async fn url(client: &Client, ns: &str, name: &str) -> Result<String> {
    if !may_get_session(client, ns, name).await? {
        bail!("you may not get the session {ns}/{name}");
    }
    let session = Api::<VDISession>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .with_context(|| format!("read the session {ns}/{name}"))?;
    let status = session.status.clone().unwrap_or_default();
    let Some(base) = status.url.filter(|u| !u.is_empty()) else {
        bail!("the session {ns}/{name} has no URL yet (is it running?)");
    };
    let Some(expires_at) = status.expires_at else {
        bail!("the session {ns}/{name} has no expiry yet");
    };
    let expires_at: jiff::Timestamp = expires_at
        .parse()
        .with_context(|| format!("the session's expiresAt {expires_at:?}"))?;
    // A session the warm pool serves streams as the pool session it claimed.
    let target = vdi_operator::connect::stream_target(&session)?;
    let keys = ConnectKeys::load_or_create(client)
        .await
        .context("load the connect keys")?;
    let now = jiff::Timestamp::now().as_second();
    let token = keys.mint(
        &target.namespace,
        &target.name,
        &target.uid,
        &session.spec.user.name,
        u64::try_from(expires_at.as_second()).unwrap_or(0),
        u64::try_from(now).unwrap_or(0),
    )?;
    // In the fragment: browsers never send it, so the token stays out of every server's and
    // proxy's access log (the player reads it from there).
    let base = base.split_once('#').map_or(base.as_str(), |(b, _)| b);
    Ok(format!("{base}#token={token}"))
}

/// Whether the caller may `get` the session: RBAC confines users to their own namespace, so
/// this is the owner or an admin.
async fn may_get_session(client: &Client, ns: &str, name: &str) -> Result<bool> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some("vdi.dev".into()),
                resource: Some("vdisessions".into()),
                verb: Some("get".into()),
                namespace: Some(ns.into()),
                name: Some(name.into()),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let answer = Api::<SelfSubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .context("ask the API server whether you may get the session")?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}
