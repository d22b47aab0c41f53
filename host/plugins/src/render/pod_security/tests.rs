//! One test per Pod Security Standards control: the fixture Pod (object 1) with one field
//! changed must be refused naming that field and the control.

use serde_json::{Value, json};

use crate::render::tests::{assert_forbidden, passes, refused};

/// The fixture with `edit` applied to the Pod.
fn pod_refused(edit: impl FnOnce(&mut Value)) -> crate::RenderError {
    refused(1, edit)
}

fn container_ctx(pod: &mut Value) -> &mut Value {
    &mut pod["spec"]["containers"][0]["securityContext"]
}

#[test]
fn refuses_privileged_containers_in_every_list() {
    let err = pod_refused(|p| container_ctx(p)["privileged"] = json!(true));
    assert_forbidden(
        &err,
        "spec.containers[0].securityContext.privileged",
        "pod-security/privileged",
    );
    for list in ["initContainers", "ephemeralContainers"] {
        let err = pod_refused(|p| {
            let mut c = p["spec"]["containers"][0].clone();
            c["securityContext"]["privileged"] = json!(true);
            p["spec"][list] = json!([c]);
        });
        assert_forbidden(
            &err,
            &format!("spec.{list}[0].securityContext.privileged"),
            "pod-security/privileged",
        );
    }
}

#[test]
fn refuses_host_path_volumes() {
    let err = pod_refused(|p| {
        p["spec"]["volumes"][1] = json!({"name": "root", "hostPath": {"path": "/"}});
    });
    assert_forbidden(
        &err,
        "spec.volumes[1].hostPath",
        "pod-security/host-path-volumes",
    );
}

#[test]
fn refuses_volume_types_outside_the_restricted_list() {
    let err = pod_refused(|p| {
        p["spec"]["volumes"][1] = json!({"name": "n", "nfs": {"server": "x", "path": "/"}});
    });
    assert_forbidden(&err, "spec.volumes[1].nfs", "pod-security/volume-types");
}

#[test]
fn refuses_host_network_pid_and_ipc() {
    for key in ["hostNetwork", "hostPID", "hostIPC"] {
        let err = pod_refused(|p| p["spec"][key] = json!(true));
        assert_forbidden(&err, &format!("spec.{key}"), "pod-security/host-namespaces");
    }
    passes(1, |p| p["spec"]["hostNetwork"] = json!(false));
}

#[test]
fn refuses_run_as_user_zero() {
    let err = pod_refused(|p| p["spec"]["securityContext"]["runAsUser"] = json!(0));
    assert_forbidden(
        &err,
        "spec.securityContext.runAsUser",
        "pod-security/run-as-user",
    );
    let err = pod_refused(|p| container_ctx(p)["runAsUser"] = json!(0));
    assert_forbidden(
        &err,
        "spec.containers[0].securityContext.runAsUser",
        "pod-security/run-as-user",
    );
}

#[test]
fn requires_run_as_non_root_on_the_pod_or_every_container() {
    let err = pod_refused(|p| {
        p["spec"]["securityContext"]
            .as_object_mut()
            .map(|c| c.remove("runAsNonRoot"));
    });
    assert_forbidden(
        &err,
        "spec.containers[0].securityContext.runAsNonRoot",
        "pod-security/run-as-non-root",
    );
    let err = pod_refused(|p| container_ctx(p)["runAsNonRoot"] = json!(false));
    assert_forbidden(
        &err,
        "spec.containers[0].securityContext.runAsNonRoot",
        "pod-security/run-as-non-root",
    );
    passes(1, |p| {
        p["spec"]["securityContext"]
            .as_object_mut()
            .map(|c| c.remove("runAsNonRoot"));
        container_ctx(p)["runAsNonRoot"] = json!(true);
    });
}

#[test]
fn refuses_added_capabilities_but_net_bind_service() {
    let err = pod_refused(|p| container_ctx(p)["capabilities"]["add"] = json!(["SYS_ADMIN"]));
    assert_forbidden(
        &err,
        "spec.containers[0].securityContext.capabilities.add[0]",
        "pod-security/capabilities",
    );
    passes(1, |p| {
        container_ctx(p)["capabilities"]["add"] = json!(["NET_BIND_SERVICE"]);
    });
}

