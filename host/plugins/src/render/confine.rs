//! Confinement of rendered objects to their session, beyond pod security:
//!
//! - a Pod runs on the placement's node, as the namespace's `default` service account with no
//!   API token, references only the secrets the template lists and mounts only the volume claims
//!   rendered with it; a claim (or an ephemeral volume's claim) never copies another volume;
//!   ConfigMap references and CSI drivers are not confined (pod security allows both);
//! - a Service is a ClusterIP Service selecting the session's pods (the host's session label);
//! - a NetworkPolicy selects the session's pods, and each of its peers (both directions) is the
//!   session's own pods or pods in one of the policy's platform namespaces, named by
//!   `kubernetes.io/metadata.name`; address blocks and empty peer lists (everyone) are refused.
//!
//! Label selectors AND `matchLabels` with `matchExpressions`, so expressions can only narrow a
//! selector that already carries the session label; they are not inspected.

use serde_json::{Map, Value};

use super::pod_security::CONTAINER_LISTS;
use super::{RenderPolicy, SERVICE_ACCOUNT, SESSION_LABEL, Scope, Violation, list};

const NODE_NAME: &str = "confine/node-name";
const SERVICE_ACCOUNT_RULE: &str = "confine/service-account";
const SECRET_REF: &str = "confine/secret-ref";
const VOLUME_CLAIM: &str = "confine/volume-claim";
const SERVICE_SELECTOR: &str = "confine/service-selector";
const SERVICE_TYPE: &str = "confine/service-type";
const NETWORK_POLICY_SELECTOR: &str = "confine/network-policy-selector";
const NETWORK_POLICY_PEER: &str = "confine/network-policy-peer";
/// The label the API server puts on every namespace, naming it.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

static NULL: Value = Value::Null;

/// Checks a Pod's references, then sets the host's fields: `nodeName` (when the placement is
/// known), `serviceAccountName` and `automountServiceAccountToken: false`.
pub(crate) fn pod(
    policy: &RenderPolicy,
    scope: &Scope<'_>,
    pod: &mut Value,
) -> Result<(), Violation> {
    let spec = pod.get("spec").unwrap_or(&NULL);
    if let (Some(rendered), Some(node)) = (spec.get("nodeName"), scope.node)
        && !rendered.is_null()
        && rendered.as_str() != Some(node)
    {
        return Err(Violation::new(
            "spec.nodeName",
            NODE_NAME,
            format!("must be unset or the placement's node {node:?}, not {rendered}"),
        ));
    }
    for key in ["serviceAccountName", "serviceAccount"] {
        match spec.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s == SERVICE_ACCOUNT => {}
            Some(other) => {
                return Err(Violation::new(
                    format!("spec.{key}"),
                    SERVICE_ACCOUNT_RULE,
                    format!("must be unset or {SERVICE_ACCOUNT:?}, not {other}"),
                ));
            }
        }
    }
    pod_volumes(policy, scope, spec)?;
    for (i, secret) in list(spec, "imagePullSecrets", "spec.")?.iter().enumerate() {
        secret_ref(
            policy,
            secret.get("name"),
            format!("spec.imagePullSecrets[{i}].name"),
        )?;
    }
    for list_name in CONTAINER_LISTS {
        for (i, container) in list(spec, list_name, "spec.")?.iter().enumerate() {
            let base = format!("spec.{list_name}[{i}].");
            for (j, env) in list(container, "env", &base)?.iter().enumerate() {
                let name = env
                    .get("valueFrom")
                    .and_then(|v| v.get("secretKeyRef"))
                    .filter(|r| !r.is_null())
                    .map(|r| r.get("name"));
                if let Some(name) = name {
                    let field = format!("{base}env[{j}].valueFrom.secretKeyRef.name");
                    secret_ref(policy, name, field)?;
                }
            }
            for (j, source) in list(container, "envFrom", &base)?.iter().enumerate() {
                if let Some(secret) = source.get("secretRef").filter(|s| !s.is_null()) {
                    let field = format!("{base}envFrom[{j}].secretRef.name");
                    secret_ref(policy, secret.get("name"), field)?;
                }
            }
        }
    }
    let spec = pod
        .get_mut("spec")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| Violation::new("spec", "shape", "must be an object"))?;
    if let Some(node) = scope.node {
        spec.insert("nodeName".into(), node.into());
    }
    spec.insert("serviceAccountName".into(), SERVICE_ACCOUNT.into());
    spec.insert("automountServiceAccountToken".into(), false.into());
    Ok(())
}

