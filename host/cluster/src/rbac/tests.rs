//! Decisions over bindings, the default policy, rules reviews and the forbidden texts.

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;

use super::defaults::rule;

fn meta(namespace: Option<&str>, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        ..ObjectMeta::default()
    }
}

fn role(namespace: &str, name: &str, rules: Vec<PolicyRule>) -> Role {
    Role {
        metadata: meta(Some(namespace), name),
        rules: Some(rules),
    }
}

fn cluster_role(name: &str, rules: Vec<PolicyRule>) -> ClusterRole {
    ClusterRole {
        metadata: meta(None, name),
        rules: Some(rules),
        aggregation_rule: None,
    }
}

fn subject(kind: &str, name: &str, namespace: Option<&str>) -> Subject {
    Subject {
        api_group: None,
        kind: kind.to_owned(),
        name: name.to_owned(),
        namespace: namespace.map(str::to_owned),
    }
}

fn role_ref(kind: &str, name: &str) -> RoleRef {
    RoleRef {
        api_group: Some("rbac.authorization.k8s.io".to_owned()),
        kind: kind.to_owned(),
        name: name.to_owned(),
    }
}

fn role_binding(namespace: &str, kind: &str, role: &str, subjects: Vec<Subject>) -> RoleBinding {
    RoleBinding {
        metadata: meta(Some(namespace), &format!("{role}-binding")),
        role_ref: role_ref(kind, role),
        subjects: Some(subjects),
    }
}

fn cluster_binding(role: &str, subjects: Vec<Subject>) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: meta(None, &format!("{role}-binding")),
        role_ref: role_ref("ClusterRole", role),
        subjects: Some(subjects),
    }
}

fn alice() -> UserInfo {
    UserInfo::new("alice", [AUTHENTICATED_GROUP])
}

fn can(authz: &Authorizer, attrs: &Attributes) -> bool {
    authz.authorize(attrs).is_allowed()
}

/// A namespace `bob` with a Role for pods, and a ClusterRole for sessions used in two ways.
fn fixture() -> Authorizer {
    Authorizer::new(
        [role(
            "bob",
            "pod-reader",
            vec![rule(&["get", "list"], &[""], &["pods"])],
        )],
        [
            cluster_role(
                "session-editor",
                vec![rule(&["*"], &["vdi.dev"], &["vdisessions"])],
            ),
            cluster_role(
                "node-reader",
                vec![rule(&["get", "list"], &[""], &["nodes"])],
            ),
        ],
        [
            role_binding(
                "bob",
                "Role",
                "pod-reader",
                vec![subject("User", "alice", None)],
            ),
            role_binding(
                "bob",
                "ClusterRole",
                "session-editor",
                vec![subject("Group", "team", None)],
            ),
            role_binding(
                "bob",
                "ClusterRole",
                "node-reader",
                vec![subject("ServiceAccount", "bot", None)],
            ),
        ],
        [cluster_binding(
            "node-reader",
            vec![subject("ServiceAccount", "agent", Some("ops"))],
        )],
    )
}

#[test]
fn rbac_role_binding_is_confined_to_its_namespace() {
    let authz = fixture();
    let pods = |ns: &str| Attributes::resource(alice(), "list", "", "pods").in_namespace(ns);
    assert!(can(&authz, &pods("bob")));
    assert!(!can(&authz, &pods("carol")));
    assert!(!can(
        &authz,
        &Attributes::resource(alice(), "list", "", "pods")
    ));
    assert!(!can(
        &authz,
        &pods("bob").named("p").clone_with_verb("delete")
    ));
}

