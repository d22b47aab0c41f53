//! Tests of the cache, seeding, impersonation and the reviews against a real store.

use axum::http::{HeaderMap, HeaderValue};
use serde_json::json;

use super::*;
use crate::rbac::MASTERS_GROUP;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    seed_bootstrap_policy(&store).expect("seed");
    (dir, store)
}

fn rbac_type(store: &Store, plural: &str) -> ResourceTypeRef {
    store.registry.find(RBAC, "v1", plural).expect("served")
}

type ResourceTypeRef = crate::resources::ResourceType;

fn alice() -> UserInfo {
    UserInfo::new("alice", ["staff", AUTHENTICATED_GROUP])
}

fn bind(store: &Store, ns: &str, role: &str, subject: serde_json::Value) {
    let rt = rbac_type(store, "rolebindings");
    store
        .create(
            &rt,
            ns,
            json!({"metadata": {"name": format!("{role}-{}", subject["name"].as_str().unwrap_or("x")), "namespace": ns},
                   "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
                   "subjects": [subject]}),
        )
        .expect("bind");
}

#[test]
fn the_authorizer_follows_rbac_writes_and_is_reused_between_them() {
    let (_dir, store) = store();
    let cache = RbacCache::default();
    let list_pods = Attributes::resource(alice(), "list", "", "pods").in_namespace("default");
    assert!(matches!(
        cache.check(&store, &list_pods),
        Err(ApiError::Forbidden(m)) if m == "pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
    ));
    let first = cache.authorizer(&store);
    assert!(
        Arc::ptr_eq(&first, &cache.authorizer(&store)),
        "no RBAC write, same authorizer"
    );
    bind(
        &store,
        "default",
        "view",
        json!({"kind": "User", "name": "alice"}),
    );
    cache
        .check(&store, &list_pods)
        .expect("view granted by the new binding");
    assert!(!Arc::ptr_eq(&first, &cache.authorizer(&store)));
    // Writes to other kinds do not rebuild it.
    let after = cache.authorizer(&store);
    let cm = store
        .registry
        .find("", "v1", "configmaps")
        .expect("configmaps");
    store
        .create(&cm, "default", json!({"metadata": {"name": "c"}}))
        .expect("create");
    assert!(Arc::ptr_eq(&after, &cache.authorizer(&store)));
}

#[test]
fn anonymous_denials_are_401_and_the_public_paths_are_open() {
    let (_dir, store) = store();
    let cache = RbacCache::default();
    let anonymous = UserInfo::new(ANONYMOUS_USER, [UNAUTHENTICATED_GROUP]);
    cache
        .check(
            &store,
            &Attributes::non_resource(anonymous.clone(), "get", "/healthz"),
        )
        .expect("public-info-viewer");
    assert!(matches!(
        cache.check(&store, &Attributes::resource(anonymous, "list", "", "pods")),
        Err(ApiError::Unauthorized)
    ));
}

#[test]
fn seeding_twice_keeps_what_an_admin_changed() {
    let (_dir, store) = store();
    let rt = rbac_type(&store, "clusterroles");
    let mut view = store.get(&rt, "", "view").expect("seeded");
    view["metadata"]["labels"]["changed"] = json!("by-admin");
    store
        .update(&rt, "", "view", view, crate::store::Part::Main)
        .expect("update");
    seed_bootstrap_policy(&store).expect("seed again");
    let view = store.get(&rt, "", "view").expect("view");
    assert_eq!(view["metadata"]["labels"]["changed"], "by-admin");
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, HeaderValue::from_str(v).expect("header"));
    }
    h
}