/// Secret, projected and CSI volumes reference listed secrets only; no projected API token;
/// claims are the ones rendered alongside.
fn pod_volumes(policy: &RenderPolicy, scope: &Scope<'_>, spec: &Value) -> Result<(), Violation> {
    for (i, volume) in list(spec, "volumes", "spec.")?.iter().enumerate() {
        let base = format!("spec.volumes[{i}].");
        if let Some(secret) = volume.get("secret").filter(|s| !s.is_null()) {
            secret_ref(
                policy,
                secret.get("secretName"),
                format!("{base}secret.secretName"),
            )?;
        }
        let csi_secret = volume
            .get("csi")
            .and_then(|csi| csi.get("nodePublishSecretRef"))
            .filter(|s| !s.is_null());
        if let Some(secret) = csi_secret {
            let field = format!("{base}csi.nodePublishSecretRef.name");
            secret_ref(policy, secret.get("name"), field)?;
        }
        if let Some(claim) = volume.get("persistentVolumeClaim").filter(|c| !c.is_null()) {
            let name = claim
                .get("claimName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !scope.claims.contains(name) {
                return Err(Violation::new(
                    format!("{base}persistentVolumeClaim.claimName"),
                    VOLUME_CLAIM,
                    format!("claim {name:?} is not rendered for this session"),
                ));
            }
        }
        let ephemeral_spec = volume
            .get("ephemeral")
            .and_then(|e| e.get("volumeClaimTemplate"))
            .and_then(|t| t.get("spec"));
        if let Some(spec) = ephemeral_spec {
            fresh_claim(spec, &format!("{base}ephemeral.volumeClaimTemplate.spec."))?;
        }
        let projected = volume.get("projected").unwrap_or(&NULL);
        let sources_prefix = format!("{base}projected.");
        for (j, source) in list(projected, "sources", &sources_prefix)?
            .iter()
            .enumerate()
        {
            let source_base = format!("{sources_prefix}sources[{j}].");
            if let Some(secret) = source.get("secret").filter(|s| !s.is_null()) {
                secret_ref(
                    policy,
                    secret.get("name"),
                    format!("{source_base}secret.name"),
                )?;
            }
            if source
                .get("serviceAccountToken")
                .is_some_and(|t| !t.is_null())
            {
                return Err(Violation::new(
                    format!("{source_base}serviceAccountToken"),
                    SERVICE_ACCOUNT_RULE,
                    "sessions get no API token",
                ));
            }
        }
    }
    Ok(())
}

/// `name` must be one of the secrets the template lists.
pub(crate) fn secret_ref(
    policy: &RenderPolicy,
    name: Option<&Value>,
    field: String,
) -> Result<(), Violation> {
    let name = name.and_then(Value::as_str).unwrap_or_default();
    if policy.allowed_secrets.iter().any(|s| s == name) {
        return Ok(());
    }
    let listed = if policy.allowed_secrets.is_empty() {
        "none".to_owned()
    } else {
        policy.allowed_secrets.join(", ")
    };
    Err(Violation::new(
        field,
        SECRET_REF,
        format!("secret {name:?} is not one the template lists ({listed})"),
    ))
}

/// A claim is a fresh volume: it may not copy another claim or a snapshot.
pub(crate) fn volume_claim(claim: &Value) -> Result<(), Violation> {
    fresh_claim(claim.get("spec").unwrap_or(&NULL), "spec.")
}

/// A claim spec (a claim's or an ephemeral volume's template) with no data source.
fn fresh_claim(spec: &Value, prefix: &str) -> Result<(), Violation> {
    for key in ["dataSource", "dataSourceRef"] {
        if spec.get(key).is_some_and(|v| !v.is_null()) {
            return Err(Violation::new(
                format!("{prefix}{key}"),
                VOLUME_CLAIM,
                "must be unset: a session's claim does not copy another volume",
            ));
        }
    }
    Ok(())
}

