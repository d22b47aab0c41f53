//! Pods (`kubectl run`) and the pod template the workload kinds carry: PodTemplateSpec and
//! PodSpec with its pod-level settings. Containers are in `container.rs`, volumes in `volume.rs`. Not converted (a body
//! that sets them is refused): affinity, ephemeral containers, resource claims, workload
//! references.

use k8s_pb::api::core::v1;

use super::container::{container, resources, se_linux_options, seccomp_like, windows_options};
use super::core::local_reference;
use super::fields::{Converted, Obj};
use super::meta::{blank_status, label_selector, object, object_meta};
use super::volume::volume;

/// Pod (`kubectl run`).
pub(super) fn pod(mut p: v1::Pod) -> Converted {
    let mut o = object(p.metadata.take())?;
    o.obj("spec", &mut p.spec, pod_spec)?;
    blank_status(&mut p.status, "PodStatus")?;
    o.done(p, "Pod")
}

/// A PodTemplateSpec (`metadata` and `spec`).
pub(super) fn pod_template(mut t: v1::PodTemplateSpec) -> Converted {
    let mut o = Obj::default();
    o.obj("metadata", &mut t.metadata, object_meta)?;
    o.obj("spec", &mut t.spec, pod_spec)?;
    o.done(t, "PodTemplateSpec")
}

/// A PodSpec.
pub(super) fn pod_spec(mut s: v1::PodSpec) -> Converted {
    let mut o = Obj::default();
    o.list("volumes", &mut s.volumes, volume)?;
    o.list("initContainers", &mut s.init_containers, container)?;
    o.list("containers", &mut s.containers, container)?;
    o.str("restartPolicy", &mut s.restart_policy);
    o.int(
        "terminationGracePeriodSeconds",
        &mut s.termination_grace_period_seconds,
    );
    o.int("activeDeadlineSeconds", &mut s.active_deadline_seconds);
    o.str("dnsPolicy", &mut s.dns_policy);
    o.map("nodeSelector", &mut s.node_selector);
    o.str("serviceAccountName", &mut s.service_account_name);
    o.str("serviceAccount", &mut s.service_account);
    o.flag(
        "automountServiceAccountToken",
        &mut s.automount_service_account_token,
    );
    o.str("nodeName", &mut s.node_name);
    o.flag0("hostNetwork", &mut s.host_network);
    o.flag0("hostPID", &mut s.host_pid);
    o.flag0("hostIPC", &mut s.host_ipc);
    o.flag("shareProcessNamespace", &mut s.share_process_namespace);
    o.obj("securityContext", &mut s.security_context, pod_security)?;
    o.list(
        "imagePullSecrets",
        &mut s.image_pull_secrets,
        local_reference,
    )?;
    o.str("hostname", &mut s.hostname);
    o.str("subdomain", &mut s.subdomain);
    o.str("schedulerName", &mut s.scheduler_name);
    o.list("tolerations", &mut s.tolerations, toleration)?;
    o.list("hostAliases", &mut s.host_aliases, |mut a| {
        let mut o = Obj::default();
        o.str("ip", &mut a.ip);
        o.strs("hostnames", &mut a.hostnames);
        o.done(a, "HostAlias")
    })?;
    o.str("priorityClassName", &mut s.priority_class_name);
    o.int("priority", &mut s.priority);
    o.obj("dnsConfig", &mut s.dns_config, dns_config)?;
    o.list("readinessGates", &mut s.readiness_gates, |mut g| {
        let mut o = Obj::default();
        o.str("conditionType", &mut g.condition_type);
        o.done(g, "PodReadinessGate")
    })?;
    o.str("runtimeClassName", &mut s.runtime_class_name);
    o.flag("enableServiceLinks", &mut s.enable_service_links);
    o.str("preemptionPolicy", &mut s.preemption_policy);
    o.quantities("overhead", &mut s.overhead);
    o.list(
        "topologySpreadConstraints",
        &mut s.topology_spread_constraints,
        spread,
    )?;
    o.flag("setHostnameAsFQDN", &mut s.set_hostname_as_fqdn);
    o.obj("os", &mut s.os, |mut os| {
        let mut o = Obj::default();
        o.str("name", &mut os.name);
        o.done(os, "PodOS")
    })?;
    o.flag("hostUsers", &mut s.host_users);
    o.list("schedulingGates", &mut s.scheduling_gates, |mut g| {
        let mut o = Obj::default();
        o.str("name", &mut g.name);
        o.done(g, "PodSchedulingGate")
    })?;
    o.obj("resources", &mut s.resources, resources)?;
    o.str("hostnameOverride", &mut s.hostname_override);
    o.done(s, "PodSpec")
}