#[test]
fn requires_dropping_all_capabilities() {
    let err = pod_refused(|p| container_ctx(p)["capabilities"]["drop"] = json!(["NET_RAW"]));
    assert_forbidden(
        &err,
        "spec.containers[0].securityContext.capabilities.drop",
        "pod-security/capabilities",
    );
}

#[test]
fn requires_allow_privilege_escalation_false() {
    for value in [json!(true), Value::Null] {
        let err = pod_refused(|p| container_ctx(p)["allowPrivilegeEscalation"] = value);
        assert_forbidden(
            &err,
            "spec.containers[0].securityContext.allowPrivilegeEscalation",
            "pod-security/privilege-escalation",
        );
    }
}

#[test]
fn refuses_seccomp_unconfined_or_unset() {
    let err = pod_refused(|p| {
        p["spec"]["securityContext"]["seccompProfile"]["type"] = json!("Unconfined");
    });
    assert_forbidden(
        &err,
        "spec.securityContext.seccompProfile.type",
        "pod-security/seccomp",
    );
    let err = pod_refused(|p| {
        p["spec"]["securityContext"]["seccompProfile"] = Value::Null;
    });
    assert_forbidden(
        &err,
        "spec.containers[0].securityContext.seccompProfile.type",
        "pod-security/seccomp",
    );
    passes(1, |p| {
        p["spec"]["securityContext"]["seccompProfile"] = Value::Null;
        container_ctx(p)["seccompProfile"] =
            json!({"type": "Localhost", "localhostProfile": "x.json"});
    });
}

#[test]
fn refuses_unmasked_proc_mount() {
    let err = pod_refused(|p| container_ctx(p)["procMount"] = json!("Unmasked"));
    assert_forbidden(
        &err,
        "spec.containers[0].securityContext.procMount",
        "pod-security/proc-mount",
    );
}

#[test]
fn refuses_unsafe_sysctls() {
    let err = pod_refused(|p| {
        p["spec"]["securityContext"]["sysctls"] = json!([
            {"name": "net.ipv4.tcp_syncookies", "value": "1"},
            {"name": "kernel.msgmax", "value": "65536"},
        ]);
    });
    assert_forbidden(
        &err,
        "spec.securityContext.sysctls[1].name",
        "pod-security/sysctls",
    );
}

#[test]
fn refuses_host_ports() {
    let err = pod_refused(|p| {
        p["spec"]["containers"][0]["ports"][0]["hostPort"] = json!(8080);
    });
    assert_forbidden(
        &err,
        "spec.containers[0].ports[0].hostPort",
        "pod-security/host-ports",
    );
}

#[test]
fn refuses_unconfined_apparmor_profiles_and_annotations() {
    let err = pod_refused(|p| container_ctx(p)["appArmorProfile"] = json!({"type": "Unconfined"}));
    assert_forbidden(
        &err,
        "spec.containers[0].securityContext.appArmorProfile.type",
        "pod-security/apparmor",
    );
    let err = pod_refused(|p| {
        p["metadata"]["annotations"] =
            json!({"container.apparmor.security.beta.kubernetes.io/desktop": "unconfined"});
    });
    assert_forbidden(
        &err,
        r#"metadata.annotations["container.apparmor.security.beta.kubernetes.io/desktop"]"#,
        "pod-security/apparmor",
    );
}

#[test]
fn refuses_selinux_types_users_and_roles_outside_the_published_set() {
    let err = pod_refused(|p| {
        p["spec"]["securityContext"]["seLinuxOptions"] = json!({"type": "spc_t"});
    });
    assert_forbidden(
        &err,
        "spec.securityContext.seLinuxOptions.type",
        "pod-security/selinux",
    );
    let err = pod_refused(|p| container_ctx(p)["seLinuxOptions"] = json!({"user": "system_u"}));
    assert_forbidden(
        &err,
        "spec.containers[0].securityContext.seLinuxOptions.user",
        "pod-security/selinux",
    );
    passes(1, |p| {
        container_ctx(p)["seLinuxOptions"] = json!({"type": "container_t"})
    });
}

#[test]
fn refuses_windows_host_process() {
    let err = pod_refused(|p| {
        p["spec"]["securityContext"]["windowsOptions"] = json!({"hostProcess": true});
    });
    assert_forbidden(
        &err,
        "spec.securityContext.windowsOptions.hostProcess",
        "pod-security/host-process",
    );
}
