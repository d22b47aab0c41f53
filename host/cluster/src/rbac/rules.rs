//! Whether one PolicyRule covers a request, as kube-apiserver's `RuleAllows` decides it.

use k8s_openapi::api::rbac::v1::PolicyRule;

use super::attributes::{Attributes, ResourceAttributes, Target, combined_resource};

/// The wildcard for verbs, API groups, resources and non-resource URLs.
pub const ALL: &str = "*";

/// Whether `rule` allows the request `attrs` (the user is not looked at: the bindings did that).
pub fn rule_allows(attrs: &Attributes, rule: &PolicyRule) -> bool {
    if !verb_matches(rule, &attrs.verb) {
        return false;
    }
    match &attrs.target {
        Target::Resource(r) => resource_rule_matches(rule, r),
        Target::NonResource { path } => non_resource_url_matches(rule, path),
    }
}

fn resource_rule_matches(rule: &PolicyRule, r: &ResourceAttributes) -> bool {
    api_group_matches(rule, &r.api_group)
        && resource_matches(rule, &combined_resource(r), &r.subresource)
        && resource_name_matches(rule, &r.name)
}

fn list(v: &Option<Vec<String>>) -> &[String] {
    v.as_deref().unwrap_or_default()
}

/// `*` or the verb itself.
pub fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    rule.verbs.iter().any(|v| v == ALL || v == verb)
}

/// `*` or the group itself (`""` is the core group).
pub fn api_group_matches(rule: &PolicyRule, group: &str) -> bool {
    list(&rule.api_groups)
        .iter()
        .any(|g| g == ALL || g == group)
}

/// `*` (everything, subresources included), the exact `resource[/subresource]`, or
/// `*/subresource` for a subresource of any resource. kube-apiserver has no `resource/*`
/// form: such an entry matches only a subresource literally named `*`.
pub fn resource_matches(rule: &PolicyRule, combined: &str, subresource: &str) -> bool {
    list(&rule.resources).iter().any(|res| {
        res == ALL
            || res == combined
            || (!subresource.is_empty() && res.strip_prefix("*/") == Some(subresource))
    })
}

/// No resourceNames means every name; otherwise the request's name must be listed, so a rule
/// with resourceNames never matches a request without a name (list, create, deletecollection).
pub fn resource_name_matches(rule: &PolicyRule, name: &str) -> bool {
    let names = list(&rule.resource_names);
    names.is_empty() || names.iter().any(|n| n == name)
}

