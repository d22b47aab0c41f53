//! What RBAC authorization costs: the same creates and merge patches, as a service account with
//! a TokenRequest token, against two clusters in this process, one authorizing with RBAC and one
//! with `AlwaysAllow` (kube-apiserver's `--authorization-mode=AlwaysAllow`). Both verify the same
//! ES256 token on every request, so the difference is authorization alone. The machine is noisy:
//! the rounds alternate between the two clusters and the medians are compared.

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde::de::DeserializeOwned;
use serde_json::json;
use vdi_cluster::authz::AuthorizationMode;
use vdi_cluster::{Cluster, ClusterConfig};

use super::{body, rate};

/// ClusterRoles with a ClusterRoleBinding each, and RoleBindings in `default`, for other
/// users and groups: the bindings the authorizer walks past before it reaches the bench's.
const OTHER_BINDINGS: usize = 50;
/// Lifetime of the bench account's token.
const TOKEN_SECONDS: i64 = 3600;

/// One cluster and a client that acts as `system:serviceaccount:default:bench`.
struct Target {
    mode: AuthorizationMode,
    cluster: Cluster,
    client: Client,
    _dir: tempfile::TempDir,
}

/// Runs the comparison, `rounds` per cluster alternating AlwaysAllow, RBAC, AlwaysAllow, RBAC,
/// ..., and prints every round, the medians and the overhead: baseline/RBAC − 1, the extra
/// time per request.
pub(super) async fn compare(objects: usize, rounds: usize, concurrency: usize) -> Result<()> {
    anyhow::ensure!(rounds > 0, "--authz-rounds must be at least 1");
    println!(
        "authz     {objects} ConfigMaps per round as system:serviceaccount:default:bench (TokenRequest token, ES256), \
         {concurrency} in flight, {rounds} rounds each, alternating"
    );
    let baseline = Target::start(AuthorizationMode::AlwaysAllow).await?;
    let rbac = Target::start(AuthorizationMode::Rbac).await?;
    baseline.verify().await?;
    rbac.verify().await?;

    let (mut base_runs, mut rbac_runs) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for (target, runs) in [(&baseline, &mut base_runs), (&rbac, &mut rbac_runs)] {
            let (creates, updates) = target.measure(round, objects, concurrency).await?;
            println!(
                "authz     round {}  {:<11} creates {creates:>7.0}/s   updates {updates:>7.0}/s",
                round + 1,
                target.label()
            );
            runs.push((creates, updates));
        }
    }
    let (base_creates, base_updates) = medians(&base_runs);
    let (rbac_creates, rbac_updates) = medians(&rbac_runs);
    println!(
        "authz     median  AlwaysAllow creates {base_creates:>7.0}/s   updates {base_updates:>7.0}/s"
    );
    println!(
        "authz     median  RBAC        creates {rbac_creates:>7.0}/s   updates {rbac_updates:>7.0}/s"
    );
    let overhead = |base: f64, with: f64| (base / with - 1.0) * 100.0;
    println!(
        "authz overhead: creates {:.1}%  updates {:.1}%",
        overhead(base_creates, rbac_creates),
        overhead(base_updates, rbac_updates)
    );
    baseline.cluster.stop().await;
    rbac.cluster.stop().await;
    Ok(())
}

/// The median creates and updates per second (the mean of the middle two for an even count).
fn medians(runs: &[(f64, f64)]) -> (f64, f64) {
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        if v.len().is_multiple_of(2) {
            f64::midpoint(v[mid - 1], v[mid])
        } else {
            v[mid]
        }
    };
    (
        median(runs.iter().map(|r| r.0).collect()),
        median(runs.iter().map(|r| r.1).collect()),
    )
}

fn typed<T: DeserializeOwned>(value: serde_json::Value) -> Result<T> {
    serde_json::from_value(value).context("a bench object")
}

impl Target {
    /// Starts a cluster authorizing in `mode`, creates the bench account, its Role and
    /// RoleBinding and the other users' bindings with the admin client, and mints the
    /// account's token.
    async fn start(mode: AuthorizationMode) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let cluster = Cluster::start(ClusterConfig {
            authorization: mode,
            ..ClusterConfig::local(dir.path())
        })
        .await?;
        let admin = client(&cluster, None).await?;
        let post = PostParams::default();
        let ns = "default";

