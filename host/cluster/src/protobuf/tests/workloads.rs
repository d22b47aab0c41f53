//! The workload kinds (Deployment, Job, CronJob) with the pod template kubectl's generators
//! build, and PriorityClass, PodDisruptionBudget, ResourceQuota, Ingress.

use std::collections::BTreeMap;

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::batch::v1 as batch;
use k8s_pb::api::core::v1 as core;
use k8s_pb::api::networking::v1 as net;
use k8s_pb::api::policy::v1 as policy;
use k8s_pb::api::scheduling::v1 as scheduling;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use super::kinds::{empty, int, labels, s};
use super::{convert, go_meta};

/// A container as `kubectl create deployment --image=... --port=80 -- cmd arg` builds it.
fn kubectl_container() -> core::Container {
    core::Container {
        name: s("nginx"),
        image: s("nginx:1"),
        command: vec!["cmd".into()],
        args: vec!["arg".into()],
        working_dir: empty(),
        ports: vec![core::ContainerPort {
            name: empty(),
            host_port: Some(0),
            container_port: Some(80),
            protocol: empty(),
            host_ip: empty(),
        }],
        env: vec![core::EnvVar {
            name: s("MODE"),
            value: s("demo"),
            value_from: None,
        }],
        resources: Some(core::ResourceRequirements {
            limits: [("cpu".to_owned(), Quantity { string: s("500m") })].into(),
            requests: [("memory".to_owned(), Quantity { string: s("64Mi") })].into(),
            claims: vec![],
        }),
        termination_message_path: empty(),
        termination_message_policy: empty(),
        image_pull_policy: empty(),
        stdin: Some(false),
        stdin_once: Some(false),
        tty: Some(false),
        ..Default::default()
    }
}

fn kubectl_template(restart: &str) -> core::PodTemplateSpec {
    let mut metadata = go_meta("", "");
    if let Some(m) = metadata.as_mut() {
        m.labels = labels(&[("app", "web")]);
    }
    core::PodTemplateSpec {
        metadata,
        spec: Some(core::PodSpec {
            containers: vec![kubectl_container()],
            restart_policy: s(restart),
            dns_policy: empty(),
            service_account_name: empty(),
            service_account: empty(),
            node_name: empty(),
            host_network: Some(false),
            host_pid: Some(false),
            host_ipc: Some(false),
            hostname: empty(),
            subdomain: empty(),
            scheduler_name: empty(),
            priority_class_name: empty(),
            ..Default::default()
        }),
    }
}

fn converted_template(restart: &str) -> serde_json::Value {
    let mut spec = json!({"containers": [{"name": "nginx", "image": "nginx:1", "command": ["cmd"], "args": ["arg"],
        "ports": [{"containerPort": 80}], "env": [{"name": "MODE", "value": "demo"}],
        "resources": {"limits": {"cpu": "500m"}, "requests": {"memory": "64Mi"}}}]});
    if !restart.is_empty() {
        spec["restartPolicy"] = json!(restart);
    }
    json!({"metadata": {"labels": {"app": "web"}}, "spec": spec})
}

#[test]
fn deployment() {
    let d = apps::Deployment {
        metadata: go_meta("web", "team"),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(2),
            selector: Some(meta::LabelSelector {
                match_labels: labels(&[("app", "web")]),
                match_expressions: vec![],
            }),
            template: Some(kubectl_template("")),
            strategy: Some(apps::DeploymentStrategy {
                r#type: empty(),
                rolling_update: Some(apps::RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: s("25%"),
                    }),
                    max_surge: Some(int(1)),
                }),
            }),
            min_ready_seconds: Some(0),
            paused: Some(false),
            ..Default::default()
        }),
        status: Some(apps::DeploymentStatus {
            replicas: Some(0),
            ..Default::default()
        }),
    };
    assert_eq!(
        convert("apps/v1", "Deployment", &d),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "team"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "template": converted_template(""),
                "strategy": {"rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1}}}})
    );
}

#[test]
fn pod_as_kubectl_run_sends_it() {
    let pod = core::Pod {
        metadata: go_meta("p", "team"),
        spec: kubectl_template("Always").spec,
        status: Some(core::PodStatus {
            phase: empty(),
            ..Default::default()
        }),
    };
    let mut expected = converted_template("Always");
    expected["metadata"] = json!({"name": "p", "namespace": "team"});
    expected["apiVersion"] = json!("v1");
    expected["kind"] = json!("Pod");
    assert_eq!(convert("v1", "Pod", &pod), expected);
}