#[test]
fn rbac_cluster_role_via_role_binding_is_confined_to_the_namespace() {
    let authz = fixture();
    let member = UserInfo::new("dave", ["team", AUTHENTICATED_GROUP]);
    let sessions =
        |verb: &str| Attributes::resource(member.clone(), verb, "vdi.dev", "vdisessions");
    assert!(can(&authz, &sessions("create").in_namespace("bob")));
    assert!(can(
        &authz,
        &sessions("delete").in_namespace("bob").named("s")
    ));
    assert!(!can(&authz, &sessions("create").in_namespace("carol")));
    // Nor at the cluster scope (a list across all namespaces).
    assert!(!can(&authz, &sessions("list")));
    // A user not in the group gets nothing from it.
    assert!(!can(
        &authz,
        &Attributes::resource(alice(), "create", "vdi.dev", "vdisessions").in_namespace("bob")
    ));
}

#[test]
fn rbac_service_account_subjects() {
    let authz = fixture();
    let nodes = |user: UserInfo| Attributes::resource(user, "list", "", "nodes");
    // ClusterRoleBinding to ops/agent: cluster-scoped nodes.
    assert!(can(
        &authz,
        &nodes(UserInfo::service_account("ops", "agent"))
    ));
    assert!(!can(
        &authz,
        &nodes(UserInfo::service_account("dev", "agent"))
    ));
    // RoleBinding naming `bot` without a namespace means bob/bot, and only in bob.
    let bot = UserInfo::service_account("bob", "bot");
    assert_eq!(bot.name, "system:serviceaccount:bob:bot");
    assert!(can(&authz, &nodes(bot.clone()).in_namespace("bob")));
    assert!(!can(&authz, &nodes(bot).in_namespace("carol")));
    assert!(!can(
        &authz,
        &nodes(UserInfo::service_account("carol", "bot")).in_namespace("bob")
    ));
    // A user merely named like the account is the account, by design of the user name.
    let named = UserInfo::new("system:serviceaccount:ops:agent", Vec::<String>::new());
    assert!(can(&authz, &nodes(named)));
}

#[test]
fn rbac_group_subjects_and_cluster_role_bindings() {
    let authz = Authorizer::new(
        [],
        [cluster_role("reader", vec![rule(&["get"], &["*"], &["*"])])],
        [],
        [cluster_binding(
            "reader",
            vec![subject("Group", "auditors", None)],
        )],
    );
    let auditor = UserInfo::new("erin", ["auditors"]);
    let get =
        |user: UserInfo| Attributes::resource(user, "get", "vdi.dev", "vdisessions").named("s");
    assert!(can(&authz, &get(auditor.clone()).in_namespace("any")));
    assert!(can(&authz, &get(auditor.clone())));
    assert!(!can(&authz, &get(alice()).in_namespace("any")));
    assert!(!can(
        &authz,
        &Attributes::resource(auditor, "list", "", "pods")
    ));
}

#[test]
fn rbac_missing_role_denies_with_the_rbac_error() {
    let authz = Authorizer::new(
        [],
        [],
        [role_binding(
            "bob",
            "Role",
            "gone",
            vec![subject("User", "alice", None)],
        )],
        [cluster_binding(
            "vanished",
            vec![subject("User", "alice", None)],
        )],
    );
    let attrs = Attributes::resource(alice(), "get", "", "pods")
        .in_namespace("bob")
        .named("p");
    assert_eq!(
        authz.authorize(&attrs),
        Decision::Deny {
            reason: "User \"alice\" cannot get resource \"pods\" in API group \"\" in the namespace \"bob\": \
                     RBAC: [clusterrole.rbac.authorization.k8s.io \"vanished\" not found, \
                     role.rbac.authorization.k8s.io \"gone\" not found]"
                .to_owned()
        }
    );
    let review = authz.rules_for(&alice(), "bob");
    assert!(review.incomplete);
    assert!(
        review
            .evaluation_error
            .is_some_and(|e| e.contains("\"gone\" not found"))
    );
}