        let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), ns);
        accounts
            .create(&post, &typed(json!({"metadata": {"name": "bench"}}))?)
            .await?;
        let roles: Api<Role> = Api::namespaced(admin.clone(), ns);
        roles
            .create(
                &post,
                &typed(json!({
                    "metadata": {"name": "bench-configmaps"},
                    "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                               "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}]
                }))?,
            )
            .await?;

        let cluster_roles: Api<ClusterRole> = Api::all(admin.clone());
        let cluster_bindings: Api<ClusterRoleBinding> = Api::all(admin.clone());
        let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), ns);
        for i in 0..OTHER_BINDINGS {
            let name = format!("team-{i:02}");
            cluster_roles
                .create(
                    &post,
                    &typed(json!({
                        "metadata": {"name": name},
                        "rules": [
                            {"apiGroups": [""], "resources": ["pods", "services", "pods/log"],
                             "verbs": ["get", "list", "watch"]},
                            {"apiGroups": ["vdi.dev"], "resources": ["vdisessions"],
                             "verbs": ["get", "list", "watch", "create", "delete"]},
                            {"apiGroups": [""], "resources": ["secrets"],
                             "verbs": ["get"], "resourceNames": [format!("{name}-credentials")]}
                        ]
                    }))?,
                )
                .await?;
            cluster_bindings
                .create(
                    &post,
                    &typed(json!({
                        "metadata": {"name": name},
                        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                        "subjects": [
                            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": name},
                            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": format!("lead-{i:02}@example.com")}
                        ]
                    }))?,
                )
                .await?;
            bindings
                .create(
                    &post,
                    &typed(json!({
                        "metadata": {"name": format!("user-{i:02}")},
                        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
                        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": format!("user-{i:02}@example.com")}]
                    }))?,
                )
                .await?;
        }
        // Sorted after the others, so the authorizer walks every other binding first.
        bindings
            .create(
                &post,
                &typed(json!({
                    "metadata": {"name": "workload-bench"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "bench-configmaps"},
                    "subjects": [{"kind": "ServiceAccount", "name": "bench", "namespace": ns}]
                }))?,
            )
            .await?;

        let token = vdi_platform::mint_token(&admin, ns, "bench", TOKEN_SECONDS).await?;
        let client = client(&cluster, Some(&token)).await?;
        Ok(Self {
            mode,
            cluster,
            client,
            _dir: dir,
        })
    }

    fn label(&self) -> &'static str {
        match self.mode {
            AuthorizationMode::AlwaysAllow => "AlwaysAllow",
            AuthorizationMode::Rbac => "RBAC",
        }
    }

    /// Checks that the mode is what decides: the bench account may list its ConfigMaps in both
    /// clusters, and secrets only where everything is allowed (403 under RBAC). This also
    /// builds the RBAC authorizer before anything is timed.
    async fn verify(&self) -> Result<()> {
        let cms: Api<ConfigMap> = Api::default_namespaced(self.client.clone());
        cms.list(&ListParams::default())
            .await
            .with_context(|| format!("{}: the bench account lists ConfigMaps", self.label()))?;
        let secrets: Api<Secret> = Api::default_namespaced(self.client.clone());
        let listed = secrets.list(&ListParams::default()).await;
        match (self.mode, listed) {
            (AuthorizationMode::AlwaysAllow, Ok(_)) => println!(
                "authz     AlwaysAllow: the bench account lists secrets in default: allowed (no authorization)"
            ),
            (AuthorizationMode::Rbac, Err(kube::Error::Api(e))) if e.code == 403 => println!(
                "authz     RBAC:        the bench account lists secrets in default: 403 ({})",
                e.message
            ),
            (mode, other) => anyhow::bail!(
                "{mode:?}: listing secrets as the bench account answered {:?}, RBAC is not what \
                 decides",
                other.map(|l| l.items.len())
            ),
        }
        Ok(())
    }

    /// Creates `n` fresh ConfigMaps, then merge-patches each; returns creates/s and updates/s.
    async fn measure(&self, round: usize, n: usize, concurrency: usize) -> Result<(f64, f64)> {
        let cms: Api<ConfigMap> = Api::default_namespaced(self.client.clone());
        let name = |i: usize| format!("authz-{round}-{i}");
        let creates = rate(n, concurrency, |i| {
            let cms = cms.clone();
            let name = name(i);
            async move {
                let cm: ConfigMap = serde_json::from_value(body(&name, i))?;
                cms.create(&PostParams::default(), &cm).await?;
                Ok(())
            }
        })
        .await?;
        let updates = rate(n, concurrency, |i| {
            let cms = cms.clone();
            let name = name(i);
            async move {
                let patch = Patch::Merge(json!({"data": {"i": (i + 1).to_string()}}));
                cms.patch(&name, &PatchParams::default(), &patch).await?;
                Ok(())
            }
        })
        .await?;
        Ok((creates, updates))
    }
}

/// A client of `cluster` that sends `token`, or the admin token when `None`.
async fn client(cluster: &Cluster, token: Option<&str>) -> Result<Client> {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&cluster.kubeconfig())?;
    let mut config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    if let Some(token) = token {
        config.auth_info = kube::config::AuthInfo::default();
        config.auth_info.token = Some(token.to_owned().into());
    }
    Ok(Client::try_from(config)?)
}