fn pod_security(mut c: v1::PodSecurityContext) -> Converted {
    let mut o = Obj::default();
    o.obj("seLinuxOptions", &mut c.se_linux_options, se_linux_options)?;
    o.obj("windowsOptions", &mut c.windows_options, windows_options)?;
    o.int("runAsUser", &mut c.run_as_user);
    o.int("runAsGroup", &mut c.run_as_group);
    o.flag("runAsNonRoot", &mut c.run_as_non_root);
    o.strs("supplementalGroups", &mut c.supplemental_groups);
    o.str(
        "supplementalGroupsPolicy",
        &mut c.supplemental_groups_policy,
    );
    o.int("fsGroup", &mut c.fs_group);
    o.list("sysctls", &mut c.sysctls, |mut s| {
        let mut o = Obj::default();
        o.str("name", &mut s.name);
        o.str("value", &mut s.value);
        o.done(s, "Sysctl")
    })?;
    o.str("fsGroupChangePolicy", &mut c.fs_group_change_policy);
    o.obj("seccompProfile", &mut c.seccomp_profile, |mut p| {
        seccomp_like(&mut p.r#type, &mut p.localhost_profile).done(p, "SeccompProfile")
    })?;
    o.obj("appArmorProfile", &mut c.app_armor_profile, |mut p| {
        seccomp_like(&mut p.r#type, &mut p.localhost_profile).done(p, "AppArmorProfile")
    })?;
    o.str("seLinuxChangePolicy", &mut c.se_linux_change_policy);
    o.done(c, "PodSecurityContext")
}

fn toleration(mut t: v1::Toleration) -> Converted {
    let mut o = Obj::default();
    o.str("key", &mut t.key);
    o.str("operator", &mut t.operator);
    o.str("value", &mut t.value);
    o.str("effect", &mut t.effect);
    o.int("tolerationSeconds", &mut t.toleration_seconds);
    o.done(t, "Toleration")
}

fn dns_config(mut c: v1::PodDnsConfig) -> Converted {
    let mut o = Obj::default();
    o.strs("nameservers", &mut c.nameservers);
    o.strs("searches", &mut c.searches);
    o.list("options", &mut c.options, |mut opt| {
        let mut o = Obj::default();
        o.str("name", &mut opt.name);
        o.str("value", &mut opt.value);
        o.done(opt, "PodDNSConfigOption")
    })?;
    o.done(c, "PodDNSConfig")
}

fn spread(mut c: v1::TopologySpreadConstraint) -> Converted {
    let mut o = Obj::default();
    o.int("maxSkew", &mut c.max_skew);
    o.str("topologyKey", &mut c.topology_key);
    o.str("whenUnsatisfiable", &mut c.when_unsatisfiable);
    o.obj("labelSelector", &mut c.label_selector, label_selector)?;
    o.int("minDomains", &mut c.min_domains);
    o.str("nodeAffinityPolicy", &mut c.node_affinity_policy);
    o.str("nodeTaintsPolicy", &mut c.node_taints_policy);
    o.strs("matchLabelKeys", &mut c.match_label_keys);
    o.done(c, "TopologySpreadConstraint")
}
