//! The Pod Security Standards `restricted` profile, which includes `baseline`, as published at
//! <https://kubernetes.io/docs/concepts/security/pod-security-standards/> (Kubernetes 1.32).
//!
//! Two choices are stricter than the published text: Windows pods are not exempt from the
//! Linux-only controls (sessions run on Linux), and a field of the wrong JSON type counts as a
//! forbidden value rather than as unset.

use serde_json::Value;

use super::{Violation, list};

const HOST_PROCESS: &str = "pod-security/host-process";
const HOST_NAMESPACES: &str = "pod-security/host-namespaces";
const PRIVILEGED: &str = "pod-security/privileged";
const CAPABILITIES: &str = "pod-security/capabilities";
const HOST_PATH: &str = "pod-security/host-path-volumes";
const HOST_PORTS: &str = "pod-security/host-ports";
const APPARMOR: &str = "pod-security/apparmor";
const SELINUX: &str = "pod-security/selinux";
const PROC_MOUNT: &str = "pod-security/proc-mount";
const SECCOMP: &str = "pod-security/seccomp";
const SYSCTLS: &str = "pod-security/sysctls";
const VOLUME_TYPES: &str = "pod-security/volume-types";
const PRIVILEGE_ESCALATION: &str = "pod-security/privilege-escalation";
const RUN_AS_NON_ROOT: &str = "pod-security/run-as-non-root";
const RUN_AS_USER: &str = "pod-security/run-as-user";

/// The three container lists every control applies to.
pub(crate) const CONTAINER_LISTS: [&str; 3] =
    ["containers", "initContainers", "ephemeralContainers"];
/// Volume types `restricted` allows.
const ALLOWED_VOLUMES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];
/// The safe sysctls: namespaced and isolated from other pods on the node.
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];
/// SELinux types a container may run as (besides unset or empty).
const SELINUX_TYPES: &[&str] = &[
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];
/// Seccomp and AppArmor profile types allowed.
const PROFILE_TYPES: &[&str] = &["RuntimeDefault", "Localhost"];
/// The only capability a container may add.
const ADDABLE_CAPABILITY: &str = "NET_BIND_SERVICE";
/// The beta AppArmor annotation, one per container.
const APPARMOR_ANNOTATION: &str = "container.apparmor.security.beta.kubernetes.io/";

static NULL: Value = Value::Null;

/// Checks `pod` against `restricted`; the first broken control is returned.
pub(crate) fn restricted(pod: &Value) -> Result<(), Violation> {
    let spec = pod.get("spec").unwrap_or(&NULL);
    for key in ["hostNetwork", "hostPID", "hostIPC"] {
        unset_or_false(spec, key, "spec.", HOST_NAMESPACES)?;
    }
    let pod_ctx = spec.get("securityContext").unwrap_or(&NULL);
    let prefix = "spec.securityContext.";
    security_context(pod_ctx, prefix)?;
    let pod_non_root = match pod_ctx.get("runAsNonRoot") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(true)) => true,
        Some(_) => {
            return Err(Violation::new(
                format!("{prefix}runAsNonRoot"),
                RUN_AS_NON_ROOT,
                "must be unset or true",
            ));
        }
    };
    let pod_seccomp = profile_type(pod_ctx, "seccompProfile").is_some();
    for (i, sysctl) in list(pod_ctx, "sysctls", prefix)?.iter().enumerate() {
        let name = sysctl
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !SAFE_SYSCTLS.contains(&name) {
            return Err(Violation::new(
                format!("{prefix}sysctls[{i}].name"),
                SYSCTLS,
                format!(
                    "{name:?} is not one of the safe sysctls ({})",
                    SAFE_SYSCTLS.join(", ")
                ),
            ));
        }
    }
    volumes(spec)?;
    apparmor_annotations(pod)?;
    for list_name in CONTAINER_LISTS {
        for (i, container) in list(spec, list_name, "spec.")?.iter().enumerate() {
            let base = format!("spec.{list_name}[{i}]");
            container_controls(container, &base, pod_non_root, pod_seccomp)?;
        }
    }
    Ok(())
}

/// The controls on one container of any of the three lists.
fn container_controls(
    container: &Value,
    base: &str,
    pod_non_root: bool,
    pod_seccomp: bool,
) -> Result<(), Violation> {
    let ctx = container.get("securityContext").unwrap_or(&NULL);
    let prefix = format!("{base}.securityContext.");
    unset_or_false(ctx, "privileged", &prefix, PRIVILEGED)?;
    security_context(ctx, &prefix)?;
    if ctx.get("allowPrivilegeEscalation") != Some(&Value::Bool(false)) {
        return Err(Violation::new(
            format!("{prefix}allowPrivilegeEscalation"),
            PRIVILEGE_ESCALATION,
            "must be false",
        ));
    }
    match ctx.get("runAsNonRoot") {
        Some(Value::Bool(true)) => {}
        None | Some(Value::Null) if pod_non_root => {}
        _ => {
            return Err(Violation::new(
                format!("{prefix}runAsNonRoot"),
                RUN_AS_NON_ROOT,
                "must be true, here or in spec.securityContext",
            ));
        }
    }
    if !pod_seccomp && profile_type(ctx, "seccompProfile").is_none() {
        return Err(Violation::new(
            format!("{prefix}seccompProfile.type"),
            SECCOMP,
            "must be RuntimeDefault or Localhost, here or in spec.securityContext",
        ));
    }
    one_of(ctx, "procMount", &prefix, &["Default"], PROC_MOUNT)?;
    let caps = ctx.get("capabilities").unwrap_or(&NULL);
    let caps_prefix = format!("{prefix}capabilities.");
    for (j, cap) in list(caps, "add", &caps_prefix)?.iter().enumerate() {
        if cap.as_str() != Some(ADDABLE_CAPABILITY) {
            return Err(Violation::new(
                format!("{caps_prefix}add[{j}]"),
                CAPABILITIES,
                format!("only {ADDABLE_CAPABILITY} may be added, not {cap}"),
            ));
        }
    }
    if !list(caps, "drop", &caps_prefix)?
        .iter()
        .any(|c| c.as_str() == Some("ALL"))
    {
        return Err(Violation::new(
            format!("{caps_prefix}drop"),
            CAPABILITIES,
            "must drop ALL",
        ));
    }
    let ports_prefix = format!("{base}.");
    for (j, port) in list(container, "ports", &ports_prefix)?.iter().enumerate() {
        match port.get("hostPort") {
            None | Some(Value::Null) => {}
            Some(p) if p.as_u64() == Some(0) => {}
            Some(_) => {
                return Err(Violation::new(
                    format!("{base}.ports[{j}].hostPort"),
                    HOST_PORTS,
                    "must be unset or 0",
                ));
            }
        }
    }
    Ok(())
}