/// A ClusterIP Service selecting the session's pods.
pub(crate) fn service(scope: &Scope<'_>, service: &Value) -> Result<(), Violation> {
    let spec = service.get("spec").unwrap_or(&NULL);
    match spec.get("type") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) if t == "ClusterIP" => {}
        Some(other) => {
            return Err(Violation::new(
                "spec.type",
                SERVICE_TYPE,
                format!(
                    "must be unset or ClusterIP, not {other}: sessions are reached through the ingress"
                ),
            ));
        }
    }
    if !list(spec, "externalIPs", "spec.")?.is_empty() {
        return Err(Violation::new(
            "spec.externalIPs",
            SERVICE_TYPE,
            "must be empty: sessions are reached through the ingress",
        ));
    }
    let selector = spec.get("selector").and_then(Value::as_object);
    if !selects_session(selector, scope) {
        return Err(Violation::new(
            "spec.selector",
            SERVICE_SELECTOR,
            session_label_detail(scope),
        ));
    }
    Ok(())
}

/// A NetworkPolicy over the session's pods whose peers are its own pods or the platform's.
pub(crate) fn network_policy(
    policy: &RenderPolicy,
    scope: &Scope<'_>,
    netpol: &Value,
) -> Result<(), Violation> {
    let spec = netpol.get("spec").unwrap_or(&NULL);
    if !selects_session(match_labels(spec.get("podSelector")), scope) {
        return Err(Violation::new(
            "spec.podSelector.matchLabels",
            NETWORK_POLICY_SELECTOR,
            session_label_detail(scope),
        ));
    }
    for (direction, peers_key) in [("ingress", "from"), ("egress", "to")] {
        for (i, rule) in list(spec, direction, "spec.")?.iter().enumerate() {
            let base = format!("spec.{direction}[{i}].");
            let peers = list(rule, peers_key, &base)?;
            if peers.is_empty() {
                return Err(Violation::new(
                    format!("{base}{peers_key}"),
                    NETWORK_POLICY_PEER,
                    "must name peers: without them the rule allows every peer",
                ));
            }
            for (j, peer) in peers.iter().enumerate() {
                network_peer(policy, scope, peer, &format!("{base}{peers_key}[{j}]."))?;
            }
        }
    }
    Ok(())
}

/// One peer: the session's pods, or pods in a platform namespace.
fn network_peer(
    policy: &RenderPolicy,
    scope: &Scope<'_>,
    peer: &Value,
    base: &str,
) -> Result<(), Violation> {
    if peer.get("ipBlock").is_some_and(|b| !b.is_null()) {
        return Err(Violation::new(
            format!("{base}ipBlock"),
            NETWORK_POLICY_PEER,
            "address blocks are not allowed: name the session's pods or a platform namespace",
        ));
    }
    let own_pods = || {
        if selects_session(match_labels(peer.get("podSelector")), scope) {
            Ok(())
        } else {
            Err(Violation::new(
                format!("{base}podSelector.matchLabels"),
                NETWORK_POLICY_PEER,
                session_label_detail(scope),
            ))
        }
    };
    let Some(namespaces) = peer.get("namespaceSelector").filter(|n| !n.is_null()) else {
        return own_pods();
    };
    let pinned = match_labels(Some(namespaces))
        .and_then(|labels| labels.get(NAMESPACE_NAME_LABEL))
        .and_then(Value::as_str);
    match pinned {
        Some(ns) if ns == scope.request.namespace => own_pods(),
        Some(ns) if policy.peer_namespaces.iter().any(|p| p == ns) => Ok(()),
        _ => Err(Violation::new(
            format!("{base}namespaceSelector.matchLabels"),
            NETWORK_POLICY_PEER,
            format!(
                "must pin {NAMESPACE_NAME_LABEL} to the session's namespace or a platform namespace ({})",
                policy.peer_namespaces.join(", ")
            ),
        )),
    }
}

fn match_labels(selector: Option<&Value>) -> Option<&Map<String, Value>> {
    selector
        .and_then(|s| s.get("matchLabels"))
        .and_then(Value::as_object)
}

/// Whether `labels` include the host's session label with this session's name.
fn selects_session(labels: Option<&Map<String, Value>>, scope: &Scope<'_>) -> bool {
    labels
        .and_then(|l| l.get(SESSION_LABEL))
        .and_then(Value::as_str)
        == Some(scope.request.name.as_str())
}

fn session_label_detail(scope: &Scope<'_>) -> String {
    format!(
        "must include {SESSION_LABEL}: {:?} (the session's own pods)",
        scope.request.name
    )
}

#[cfg(test)]
mod tests;