#[test]
fn rbac_default_masters_may_do_anything() {
    let authz = Authorizer::bootstrap();
    let admin = UserInfo::new("root", [MASTERS_GROUP, AUTHENTICATED_GROUP]);
    let res = |verb: &str, group: &str, resource: &str| {
        Attributes::resource(admin.clone(), verb, group, resource)
    };
    assert!(can(&authz, &res("delete", "", "nodes").named("n")));
    assert!(can(
        &authz,
        &res("deletecollection", "vdi.dev", "vdisessions").in_namespace("x")
    ));
    assert!(can(&authz, &res("impersonate", "", "users").named("alice")));
    assert!(can(
        &authz,
        &res("update", "vdi.dev", "vdisessions/status")
            .in_namespace("x")
            .named("s")
    ));
    assert!(can(
        &authz,
        &Attributes::non_resource(admin.clone(), "get", "/metrics")
    ));
    assert!(can(
        &authz,
        &Attributes::non_resource(admin, "post", "/anything/else")
    ));
}

#[test]
fn rbac_default_authenticated_discovery_but_not_pods() {
    let authz = Authorizer::bootstrap();
    let path = |user: UserInfo, p: &str| Attributes::non_resource(user, "get", p);
    for p in [
        "/api",
        "/api/v1",
        "/apis",
        "/apis/vdi.dev",
        "/apis/vdi.dev/v1",
        "/version",
        "/healthz",
        "/openapi/v3",
    ] {
        assert!(can(&authz, &path(alice(), p)), "{p}");
    }
    assert!(!can(&authz, &path(alice(), "/metrics")));
    assert!(!can(
        &authz,
        &Attributes::non_resource(alice(), "post", "/api")
    ));
    assert!(!can(
        &authz,
        &Attributes::resource(alice(), "list", "", "pods").in_namespace("default")
    ));
    assert!(can(
        &authz,
        &Attributes::resource(
            alice(),
            "create",
            "authorization.k8s.io",
            "selfsubjectaccessreviews"
        )
    ));
    assert!(can(
        &authz,
        &Attributes::resource(
            alice(),
            "create",
            "authorization.k8s.io",
            "selfsubjectrulesreviews"
        )
    ));

    // Anonymous requests see only public information.
    let anonymous = UserInfo::new("system:anonymous", [UNAUTHENTICATED_GROUP]);
    assert!(can(&authz, &path(anonymous.clone(), "/healthz")));
    assert!(can(&authz, &path(anonymous.clone(), "/version")));
    assert!(!can(&authz, &path(anonymous, "/apis")));
}

/// The default policy with `alice` bound to `role` in namespace `bob`.
fn bound_in_bob(role: &str) -> Authorizer {
    let policy = bootstrap_policy();
    Authorizer::new(
        [],
        policy.cluster_roles,
        [role_binding(
            "bob",
            "ClusterRole",
            role,
            vec![subject("User", "alice", None)],
        )],
        policy.cluster_role_bindings,
    )
}

#[test]
fn rbac_default_view_cannot_read_secrets() {
    let authz = bound_in_bob("view");
    let at = |verb: &str, resource: &str| {
        Attributes::resource(alice(), verb, "", resource).in_namespace("bob")
    };
    assert!(can(&authz, &at("list", "pods")));
    assert!(can(&authz, &at("get", "pods/log").named("p")));
    // `kubectl top pods`, as metrics-server's aggregated reader grants it.
    let top = Attributes::resource(alice(), "list", "metrics.k8s.io", "pods").in_namespace("bob");
    assert!(can(&authz, &top));
    assert!(can(&authz, &at("watch", "configmaps")));
    assert!(!can(&authz, &at("get", "secrets").named("s")));
    assert!(!can(&authz, &at("list", "secrets")));
    assert!(!can(&authz, &at("create", "pods")));
    assert!(!can(&authz, &at("list", "pods").in_namespace("carol")));
}

#[test]
fn rbac_default_edit_can_create_pods_but_not_grant() {
    let authz = bound_in_bob("edit");
    let at = |verb: &str, group: &str, resource: &str| {
        Attributes::resource(alice(), verb, group, resource).in_namespace("bob")
    };
    assert!(can(&authz, &at("create", "", "pods")));
    assert!(can(&authz, &at("create", "", "pods/exec").named("p")));
    assert!(can(&authz, &at("get", "", "secrets").named("s")));
    assert!(can(&authz, &at("update", "apps", "deployments").named("d")));
    // view's rules come with edit.
    assert!(can(&authz, &at("get", "", "pods/log").named("p")));
    assert!(!can(
        &authz,
        &at("create", "rbac.authorization.k8s.io", "rolebindings")
    ));
}

