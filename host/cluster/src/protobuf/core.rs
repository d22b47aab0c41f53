//! Core (`v1`) kinds: Namespace, ConfigMap, Secret, ServiceAccount, Service, ResourceQuota and
//! Event, and the object references they share with other groups.

use k8s_pb::api::core::v1;

use super::fields::{Converted, Obj};
use super::meta::{blank_status, object};

/// Namespace (`kubectl create namespace`).
pub(super) fn namespace(mut n: v1::Namespace) -> Converted {
    let mut o = object(n.metadata.take())?;
    o.obj("spec", &mut n.spec, |mut s| {
        let mut o = Obj::default();
        o.strs("finalizers", &mut s.finalizers);
        o.done(s, "NamespaceSpec")
    })?;
    blank_status(&mut n.status, "NamespaceStatus")?;
    o.done(n, "Namespace")
}

/// ConfigMap (`kubectl create configmap`): `binaryData` base64 as in JSON.
pub(super) fn config_map(mut c: v1::ConfigMap) -> Converted {
    let mut o = object(c.metadata.take())?;
    o.flag("immutable", &mut c.immutable);
    o.map("data", &mut c.data);
    o.bytes_map("binaryData", &mut c.binary_data);
    o.done(c, "ConfigMap")
}

/// Secret (`kubectl create secret generic|docker-registry|tls`): `data` base64 as in JSON.
pub(super) fn secret(mut s: v1::Secret) -> Converted {
    let mut o = object(s.metadata.take())?;
    o.flag("immutable", &mut s.immutable);
    o.bytes_map("data", &mut s.data);
    o.map("stringData", &mut s.string_data);
    o.str("type", &mut s.r#type);
    o.done(s, "Secret")
}

/// ServiceAccount (`kubectl create serviceaccount`).
pub(super) fn service_account(mut a: v1::ServiceAccount) -> Converted {
    let mut o = object(a.metadata.take())?;
    o.list("secrets", &mut a.secrets, object_reference)?;
    o.list(
        "imagePullSecrets",
        &mut a.image_pull_secrets,
        local_reference,
    )?;
    o.flag(
        "automountServiceAccountToken",
        &mut a.automount_service_account_token,
    );
    o.done(a, "ServiceAccount")
}

/// Service (`kubectl create service clusterip|nodeport|loadbalancer|externalname`).
pub(super) fn service(mut s: v1::Service) -> Converted {
    let mut o = object(s.metadata.take())?;
    o.obj("spec", &mut s.spec, service_spec)?;
    blank_status(&mut s.status, "ServiceStatus")?;
    o.done(s, "Service")
}

fn service_spec(mut s: v1::ServiceSpec) -> Converted {
    let mut o = Obj::default();
    o.list("ports", &mut s.ports, service_port)?;
    o.map("selector", &mut s.selector);
    o.str("clusterIP", &mut s.cluster_ip);
    o.strs("clusterIPs", &mut s.cluster_ips);
    o.str("type", &mut s.r#type);
    o.strs("externalIPs", &mut s.external_ips);
    o.str("sessionAffinity", &mut s.session_affinity);
    o.str("loadBalancerIP", &mut s.load_balancer_ip);
    o.strs(
        "loadBalancerSourceRanges",
        &mut s.load_balancer_source_ranges,
    );
    o.str("externalName", &mut s.external_name);
    o.str("externalTrafficPolicy", &mut s.external_traffic_policy);
    o.int0("healthCheckNodePort", &mut s.health_check_node_port);
    o.flag0(
        "publishNotReadyAddresses",
        &mut s.publish_not_ready_addresses,
    );
    o.obj(
        "sessionAffinityConfig",
        &mut s.session_affinity_config,
        |mut c| {
            let mut o = Obj::default();
            o.obj("clientIP", &mut c.client_ip, |mut ip| {
                let mut o = Obj::default();
                o.int("timeoutSeconds", &mut ip.timeout_seconds);
                o.done(ip, "ClientIPConfig")
            })?;
            o.done(c, "SessionAffinityConfig")
        },
    )?;
    o.strs("ipFamilies", &mut s.ip_families);
    o.str("ipFamilyPolicy", &mut s.ip_family_policy);
    o.flag(
        "allocateLoadBalancerNodePorts",
        &mut s.allocate_load_balancer_node_ports,
    );
    o.str("loadBalancerClass", &mut s.load_balancer_class);
    o.str("internalTrafficPolicy", &mut s.internal_traffic_policy);
    o.str("trafficDistribution", &mut s.traffic_distribution);
    o.done(s, "ServiceSpec")
}

fn service_port(mut p: v1::ServicePort) -> Converted {
    let mut o = Obj::default();
    o.str("name", &mut p.name);
    o.str("protocol", &mut p.protocol);
    o.str("appProtocol", &mut p.app_protocol);
    o.int("port", &mut p.port);
    o.int_or_string("targetPort", &mut p.target_port);
    o.int0("nodePort", &mut p.node_port);
    o.done(p, "ServicePort")
}

/// ResourceQuota (`kubectl create quota`).
pub(super) fn resource_quota(mut q: v1::ResourceQuota) -> Converted {
    let mut o = object(q.metadata.take())?;
    o.obj("spec", &mut q.spec, |mut s| {
        let mut o = Obj::default();
        o.quantities("hard", &mut s.hard);
        o.strs("scopes", &mut s.scopes);
        o.obj("scopeSelector", &mut s.scope_selector, |mut sel| {
            let mut o = Obj::default();
            o.list("matchExpressions", &mut sel.match_expressions, |mut r| {
                let mut o = Obj::default();
                o.str("scopeName", &mut r.scope_name);
                o.str("operator", &mut r.operator);
                o.strs("values", &mut r.values);
                o.done(r, "ScopedResourceSelectorRequirement")
            })?;
            o.done(sel, "ScopeSelector")
        })?;
        o.done(s, "ResourceQuotaSpec")
    })?;
    blank_status(&mut q.status, "ResourceQuotaStatus")?;
    o.done(q, "ResourceQuota")
}

/// Event (`v1`), as client-go's event recorders write it.
pub(super) fn event(mut e: v1::Event) -> Converted {
    let mut o = object(e.metadata.take())?;
    o.obj("involvedObject", &mut e.involved_object, object_reference)?;
    o.str("reason", &mut e.reason);
    o.str("message", &mut e.message);
    o.obj("source", &mut e.source, |mut s| {
        let mut o = Obj::default();
        o.str("component", &mut s.component);
        o.str("host", &mut s.host);
        o.done(s, "EventSource")
    })?;
    o.time("firstTimestamp", &mut e.first_timestamp);
    o.time("lastTimestamp", &mut e.last_timestamp);
    o.int0("count", &mut e.count);
    o.str("type", &mut e.r#type);
    o.micro_time("eventTime", &mut e.event_time);
    o.obj("series", &mut e.series, |mut s| {
        let mut o = Obj::default();
        o.int0("count", &mut s.count);
        o.micro_time("lastObservedTime", &mut s.last_observed_time);
        o.done(s, "EventSeries")
    })?;
    o.str("action", &mut e.action);
    o.obj("related", &mut e.related, object_reference)?;
    o.str("reportingComponent", &mut e.reporting_component);
    o.str("reportingInstance", &mut e.reporting_instance);
    o.done(e, "Event")
}

/// An ObjectReference.
pub(super) fn object_reference(mut r: v1::ObjectReference) -> Converted {
    let mut o = Obj::default();
    o.str("kind", &mut r.kind);
    o.str("namespace", &mut r.namespace);
    o.str("name", &mut r.name);
    o.str("uid", &mut r.uid);
    o.str("apiVersion", &mut r.api_version);
    o.str("resourceVersion", &mut r.resource_version);
    o.str("fieldPath", &mut r.field_path);
    o.done(r, "ObjectReference")
}

/// A LocalObjectReference (`{name}`).
pub(super) fn local_reference(mut r: v1::LocalObjectReference) -> Converted {
    let mut o = Obj::default();
    o.str("name", &mut r.name);
    o.done(r, "LocalObjectReference")
}

/// A TypedLocalObjectReference (`{apiGroup, kind, name}`).
pub(super) fn typed_local_reference(mut r: v1::TypedLocalObjectReference) -> Converted {
    let mut o = Obj::default();
    o.str("apiGroup", &mut r.api_group);
    o.str("kind", &mut r.kind);
    o.str("name", &mut r.name);
    o.done(r, "TypedLocalObjectReference")
}