#[test]
fn job_and_cron_job() {
    let job_spec = batch::JobSpec {
        template: Some(kubectl_template("Never")),
        ..Default::default()
    };
    let job = batch::Job {
        metadata: go_meta("once", "team"),
        spec: Some(job_spec.clone()),
        status: Some(batch::JobStatus::default()),
    };
    assert_eq!(
        convert("batch/v1", "Job", &job)["spec"],
        json!({"template": converted_template("Never")})
    );
    let cron = batch::CronJob {
        metadata: go_meta("nightly", "team"),
        spec: Some(batch::CronJobSpec {
            schedule: s("0 3 * * *"),
            concurrency_policy: empty(),
            job_template: Some(batch::JobTemplateSpec {
                metadata: go_meta("nightly", ""),
                spec: Some(job_spec),
            }),
            ..Default::default()
        }),
        status: Some(batch::CronJobStatus::default()),
    };
    assert_eq!(
        convert("batch/v1", "CronJob", &cron)["spec"],
        json!({"schedule": "0 3 * * *", "jobTemplate": {"metadata": {"name": "nightly"}, "spec": {"template": converted_template("Never")}}})
    );
}

#[test]
fn priority_class_pdb_quota_and_ingress() {
    let pc = scheduling::PriorityClass {
        metadata: go_meta("high", ""),
        value: Some(1000),
        global_default: Some(false),
        description: s("important"),
        preemption_policy: s("Never"),
    };
    assert_eq!(
        convert("scheduling.k8s.io/v1", "PriorityClass", &pc),
        json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "high"},
            "value": 1000, "description": "important", "preemptionPolicy": "Never"})
    );
    let pdb = policy::PodDisruptionBudget {
        metadata: go_meta("pdb", "team"),
        spec: Some(policy::PodDisruptionBudgetSpec {
            min_available: Some(int(1)),
            selector: Some(meta::LabelSelector {
                match_labels: BTreeMap::new(),
                match_expressions: vec![meta::LabelSelectorRequirement {
                    key: s("app"),
                    operator: s("In"),
                    values: vec!["web".into()],
                }],
            }),
            ..Default::default()
        }),
        status: Some(policy::PodDisruptionBudgetStatus::default()),
    };
    assert_eq!(
        convert("policy/v1", "PodDisruptionBudget", &pdb)["spec"],
        json!({"minAvailable": 1, "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}})
    );
    let quota = core::ResourceQuota {
        metadata: go_meta("q", "team"),
        spec: Some(core::ResourceQuotaSpec {
            hard: [
                ("pods".to_owned(), Quantity { string: s("10") }),
                ("requests.cpu".to_owned(), Quantity { string: s("2") }),
            ]
            .into(),
            scopes: vec!["BestEffort".into()],
            scope_selector: None,
        }),
        status: Some(core::ResourceQuotaStatus::default()),
    };
    assert_eq!(
        convert("v1", "ResourceQuota", &quota)["spec"],
        json!({"hard": {"pods": "10", "requests.cpu": "2"}, "scopes": ["BestEffort"]})
    );
    let backend = |port: i32| net::IngressBackend {
        service: Some(net::IngressServiceBackend {
            name: s("web"),
            port: Some(net::ServiceBackendPort {
                name: empty(),
                number: Some(port),
            }),
        }),
        resource: None,
    };
    let ingress = net::Ingress {
        metadata: go_meta("web", "team"),
        spec: Some(net::IngressSpec {
            ingress_class_name: s("nginx"),
            default_backend: None,
            tls: vec![net::IngressTls {
                hosts: vec!["a.example.com".into()],
                secret_name: s("tls"),
            }],
            rules: vec![net::IngressRule {
                host: s("a.example.com"),
                ingress_rule_value: Some(net::IngressRuleValue {
                    http: Some(net::HttpIngressRuleValue {
                        paths: vec![net::HttpIngressPath {
                            path: s("/"),
                            path_type: s("Exact"),
                            backend: Some(backend(80)),
                        }],
                    }),
                }),
            }],
        }),
        status: Some(net::IngressStatus::default()),
    };
    assert_eq!(
        convert("networking.k8s.io/v1", "Ingress", &ingress)["spec"],
        json!({"ingressClassName": "nginx", "tls": [{"hosts": ["a.example.com"], "secretName": "tls"}],
            "rules": [{"host": "a.example.com", "http": {"paths": [{"path": "/", "pathType": "Exact",
                "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]})
    );
}