#[test]
fn rbac_default_admin_can_create_rolebindings() {
    let authz = bound_in_bob("admin");
    let at = |verb: &str, group: &str, resource: &str| {
        Attributes::resource(alice(), verb, group, resource).in_namespace("bob")
    };
    assert!(can(
        &authz,
        &at("create", "rbac.authorization.k8s.io", "rolebindings")
    ));
    assert!(can(
        &authz,
        &at("delete", "rbac.authorization.k8s.io", "roles").named("r")
    ));
    assert!(can(&authz, &at("create", "", "pods")));
    assert!(can(&authz, &at("list", "", "configmaps")));
    assert!(!can(
        &authz,
        &at("create", "rbac.authorization.k8s.io", "rolebindings").in_namespace("carol")
    ));
    assert!(!can(
        &authz,
        &Attributes::resource(alice(), "list", "", "nodes")
    ));
}

#[test]
fn rbac_forbidden_message_texts() {
    let user = UserInfo::new("alice", Vec::<String>::new());
    let namespaced =
        Attributes::resource(user.clone(), "list", "vdi.dev", "vdisessions").in_namespace("bob");
    let expected = r#"User "alice" cannot list resource "vdisessions" in API group "vdi.dev" in the namespace "bob""#;
    assert_eq!(forbidden_message(&namespaced), expected);
    assert_eq!(
        Authorizer::default().authorize(&namespaced),
        Decision::Deny {
            reason: expected.to_owned()
        }
    );
    assert_eq!(
        status_message(&namespaced, expected),
        format!("vdisessions.vdi.dev is forbidden: {expected}")
    );

    let cluster = Attributes::resource(user.clone(), "get", "", "nodes").named("n1");
    assert_eq!(
        forbidden_message(&cluster),
        r#"User "alice" cannot get resource "nodes" in API group "" at the cluster scope"#
    );
    assert_eq!(
        status_message(&cluster, "r"),
        r#"nodes "n1" is forbidden: r"#
    );

    let log = Attributes::resource(user.clone(), "create", "", "pods/log")
        .in_namespace("bob")
        .named("p");
    assert_eq!(
        forbidden_message(&log),
        r#"User "alice" cannot create resource "pods/log" in API group "" in the namespace "bob""#
    );
    assert_eq!(status_message(&log, "r"), r#"pods "p" is forbidden: r"#);

    let path = Attributes::non_resource(user, "get", "/metrics");
    assert_eq!(
        forbidden_message(&path),
        r#"User "alice" cannot get path "/metrics""#
    );
    assert_eq!(status_message(&path, "r"), "forbidden: r");
}

#[test]
fn rbac_rules_review_lists_namespace_and_cluster_rules() {
    let authz = bound_in_bob("view");
    let bob = authz.rules_for(&alice(), "bob");
    assert!(!bob.incomplete);
    let covers = |status: &SubjectRulesReviewStatus, res: &str| {
        status
            .resource_rules
            .iter()
            .any(|r| r.resources.iter().flatten().any(|x| x == res))
    };
    assert!(covers(&bob, "pods"));
    assert!(covers(&bob, "selfsubjectrulesreviews"));
    assert!(
        bob.non_resource_rules.iter().any(|r| r
            .non_resource_urls
            .iter()
            .flatten()
            .any(|u| u == "/apis/*"))
    );
    let carol = authz.rules_for(&alice(), "carol");
    assert!(!covers(&carol, "pods"));
    assert!(covers(&carol, "selfsubjectrulesreviews"));
    assert!(!covers(&authz.rules_for(&alice(), ""), "pods"));
}

impl Attributes {
    /// The same request with another verb.
    fn clone_with_verb(&self, verb: &str) -> Self {
        Self {
            verb: verb.to_owned(),
            ..self.clone()
        }
    }
}