/// `*`, the exact path, or a prefix ending in `*` (`/apis/*` covers `/apis/vdi.dev/v1`).
pub fn non_resource_url_matches(rule: &PolicyRule, path: &str) -> bool {
    list(&rule.non_resource_urls).iter().any(|url| {
        url == ALL
            || url == path
            || url
                .strip_suffix('*')
                .is_some_and(|prefix| path.starts_with(prefix))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::attributes::UserInfo;

    fn rule(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> PolicyRule {
        let owned = |v: &[&str]| Some(v.iter().map(|s| (*s).to_owned()).collect());
        PolicyRule {
            verbs: v(verbs),
            api_groups: owned(groups),
            resources: owned(resources),
            resource_names: if names.is_empty() { None } else { owned(names) },
            non_resource_urls: None,
        }
    }

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| (*s).to_owned()).collect()
    }

    fn urls(verbs: &[&str], urls: &[&str]) -> PolicyRule {
        PolicyRule {
            verbs: v(verbs),
            non_resource_urls: Some(v(urls)),
            ..PolicyRule::default()
        }
    }

    fn req(verb: &str, group: &str, resource: &str) -> Attributes {
        Attributes::resource(UserInfo::new("alice", ["g"]), verb, group, resource)
            .in_namespace("ns")
    }

    #[test]
    fn rbac_rule_verbs_exact_and_wildcard() {
        let r = rule(&["get", "list"], &[""], &["pods"], &[]);
        assert!(rule_allows(&req("get", "", "pods").named("p"), &r));
        assert!(rule_allows(&req("list", "", "pods"), &r));
        assert!(!rule_allows(&req("delete", "", "pods").named("p"), &r));
        let all = rule(&["*"], &[""], &["pods"], &[]);
        assert!(rule_allows(&req("impersonate", "", "pods"), &all));
    }

    #[test]
    fn rbac_rule_api_groups_core_and_wildcard() {
        let core = rule(&["get"], &[""], &["pods"], &[]);
        assert!(!rule_allows(&req("get", "apps", "pods"), &core));
        let any = rule(&["get"], &["*"], &["vdisessions"], &[]);
        assert!(rule_allows(&req("get", "vdi.dev", "vdisessions"), &any));
        assert!(rule_allows(&req("get", "", "vdisessions"), &any));
        let none = PolicyRule {
            api_groups: None,
            ..rule(&["get"], &[], &["pods"], &[])
        };
        assert!(!rule_allows(&req("get", "", "pods"), &none));
    }

    #[test]
    fn rbac_rule_resources_and_subresources() {
        let pods = rule(&["get"], &[""], &["pods"], &[]);
        assert!(rule_allows(&req("get", "", "pods"), &pods));
        // The resource does not grant its subresources.
        assert!(!rule_allows(&req("get", "", "pods/log"), &pods));

        let log = rule(&["get"], &[""], &["pods/log"], &[]);
        assert!(rule_allows(&req("get", "", "pods/log"), &log));
        assert!(!rule_allows(&req("get", "", "pods"), &log));
        assert!(!rule_allows(&req("get", "", "pods/exec"), &log));

        let any_status = rule(&["update"], &["vdi.dev"], &["*/status"], &[]);
        assert!(rule_allows(
            &req("update", "vdi.dev", "vdisessions/status"),
            &any_status
        ));
        assert!(rule_allows(
            &req("update", "vdi.dev", "pools/status"),
            &any_status
        ));
        assert!(!rule_allows(
            &req("update", "vdi.dev", "vdisessions"),
            &any_status
        ));
        assert!(!rule_allows(
            &req("update", "vdi.dev", "vdisessions/scale"),
            &any_status
        ));

        // `*` covers resources and their subresources.
        let all = rule(&["get"], &[""], &["*"], &[]);
        assert!(rule_allows(&req("get", "", "pods"), &all));
        assert!(rule_allows(&req("get", "", "pods/log"), &all));

        // As in kube-apiserver, `pods/*` is not a wildcard.
        let not_wild = rule(&["get"], &[""], &["pods/*"], &[]);
        assert!(!rule_allows(&req("get", "", "pods/log"), &not_wild));
    }

    #[test]
    fn rbac_rule_resource_names_get_vs_list() {
        let r = rule(
            &["get", "list", "create", "deletecollection"],
            &[""],
            &["configmaps"],
            &["cfg"],
        );
        assert!(rule_allows(&req("get", "", "configmaps").named("cfg"), &r));
        assert!(!rule_allows(
            &req("get", "", "configmaps").named("other"),
            &r
        ));
        assert!(!rule_allows(&req("list", "", "configmaps"), &r));
        assert!(!rule_allows(&req("create", "", "configmaps"), &r));
        assert!(!rule_allows(&req("deletecollection", "", "configmaps"), &r));
    }

    #[test]
    fn rbac_rule_non_resource_urls() {
        let user = UserInfo::new("alice", ["g"]);
        let at = |verb: &str, path: &str| Attributes::non_resource(user.clone(), verb, path);
        let r = urls(&["get"], &["/healthz", "/apis/*"]);
        assert!(rule_allows(&at("get", "/healthz"), &r));
        assert!(!rule_allows(&at("get", "/healthz/etcd"), &r));
        assert!(rule_allows(&at("get", "/apis/vdi.dev"), &r));
        assert!(rule_allows(&at("get", "/apis/"), &r));
        assert!(!rule_allows(&at("get", "/apis"), &r));
        assert!(!rule_allows(&at("post", "/healthz"), &r));
        assert!(rule_allows(&at("get", "/anything"), &urls(&["*"], &["*"])));
        // A non-resource rule says nothing about resources, and the reverse.
        assert!(!rule_allows(&req("get", "", "pods"), &r));
        assert!(!rule_allows(
            &at("get", "/api"),
            &rule(&["*"], &["*"], &["*"], &[])
        ));
    }
}
