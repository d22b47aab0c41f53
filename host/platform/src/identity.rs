//! The platform's RBAC and the operator's own identity: `deploy/`'s roles applied as they are on
//! a real cluster, and the operator running as `system:serviceaccount:vdi-system:vdi-operator`
//! with a bound token the platform mints through the TokenRequest API and renews before it
//! expires (as the kubelet does for a projected token), so RBAC decides what the operator may do.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use serde_json::Value;

use crate::install::apply;

/// The operator's ServiceAccount, its ClusterRole and bindings.
pub const OPERATOR_RBAC: &str = include_str!("../../../deploy/operator/rbac.yaml");
/// The users' and admins' roles.
pub const USER_RBAC: &str = include_str!("../../../deploy/rbac/users.yaml");
/// The GraphQL API's ServiceAccount and its right to act for users.
pub const API_RBAC: &str = include_str!("../../../deploy/rbac/api.yaml");
/// The operator's ServiceAccount (in [`crate::SYSTEM_NAMESPACE`]).
pub const OPERATOR_ACCOUNT: &str = "vdi-operator";
/// The GraphQL API's service account (in the system namespace; `deploy/rbac/api.yaml`).
pub const API_ACCOUNT: &str = "vdi-api";
/// How long an operator token is valid; it is renewed at half of it.
pub const OPERATOR_TOKEN_SECONDS: i64 = 3600;

/// Applies every object of the multi-document YAML `docs` (ServiceAccounts and RBAC kinds).
pub async fn apply_rbac(client: &Client, docs: &str) -> Result<()> {
    for doc in docs.split("\n---\n") {
        let obj: Value = serde_saphyr::from_str(doc).context("parse an RBAC document")?;
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
        match obj["kind"].as_str().unwrap_or_default() {
            "ServiceAccount" => {
                apply(&Api::<ServiceAccount>::namespaced(client.clone(), ns), &obj).await?;
            }
            "Role" => apply(&Api::<Role>::namespaced(client.clone(), ns), &obj).await?,
            "RoleBinding" => {
                apply(&Api::<RoleBinding>::namespaced(client.clone(), ns), &obj).await?;
            }
            "ClusterRole" => apply(&Api::<ClusterRole>::all(client.clone()), &obj).await?,
            "ClusterRoleBinding" => {
                apply(&Api::<ClusterRoleBinding>::all(client.clone()), &obj).await?;
            }
            other => bail!("unexpected kind {other:?} in the RBAC documents"),
        }
    }
    Ok(())
}

/// Gives `user` (as the API server names them: `oidc:alice`) their namespace and the
/// `vdi-user` role in it, as `vdi user add` and a user's first session do; returns the
/// namespace. Applying again changes nothing.
pub async fn add_user(client: &Client, user: &str) -> Result<String> {
    use k8s_openapi::api::core::v1::Namespace;
    use vdi_crd::users::{user_namespace, user_namespace_object, user_role_binding};
    if user.is_empty() {
        bail!("the user name is empty");
    }
    let ns = user_namespace(user);
    apply(
        &Api::<Namespace>::all(client.clone()),
        &user_namespace_object(user),
    )
    .await
    .with_context(|| format!("create namespace {ns}"))?;
    apply(
        &Api::<RoleBinding>::namespaced(client.clone(), &ns),
        &user_role_binding(user),
    )
    .await
    .with_context(|| format!("bind {user} to vdi-user in {ns}"))?;
    Ok(ns)
}

/// Mints a token for `namespace/account` valid for `seconds`.
pub async fn mint_token(
    client: &Client,
    namespace: &str,
    account: &str,
    seconds: i64,
) -> Result<String> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(seconds),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    let answer = api
        .create_token_request(account, &PostParams::default(), &request)
        .await
        .with_context(|| format!("request a token for {namespace}/{account}"))?;
    answer
        .status
        .and_then(|s| s.token)
        .filter(|t| !t.is_empty())
        .context("the TokenRequest came back without a token")
}

/// A token file the platform keeps fresh, and a client that reads it (kube-rs re-reads a
/// token file when its copy is a minute old).
pub struct AccountToken {
    path: PathBuf,
    renew: tokio::task::JoinHandle<()>,
}

impl AccountToken {
    /// Mints a token for `namespace/account` with the admin `client`, writes it to `path`
    /// (mode 0600) and renews it at half its lifetime.
    pub async fn start(
        client: Client,
        namespace: &str,
        account: &str,
        path: &Path,
    ) -> Result<Self> {
        let token = mint_token(&client, namespace, account, OPERATOR_TOKEN_SECONDS).await?;
        write_secret(path, &token)?;
        let (ns, name, file) = (namespace.to_owned(), account.to_owned(), path.to_owned());
        let renew = tokio::spawn(async move {
            let half = Duration::from_secs(OPERATOR_TOKEN_SECONDS.unsigned_abs() / 2);
            loop {
                tokio::time::sleep(half).await;
                match mint_token(&client, &ns, &name, OPERATOR_TOKEN_SECONDS).await {
                    Ok(token) => {
                        if let Err(e) = write_secret(&file, &token) {
                            tracing::error!(error = %e, "could not write the renewed token");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "could not renew the token"),
                }
            }
        });
        Ok(Self {
            path: path.to_owned(),
            renew,
        })
    }

    /// A client of the cluster whose admin kubeconfig is `admin_kubeconfig`, authenticating
    /// with this token instead.
    pub async fn client(&self, admin_kubeconfig: &str) -> Result<Client> {
        Client::try_from(self.config(admin_kubeconfig).await?).context("build the client")
    }

    /// The client configuration behind [`Self::client`].
    pub async fn config(&self, admin_kubeconfig: &str) -> Result<kube::Config> {
        let mut kc = Kubeconfig::from_yaml(admin_kubeconfig).context("parse the kubeconfig")?;
        for named in &mut kc.auth_infos {
            if let Some(auth) = named.auth_info.as_mut() {
                auth.token = None;
                auth.token_file = Some(self.path.display().to_string());
            }
        }
        kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .context("read the kubeconfig")
    }
}

impl Drop for AccountToken {
    fn drop(&mut self) {
        self.renew.abort();
    }
}

/// Writes `secret` to `path`, readable by its owner only.
fn write_secret(path: &Path, secret: &str) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("write {}", tmp.display()))?;
    file.write_all(secret.as_bytes())?;
    std::fs::rename(&tmp, path).with_context(|| format!("write {}", path.display()))?;
    Ok(())
}