#[test]
fn impersonation_needs_the_impersonate_verb_on_each_part() {
    let (_dir, store) = store();
    let cache = RbacCache::default();
    let admin = UserInfo::new("root", [MASTERS_GROUP]);
    let as_bob = headers(&[("impersonate-user", "bob"), ("impersonate-group", "staff")]);
    let bob = impersonate(&cache, &store, admin, &as_bob).expect("masters may impersonate");
    assert_eq!(bob.name, "bob");
    assert_eq!(bob.groups, ["staff", AUTHENTICATED_GROUP]);

    let err = impersonate(&cache, &store, alice(), &as_bob).expect_err("alice may not");
    assert!(
        matches!(&err, ApiError::Forbidden(m) if m == "users \"bob\" is forbidden: User \"alice\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"),
        "{err:?}"
    );

    // A role that grants impersonating bob but no group.
    let cr = rbac_type(&store, "clusterroles");
    store
        .create(&cr, "", json!({"metadata": {"name": "as-bob"}, "rules": [{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": ["bob"]}]}))
        .expect("role");
    let crb = rbac_type(&store, "clusterrolebindings");
    store
        .create(&crb, "", json!({"metadata": {"name": "alice-as-bob"}, "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "as-bob"}, "subjects": [{"kind": "User", "name": "alice"}]}))
        .expect("binding");
    let bob = impersonate(
        &cache,
        &store,
        alice(),
        &headers(&[("impersonate-user", "bob")]),
    )
    .expect("bob alone is granted");
    assert_eq!(bob.groups, [AUTHENTICATED_GROUP]);
    let err = impersonate(&cache, &store, alice(), &as_bob).expect_err("the group is not");
    assert!(
        matches!(&err, ApiError::Forbidden(m) if m.starts_with("groups \"staff\" is forbidden")),
        "{err:?}"
    );
}

#[test]
fn impersonating_a_service_account_checks_serviceaccounts_in_its_namespace() {
    let (_dir, store) = store();
    let cache = RbacCache::default();
    let sa = headers(&[("impersonate-user", "system:serviceaccount:default:builder")]);
    let err = impersonate(&cache, &store, alice(), &sa).expect_err("not granted");
    assert!(
        matches!(&err, ApiError::Forbidden(m) if m.contains("cannot impersonate resource \"serviceaccounts\" in API group \"\" in the namespace \"default\"")),
        "{err:?}"
    );
    let root = UserInfo::new("root", [MASTERS_GROUP]);
    let user = impersonate(&cache, &store, root, &sa).expect("masters");
    assert_eq!(user, UserInfo::service_account("default", "builder"));
}

#[test]
fn groups_without_a_user_are_a_bad_request() {
    let (_dir, store) = store();
    let root = UserInfo::new("root", [MASTERS_GROUP]);
    let err = impersonate(
        &RbacCache::default(),
        &store,
        root,
        &headers(&[("impersonate-group", "staff")]),
    )
    .expect_err("refused");
    assert!(matches!(err, ApiError::BadRequest(_)), "{err:?}");
}

#[test]
fn reviews_answer_for_the_asker_and_for_a_named_subject() {
    let (_dir, store) = store();
    let cache = RbacCache::default();
    let nt = store
        .registry
        .find("", "v1", "namespaces")
        .expect("namespaces");
    store
        .create(&nt, "", json!({"metadata": {"name": "team"}}))
        .expect("namespace");
    assert!(
        store
            .get(
                &store
                    .registry
                    .find("", "v1", "serviceaccounts")
                    .expect("sa"),
                "team",
                "default"
            )
            .is_ok(),
        "a new namespace gets its default service account"
    );
    bind(
        &store,
        "team",
        "edit",
        json!({"kind": "Group", "name": "staff"}),
    );
    let ssar = store
        .registry
        .find("authorization.k8s.io", "v1", "selfsubjectaccessreviews")
        .expect("served");
    let ask = |user: &UserInfo, ns: &str| {
        let body = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"namespace": ns, "verb": "create", "resource": "configmaps"}}});
        review(&cache, &store, &ssar, "", user, body.to_string().as_bytes()).expect("answered")
    };
    assert_eq!(ask(&alice(), "team")["status"]["allowed"], true);
    let no = ask(&alice(), "other");
    assert_eq!(no["status"]["allowed"], false);
    // As kube-apiserver's RBAC: no reason, so kubectl prints a bare "no".
    assert_eq!(no["status"]["reason"], serde_json::Value::Null, "{no}");

    let sar = store
        .registry
        .find("authorization.k8s.io", "v1", "subjectaccessreviews")
        .expect("served");
    let body = json!({"spec": {"user": "carol", "groups": ["contractors"], "resourceAttributes": {"namespace": "team", "verb": "get", "resource": "configmaps"}}});
    let carol = review(
        &cache,
        &store,
        &sar,
        "",
        &alice(),
        body.to_string().as_bytes(),
    )
    .expect("answered");
    assert_eq!(carol["status"]["allowed"], false);
    let hostile = json!({"spec": {"user": 7, "resourceAttributes": []}});
    assert!(matches!(
        review(
            &cache,
            &store,
            &sar,
            "",
            &alice(),
            hostile.to_string().as_bytes()
        ),
        Err(ApiError::BadRequest(_))
    ));
    let neither = json!({"spec": {"user": "carol"}});
    assert!(matches!(
        review(&cache, &store, &sar, "", &alice(), neither.to_string().as_bytes()),
        Err(ApiError::Invalid { field, .. }) if field == "spec.resourceAttributes"
    ));

    let rules = store
        .registry
        .find("authorization.k8s.io", "v1", "selfsubjectrulesreviews")
        .expect("served");
    let body = json!({"spec": {"namespace": "team"}});
    let list = review(
        &cache,
        &store,
        &rules,
        "",
        &alice(),
        body.to_string().as_bytes(),
    )
    .expect("answered");
    let granted = list["status"]["resourceRules"].as_array().expect("rules");
    assert!(granted.iter().any(|r| {
        r["resources"]
            .as_array()
            .is_some_and(|rs| rs.iter().any(|x| x == "configmaps"))
    }));
}

#[test]
fn nobody_grants_what_they_do_not_hold() {
    let (dir, store) = store();
    drop(store);
    let store = Arc::new(Store::open(dir.path()).expect("open"));
    let cache = Arc::new(RbacCache::default());
    store.add_admission_hook(Arc::new(EscalationCheck::new(&store, cache.clone())));
    let nt = store
        .registry
        .find("", "v1", "namespaces")
        .expect("namespaces");
    store
        .create(&nt, "", json!({"metadata": {"name": "team"}}))
        .expect("namespace");
    // alice administers `team` (the `admin` role there: she may write RoleBindings).
    bind(
        &store,
        "team",
        "admin",
        json!({"kind": "User", "name": "alice"}),
    );
    let alice = crate::admission::Requester {
        user: "alice".into(),
        groups: vec!["staff".into(), AUTHENTICATED_GROUP.into()],
    };
    let rb = rbac_type(&store, "rolebindings");
    let binding = |role: &str| {
        json!({"metadata": {"name": format!("bob-{role}"), "namespace": "team"},
               "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
               "subjects": [{"kind": "User", "name": "bob"}]})
    };
    store
        .create_as(&rb, "team", binding("view"), &alice)
        .expect("alice holds everything `view` grants in team");
    let err = store
        .create_as(&rb, "team", binding("cluster-admin"), &alice)
        .expect_err("but not cluster-admin's `*`");
    assert!(
        matches!(&err, ApiError::Forbidden(m) if m.contains("is attempting to grant RBAC permissions not currently held") && m.contains("Verbs:[\"*\"]")),
        "{err:?}"
    );
    let cr = rbac_type(&store, "clusterroles");
    let err = store
        .create_as(&cr, "", json!({"metadata": {"name": "mine"}, "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}), &alice)
        .expect_err("no cluster-wide secrets for alice");
    assert!(matches!(err, ApiError::Forbidden(_)), "{err:?}");
    // With `bind` on the role, holding its rules is not needed.
    let cr_rb = rbac_type(&store, "clusterroles");
    store
        .create(&cr_rb, "", json!({"metadata": {"name": "binder"}, "rules": [{"apiGroups": [RBAC], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": ["cluster-admin"]}]}))
        .expect("role");
    bind(
        &store,
        "team",
        "binder",
        json!({"kind": "User", "name": "alice"}),
    );
    store
        .create_as(&rb, "team", binding("cluster-admin"), &alice)
        .expect("bind is granted");
}

#[test]
fn aggregated_cluster_roles_are_rewritten_with_what_they_aggregate() {
    let (_dir, store) = store();
    let cr = rbac_type(&store, "clusterroles");
    assert_eq!(
        aggregation::reconcile(&store),
        0,
        "the seeded roles are up to date"
    );
    store
        .create(&cr, "", json!({"metadata": {"name": "sessions-view", "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
            "rules": [{"apiGroups": ["vdi.dev"], "resources": ["vdisessions"], "verbs": ["get", "list", "watch"]}]}))
        .expect("create");
    // view, edit and admin all take the new rule.
    assert_eq!(aggregation::reconcile(&store), 3);
    for role in ["view", "edit", "admin"] {
        let stored = store.get(&cr, "", role).expect("role");
        let rules = stored["rules"].as_array().expect("rules");
        assert!(
            rules
                .iter()
                .any(|r| r["resources"] == json!(["vdisessions"])),
            "{role}: {rules:?}"
        );
    }
    assert_eq!(aggregation::reconcile(&store), 0, "converged");
}

#[test]
fn impersonating_every_user_and_group_does_not_reach_the_clusters_own_identities() {
    let (_dir, store) = store();
    let cache = RbacCache::default();
    let cr = rbac_type(&store, "clusterroles");
    store
        .create(&cr, "", json!({"metadata": {"name": "act-for-users"}, "rules": [{"apiGroups": [""], "resources": ["users", "groups"], "verbs": ["impersonate"]}]}))
        .expect("role");
    let crb = rbac_type(&store, "clusterrolebindings");
    store
        .create(&crb, "", json!({"metadata": {"name": "api-acts"}, "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "act-for-users"}, "subjects": [{"kind": "User", "name": "api"}]}))
        .expect("binding");
    let api = UserInfo::new("api", [AUTHENTICATED_GROUP]);
    let alice_staff = headers(&[
        ("impersonate-user", "oidc:alice"),
        ("impersonate-group", "oidc:staff"),
    ]);
    impersonate(&cache, &store, api.clone(), &alice_staff).expect("an OIDC user");
    for reserved in [
        headers(&[("impersonate-user", "system:admin")]),
        headers(&[
            ("impersonate-user", "mallory"),
            ("impersonate-group", "system:masters"),
        ]),
        headers(&[("impersonate-user", "system:kube-controller-manager")]),
    ] {
        let err = impersonate(&cache, &store, api.clone(), &reserved).expect_err("reserved");
        assert!(
            matches!(&err, ApiError::Forbidden(m) if m.contains("reserved identity")),
            "{err:?}"
        );
    }
    // An empty Impersonate-User is no impersonation at all.
    let me = impersonate(
        &cache,
        &store,
        api.clone(),
        &headers(&[("impersonate-user", "")]),
    )
    .expect("empty");
    assert_eq!(me, api);
}

#[test]
fn a_binding_to_a_role_that_does_not_exist_needs_bind() {
    let (dir, store) = store();
    drop(store);
    let store = Arc::new(Store::open(dir.path()).expect("open"));
    let cache = Arc::new(RbacCache::default());
    store.add_admission_hook(Arc::new(EscalationCheck::new(&store, cache.clone())));
    let nt = store
        .registry
        .find("", "v1", "namespaces")
        .expect("namespaces");
    store
        .create(&nt, "", json!({"metadata": {"name": "team"}}))
        .expect("namespace");
    bind(
        &store,
        "team",
        "admin",
        json!({"kind": "User", "name": "alice"}),
    );
    let alice = crate::admission::Requester {
        user: "alice".into(),
        groups: vec![AUTHENTICATED_GROUP.into()],
    };
    let rb = rbac_type(&store, "rolebindings");
    let early = json!({"metadata": {"name": "early", "namespace": "team"},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "not-yet"},
        "subjects": [{"kind": "User", "name": "alice"}]});
    let err = store
        .create_as(&rb, "team", early.clone(), &alice)
        .expect_err("refused");
    assert!(
        matches!(&err, ApiError::Forbidden(m) if m.contains("does not exist")),
        "{err:?}"
    );
    store
        .create(&rb, "team", early)
        .expect("system:masters may");
    // RBAC names stay addressable.
    let err = store
        .create(&rb, "team", json!({"metadata": {"name": "a b"}, "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "view"}, "subjects": []}))
        .expect_err("a space");
    assert!(matches!(err, ApiError::Invalid { .. }), "{err:?}");
}

#[test]
fn deleting_a_namespace_deletes_what_is_in_it_then_the_namespace() {
    let (_dir, store) = store();
    let nt = store
        .registry
        .find("", "v1", "namespaces")
        .expect("namespaces");
    let cm = store
        .registry
        .find("", "v1", "configmaps")
        .expect("configmaps");
    store
        .create(&nt, "", json!({"metadata": {"name": "gone"}}))
        .expect("namespace");
    bind(
        &store,
        "gone",
        "view",
        json!({"kind": "User", "name": "alice"}),
    );
    store
        .create(
            &cm,
            "gone",
            json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
        )
        .expect("held");
    store
        .create(&cm, "gone", json!({"metadata": {"name": "free"}}))
        .expect("free");
    store
        .delete(&nt, "", "gone", crate::store::Propagation::Background)
        .expect("delete");
    // Everything without a finalizer went; the held one waits, and so does the namespace.
    let sa = store
        .registry
        .find("", "v1", "serviceaccounts")
        .expect("sa");
    assert!(
        store.get(&sa, "gone", "default").is_err(),
        "the default SA went"
    );
    assert!(
        store
            .get(&rbac_type(&store, "rolebindings"), "gone", "view-alice")
            .is_err()
    );
    assert!(store.get(&cm, "gone", "free").is_err());
    let ns = store.get(&nt, "", "gone").expect("still terminating");
    assert_eq!(ns["status"]["phase"], "Terminating");
    let err = store
        .create(&cm, "gone", json!({"metadata": {"name": "late"}}))
        .expect_err("no new content");
    assert!(
        matches!(&err, ApiError::Forbidden(m) if m.contains("being terminated")),
        "{err:?}"
    );
    let mut held = store.get(&cm, "gone", "held").expect("held");
    held["metadata"]["finalizers"] = json!([]);
    store
        .update(&cm, "gone", "held", held, crate::store::Part::Main)
        .expect("release");
    assert!(store.get(&cm, "gone", "held").is_err());
    assert!(
        store.get(&nt, "", "gone").is_err(),
        "the namespace went last"
    );
    let err = store
        .delete(&nt, "", "default", crate::store::Propagation::Background)
        .expect_err("default stays");
    assert!(matches!(err, ApiError::Forbidden(_)), "{err:?}");
}

#[test]
fn an_impersonate_extra_header_that_is_not_text_is_a_bad_request() {
    let (_dir, store) = store();
    let root = UserInfo::new("root", [crate::rbac::MASTERS_GROUP]);
    let mut h = headers(&[("impersonate-user", "bob")]);
    h.append(
        "impersonate-extra-scopes",
        HeaderValue::from_bytes(b"\xff\xfe").expect("opaque bytes"),
    );
    let err = impersonate(&RbacCache::default(), &store, root, &h).expect_err("refused");
    assert!(
        matches!(&err, ApiError::BadRequest(m) if m.contains("impersonate-extra-scopes")),
        "{err:?}"
    );
}
