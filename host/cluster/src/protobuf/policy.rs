//! Scheduling and networking kinds: PodDisruptionBudget (`policy/v1`), PriorityClass
//! (`scheduling.k8s.io/v1`), Ingress (`networking.k8s.io/v1`).

use k8s_pb::api::networking::v1 as net;
use k8s_pb::api::policy::v1 as policy;
use k8s_pb::api::scheduling::v1 as scheduling;

use super::core::typed_local_reference;
use super::fields::{Converted, Obj};
use super::meta::{blank_status, label_selector, object};

/// PodDisruptionBudget (`kubectl create poddisruptionbudget`).
pub(super) fn pod_disruption_budget(mut p: policy::PodDisruptionBudget) -> Converted {
    let mut o = object(p.metadata.take())?;
    o.obj("spec", &mut p.spec, |mut s| {
        let mut o = Obj::default();
        o.int_or_string("minAvailable", &mut s.min_available);
        o.obj("selector", &mut s.selector, label_selector)?;
        o.int_or_string("maxUnavailable", &mut s.max_unavailable);
        o.str(
            "unhealthyPodEvictionPolicy",
            &mut s.unhealthy_pod_eviction_policy,
        );
        o.done(s, "PodDisruptionBudgetSpec")
    })?;
    blank_status(&mut p.status, "PodDisruptionBudgetStatus")?;
    o.done(p, "PodDisruptionBudget")
}

/// PriorityClass (`kubectl create priorityclass`).
pub(super) fn priority_class(mut p: scheduling::PriorityClass) -> Converted {
    let mut o = object(p.metadata.take())?;
    o.int("value", &mut p.value);
    o.flag0("globalDefault", &mut p.global_default);
    o.str("description", &mut p.description);
    o.str("preemptionPolicy", &mut p.preemption_policy);
    o.done(p, "PriorityClass")
}

/// Ingress (`kubectl create ingress`).
pub(super) fn ingress(mut i: net::Ingress) -> Converted {
    let mut o = object(i.metadata.take())?;
    o.obj("spec", &mut i.spec, |mut s| {
        let mut o = Obj::default();
        o.str("ingressClassName", &mut s.ingress_class_name);
        o.obj("defaultBackend", &mut s.default_backend, backend)?;
        o.list("tls", &mut s.tls, |mut t| {
            let mut o = Obj::default();
            o.strs("hosts", &mut t.hosts);
            o.str("secretName", &mut t.secret_name);
            o.done(t, "IngressTLS")
        })?;
        o.list("rules", &mut s.rules, rule)?;
        o.done(s, "IngressSpec")
    })?;
    blank_status(&mut i.status, "IngressStatus")?;
    o.done(i, "Ingress")
}

fn rule(mut r: net::IngressRule) -> Converted {
    let mut o = Obj::default();
    o.str("host", &mut r.host);
    o.inline(&mut r.ingress_rule_value, |mut v| {
        let mut o = Obj::default();
        o.obj("http", &mut v.http, |mut h| {
            let mut o = Obj::default();
            o.list("paths", &mut h.paths, |mut p| {
                let mut o = Obj::default();
                o.str("path", &mut p.path);
                o.str("pathType", &mut p.path_type);
                o.obj("backend", &mut p.backend, backend)?;
                o.done(p, "HTTPIngressPath")
            })?;
            o.done(h, "HTTPIngressRuleValue")
        })?;
        o.done(v, "IngressRuleValue")
    })?;
    o.done(r, "IngressRule")
}

fn backend(mut b: net::IngressBackend) -> Converted {
    let mut o = Obj::default();
    o.obj("service", &mut b.service, |mut s| {
        let mut o = Obj::default();
        o.str("name", &mut s.name);
        o.obj("port", &mut s.port, |mut p| {
            let mut o = Obj::default();
            o.str("name", &mut p.name);
            o.int0("number", &mut p.number);
            o.done(p, "ServiceBackendPort")
        })?;
        o.done(s, "IngressServiceBackend")
    })?;
    o.obj("resource", &mut b.resource, typed_local_reference)?;
    o.done(b, "IngressBackend")
}
