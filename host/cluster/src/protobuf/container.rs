//! Containers: image, command, ports, environment, resources, mounts, probes, lifecycle hooks
//! and security context.

use k8s_pb::api::core::v1;

use super::fields::{Converted, Obj};

/// A Container (also an init container).
pub(super) fn container(mut c: v1::Container) -> Converted {
    let mut o = Obj::default();
    o.str("name", &mut c.name);
    o.str("image", &mut c.image);
    o.strs("command", &mut c.command);
    o.strs("args", &mut c.args);
    o.str("workingDir", &mut c.working_dir);
    o.list("ports", &mut c.ports, port)?;
    o.list("envFrom", &mut c.env_from, env_from)?;
    o.list("env", &mut c.env, env_var)?;
    o.obj("resources", &mut c.resources, resources)?;
    o.list("resizePolicy", &mut c.resize_policy, |mut p| {
        let mut o = Obj::default();
        o.str("resourceName", &mut p.resource_name);
        o.str("restartPolicy", &mut p.restart_policy);
        o.done(p, "ContainerResizePolicy")
    })?;
    o.str("restartPolicy", &mut c.restart_policy);
    o.list(
        "restartPolicyRules",
        &mut c.restart_policy_rules,
        |mut r| {
            let mut o = Obj::default();
            o.str("action", &mut r.action);
            o.obj("exitCodes", &mut r.exit_codes, |mut e| {
                let mut o = Obj::default();
                o.str("operator", &mut e.operator);
                o.strs("values", &mut e.values);
                o.done(e, "ContainerRestartRuleOnExitCodes")
            })?;
            o.done(r, "ContainerRestartRule")
        },
    )?;
    o.list("volumeMounts", &mut c.volume_mounts, mount)?;
    o.list("volumeDevices", &mut c.volume_devices, |mut d| {
        let mut o = Obj::default();
        o.str("name", &mut d.name);
        o.str("devicePath", &mut d.device_path);
        o.done(d, "VolumeDevice")
    })?;
    o.obj("livenessProbe", &mut c.liveness_probe, probe)?;
    o.obj("readinessProbe", &mut c.readiness_probe, probe)?;
    o.obj("startupProbe", &mut c.startup_probe, probe)?;
    o.obj("lifecycle", &mut c.lifecycle, lifecycle)?;
    o.str("terminationMessagePath", &mut c.termination_message_path);
    o.str(
        "terminationMessagePolicy",
        &mut c.termination_message_policy,
    );
    o.str("imagePullPolicy", &mut c.image_pull_policy);
    o.obj("securityContext", &mut c.security_context, security_context)?;
    o.flag0("stdin", &mut c.stdin);
    o.flag0("stdinOnce", &mut c.stdin_once);
    o.flag0("tty", &mut c.tty);
    o.done(c, "Container")
}

fn port(mut p: v1::ContainerPort) -> Converted {
    let mut o = Obj::default();
    o.str("name", &mut p.name);
    o.int0("hostPort", &mut p.host_port);
    o.int("containerPort", &mut p.container_port);
    o.str("protocol", &mut p.protocol);
    o.str("hostIP", &mut p.host_ip);
    o.done(p, "ContainerPort")
}

fn env_var(mut e: v1::EnvVar) -> Converted {
    let mut o = Obj::default();
    o.str("name", &mut e.name);
    o.str("value", &mut e.value);
    o.obj("valueFrom", &mut e.value_from, |mut s| {
        let mut o = Obj::default();
        o.obj("fieldRef", &mut s.field_ref, field_selector)?;
        o.obj(
            "resourceFieldRef",
            &mut s.resource_field_ref,
            resource_selector,
        )?;
        o.obj("configMapKeyRef", &mut s.config_map_key_ref, |mut k| {
            let mut o = named(&mut k.local_object_reference)?;
            o.str("key", &mut k.key);
            o.flag("optional", &mut k.optional);
            o.done(k, "ConfigMapKeySelector")
        })?;
        o.obj("secretKeyRef", &mut s.secret_key_ref, |mut k| {
            let mut o = named(&mut k.local_object_reference)?;
            o.str("key", &mut k.key);
            o.flag("optional", &mut k.optional);
            o.done(k, "SecretKeySelector")
        })?;
        o.obj("fileKeyRef", &mut s.file_key_ref, |mut k| {
            let mut o = Obj::default();
            o.str("volumeName", &mut k.volume_name);
            o.str("path", &mut k.path);
            o.str("key", &mut k.key);
            o.flag("optional", &mut k.optional);
            o.done(k, "FileKeySelector")
        })?;
        o.done(s, "EnvVarSource")
    })?;
    o.done(e, "EnvVar")
}