/// Controls shared by the pod's and each container's security context.
fn security_context(ctx: &Value, prefix: &str) -> Result<(), Violation> {
    let windows = ctx.get("windowsOptions").unwrap_or(&NULL);
    unset_or_false(
        windows,
        "hostProcess",
        &format!("{prefix}windowsOptions."),
        HOST_PROCESS,
    )?;
    let selinux = ctx.get("seLinuxOptions").unwrap_or(&NULL);
    let selinux_prefix = format!("{prefix}seLinuxOptions.");
    let mut types = vec![""];
    types.extend_from_slice(SELINUX_TYPES);
    one_of(selinux, "type", &selinux_prefix, &types, SELINUX)?;
    one_of(selinux, "user", &selinux_prefix, &[""], SELINUX)?;
    one_of(selinux, "role", &selinux_prefix, &[""], SELINUX)?;
    for profile in ["seccompProfile", "appArmorProfile"] {
        let rule = if profile == "seccompProfile" {
            SECCOMP
        } else {
            APPARMOR
        };
        let object = ctx.get(profile).unwrap_or(&NULL);
        one_of(
            object,
            "type",
            &format!("{prefix}{profile}."),
            PROFILE_TYPES,
            rule,
        )?;
    }
    match ctx.get("runAsUser") {
        None | Some(Value::Null) => Ok(()),
        Some(uid) if uid.as_u64().is_some_and(|u| u > 0) => Ok(()),
        Some(_) => Err(Violation::new(
            format!("{prefix}runAsUser"),
            RUN_AS_USER,
            "must be unset or a non-zero uid (0 is root)",
        )),
    }
}

/// Every volume's type is on the allow-list; hostPath is named as such.
fn volumes(spec: &Value) -> Result<(), Violation> {
    for (i, volume) in list(spec, "volumes", "spec.")?.iter().enumerate() {
        let Some(fields) = volume.as_object() else {
            return Err(Violation::new(
                format!("spec.volumes[{i}]"),
                "shape",
                "must be an object",
            ));
        };
        for key in fields.keys().filter(|k| *k != "name") {
            let field = format!("spec.volumes[{i}].{key}");
            if key == "hostPath" {
                return Err(Violation::new(
                    field,
                    HOST_PATH,
                    "hostPath volumes are not allowed",
                ));
            }
            if !ALLOWED_VOLUMES.contains(&key.as_str()) {
                return Err(Violation::new(
                    field,
                    VOLUME_TYPES,
                    format!(
                        "volume type {key} is not one of {}",
                        ALLOWED_VOLUMES.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The beta AppArmor annotations may only ask for the runtime's default or a local profile.
fn apparmor_annotations(pod: &Value) -> Result<(), Violation> {
    let annotations = pod
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object);
    for (key, value) in annotations.into_iter().flatten() {
        if !key.starts_with(APPARMOR_ANNOTATION) {
            continue;
        }
        let ok = value
            .as_str()
            .is_some_and(|v| v == "runtime/default" || v.starts_with("localhost/"));
        if !ok {
            return Err(Violation::new(
                format!("metadata.annotations[{key:?}]"),
                APPARMOR,
                "must be runtime/default or localhost/<profile>",
            ));
        }
    }
    Ok(())
}

/// The allowed `type` of `profile` in `ctx`, if one is set.
fn profile_type<'a>(ctx: &'a Value, profile: &str) -> Option<&'a str> {
    ctx.get(profile)
        .and_then(|p| p.get("type"))
        .and_then(Value::as_str)
        .filter(|t| PROFILE_TYPES.contains(t))
}

fn unset_or_false(
    parent: &Value,
    key: &str,
    prefix: &str,
    rule: &'static str,
) -> Result<(), Violation> {
    match parent.get(key) {
        None | Some(Value::Null | Value::Bool(false)) => Ok(()),
        Some(_) => Err(Violation::new(
            format!("{prefix}{key}"),
            rule,
            "must be unset or false",
        )),
    }
}

fn one_of(
    parent: &Value,
    key: &str,
    prefix: &str,
    allowed: &[&str],
    rule: &'static str,
) -> Result<(), Violation> {
    match parent.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(()),
        Some(other) => {
            let shown: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
            Err(Violation::new(
                format!("{prefix}{key}"),
                rule,
                format!("must be unset or one of {}, not {other}", shown.join(", ")),
            ))
        }
    }
}

#[cfg(test)]
mod tests;