fn env_from(mut e: v1::EnvFromSource) -> Converted {
    let mut o = Obj::default();
    o.str("prefix", &mut e.prefix);
    o.obj("configMapRef", &mut e.config_map_ref, |mut r| {
        let mut o = named(&mut r.local_object_reference)?;
        o.flag("optional", &mut r.optional);
        o.done(r, "ConfigMapEnvSource")
    })?;
    o.obj("secretRef", &mut e.secret_ref, |mut r| {
        let mut o = named(&mut r.local_object_reference)?;
        o.flag("optional", &mut r.optional);
        o.done(r, "SecretEnvSource")
    })?;
    o.done(e, "EnvFromSource")
}

/// An object that starts with an inline LocalObjectReference (`name`).
pub(super) fn named(r: &mut Option<v1::LocalObjectReference>) -> Converted<Obj> {
    let mut o = Obj::default();
    o.inline(r, super::core::local_reference)?;
    Ok(o)
}

/// An ObjectFieldSelector (`fieldRef`).
pub(super) fn field_selector(mut s: v1::ObjectFieldSelector) -> Converted {
    let mut o = Obj::default();
    o.str("apiVersion", &mut s.api_version);
    o.str("fieldPath", &mut s.field_path);
    o.done(s, "ObjectFieldSelector")
}

/// A ResourceFieldSelector (`resourceFieldRef`).
pub(super) fn resource_selector(mut s: v1::ResourceFieldSelector) -> Converted {
    let mut o = Obj::default();
    o.str("containerName", &mut s.container_name);
    o.str("resource", &mut s.resource);
    o.quantity("divisor", &mut s.divisor);
    o.done(s, "ResourceFieldSelector")
}

/// ResourceRequirements (`limits`, `requests`, `claims`).
pub(super) fn resources(mut r: v1::ResourceRequirements) -> Converted {
    let mut o = Obj::default();
    o.quantities("limits", &mut r.limits);
    o.quantities("requests", &mut r.requests);
    o.list("claims", &mut r.claims, |mut c| {
        let mut o = Obj::default();
        o.str("name", &mut c.name);
        o.str("request", &mut c.request);
        o.done(c, "ResourceClaim")
    })?;
    o.done(r, "ResourceRequirements")
}

fn mount(mut m: v1::VolumeMount) -> Converted {
    let mut o = Obj::default();
    o.str("name", &mut m.name);
    o.flag0("readOnly", &mut m.read_only);
    o.str("recursiveReadOnly", &mut m.recursive_read_only);
    o.str("mountPath", &mut m.mount_path);
    o.str("subPath", &mut m.sub_path);
    o.str("mountPropagation", &mut m.mount_propagation);
    o.str("subPathExpr", &mut m.sub_path_expr);
    o.done(m, "VolumeMount")
}

fn probe(mut p: v1::Probe) -> Converted {
    let mut o = Obj::default();
    o.inline(&mut p.handler, |mut h| {
        let mut o = Obj::default();
        o.obj("exec", &mut h.exec, exec)?;
        o.obj("httpGet", &mut h.http_get, http_get)?;
        o.obj("tcpSocket", &mut h.tcp_socket, tcp_socket)?;
        o.obj("grpc", &mut h.grpc, |mut g| {
            let mut o = Obj::default();
            o.int("port", &mut g.port);
            o.str("service", &mut g.service);
            o.done(g, "GRPCAction")
        })?;
        o.done(h, "ProbeHandler")
    })?;
    o.int0("initialDelaySeconds", &mut p.initial_delay_seconds);
    o.int0("timeoutSeconds", &mut p.timeout_seconds);
    o.int0("periodSeconds", &mut p.period_seconds);
    o.int0("successThreshold", &mut p.success_threshold);
    o.int0("failureThreshold", &mut p.failure_threshold);
    o.int(
        "terminationGracePeriodSeconds",
        &mut p.termination_grace_period_seconds,
    );
    o.done(p, "Probe")
}

fn lifecycle(mut l: v1::Lifecycle) -> Converted {
    let handler = |mut h: v1::LifecycleHandler| {
        let mut o = Obj::default();
        o.obj("exec", &mut h.exec, exec)?;
        o.obj("httpGet", &mut h.http_get, http_get)?;
        o.obj("tcpSocket", &mut h.tcp_socket, tcp_socket)?;
        o.obj("sleep", &mut h.sleep, |mut s| {
            let mut o = Obj::default();
            o.int("seconds", &mut s.seconds);
            o.done(s, "SleepAction")
        })?;
        o.done(h, "LifecycleHandler")
    };
    let mut o = Obj::default();
    o.obj("postStart", &mut l.post_start, handler)?;
    o.obj("preStop", &mut l.pre_stop, handler)?;
    o.str("stopSignal", &mut l.stop_signal);
    o.done(l, "Lifecycle")
}

fn exec(mut e: v1::ExecAction) -> Converted {
    let mut o = Obj::default();
    o.strs("command", &mut e.command);
    o.done(e, "ExecAction")
}

fn http_get(mut h: v1::HttpGetAction) -> Converted {
    let mut o = Obj::default();
    o.str("path", &mut h.path);
    o.int_or_string("port", &mut h.port);
    o.str("host", &mut h.host);
    o.str("scheme", &mut h.scheme);
    o.list("httpHeaders", &mut h.http_headers, |mut h| {
        let mut o = Obj::default();
        o.str("name", &mut h.name);
        o.str("value", &mut h.value);
        o.done(h, "HTTPHeader")
    })?;
    o.done(h, "HTTPGetAction")
}

fn tcp_socket(mut t: v1::TcpSocketAction) -> Converted {
    let mut o = Obj::default();
    o.int_or_string("port", &mut t.port);
    o.str("host", &mut t.host);
    o.done(t, "TCPSocketAction")
}

fn security_context(mut c: v1::SecurityContext) -> Converted {
    let mut o = Obj::default();
    o.obj("capabilities", &mut c.capabilities, |mut caps| {
        let mut o = Obj::default();
        o.strs("add", &mut caps.add);
        o.strs("drop", &mut caps.drop);
        o.done(caps, "Capabilities")
    })?;
    o.flag("privileged", &mut c.privileged);
    o.obj("seLinuxOptions", &mut c.se_linux_options, se_linux_options)?;
    o.obj("windowsOptions", &mut c.windows_options, windows_options)?;
    o.int("runAsUser", &mut c.run_as_user);
    o.int("runAsGroup", &mut c.run_as_group);
    o.flag("runAsNonRoot", &mut c.run_as_non_root);
    o.flag("readOnlyRootFilesystem", &mut c.read_only_root_filesystem);
    o.flag(
        "allowPrivilegeEscalation",
        &mut c.allow_privilege_escalation,
    );
    o.str("procMount", &mut c.proc_mount);
    o.obj("seccompProfile", &mut c.seccomp_profile, |mut p| {
        seccomp_like(&mut p.r#type, &mut p.localhost_profile).done(p, "SeccompProfile")
    })?;
    o.obj("appArmorProfile", &mut c.app_armor_profile, |mut p| {
        seccomp_like(&mut p.r#type, &mut p.localhost_profile).done(p, "AppArmorProfile")
    })?;
    o.done(c, "SecurityContext")
}

/// SELinuxOptions.
pub(super) fn se_linux_options(mut s: v1::SeLinuxOptions) -> Converted {
    let mut o = Obj::default();
    o.str("user", &mut s.user);
    o.str("role", &mut s.role);
    o.str("type", &mut s.r#type);
    o.str("level", &mut s.level);
    o.done(s, "SELinuxOptions")
}

/// WindowsSecurityContextOptions.
pub(super) fn windows_options(mut w: v1::WindowsSecurityContextOptions) -> Converted {
    let mut o = Obj::default();
    o.str("gmsaCredentialSpecName", &mut w.gmsa_credential_spec_name);
    o.str("gmsaCredentialSpec", &mut w.gmsa_credential_spec);
    o.str("runAsUserName", &mut w.run_as_user_name);
    o.flag("hostProcess", &mut w.host_process);
    o.done(w, "WindowsSecurityContextOptions")
}

/// A SeccompProfile or AppArmorProfile (`type`, `localhostProfile`).
pub(super) fn seccomp_like(kind: &mut Option<String>, localhost: &mut Option<String>) -> Obj {
    let mut o = Obj::default();
    o.str("type", kind);
    o.str("localhostProfile", localhost);
    o
}
