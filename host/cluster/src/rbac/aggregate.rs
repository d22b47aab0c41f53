//! ClusterRole aggregation: a ClusterRole with an `aggregationRule` holds the union of the rules
//! of the ClusterRoles its selectors match, as kube-controller-manager's
//! `clusterrole-aggregation` controller maintains it.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

/// Whether `labels` satisfy `selector`: every `matchLabels` pair and every `matchExpressions`
/// requirement (`In`, `NotIn`, `Exists`, `DoesNotExist`). An empty selector matches everything;
/// an unknown operator, or `In`/`NotIn` without values, matches nothing (kube-apiserver rejects
/// such a selector).
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let mut pairs = selector.match_labels.iter().flatten();
    let mut exprs = selector.match_expressions.iter().flatten();
    pairs.all(|(k, v)| labels.get(k) == Some(v)) && exprs.all(|e| requirement_matches(e, labels))
}

fn requirement_matches(req: &LabelSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let values = req.values.as_deref().unwrap_or_default();
    let value = labels.get(&req.key);
    match req.operator.as_str() {
        "In" => !values.is_empty() && value.is_some_and(|v| values.contains(v)),
        "NotIn" => !values.is_empty() && value.is_none_or(|v| !values.contains(v)),
        "Exists" => values.is_empty() && value.is_some(),
        "DoesNotExist" => values.is_empty() && value.is_none(),
        _ => false,
    }
}

/// Fills the rules of every ClusterRole that has an `aggregationRule` with the rules of the
/// ClusterRoles (itself excepted) its selectors match, in selector order then name order, each
/// distinct rule once. Aggregated roles may feed one another (`view` into `edit` into `admin`),
/// so this repeats until nothing changes, at most once per role.
pub fn aggregate(roles: &mut [ClusterRole]) {
    for _ in 0..=roles.len() {
        let snapshot: Vec<ClusterRole> = roles.to_vec();
        let mut changed = false;
        for role in roles.iter_mut() {
            let Some(rules) = aggregated_rules(role, &snapshot) else {
                continue;
            };
            if role.rules.as_ref() != Some(&rules) {
                role.rules = Some(rules);
                changed = true;
            }
        }
        if !changed {
            return;
        }
    }
}

/// The union `role` aggregates from `all`, or `None` when it has no aggregation rule.
fn aggregated_rules(role: &ClusterRole, all: &[ClusterRole]) -> Option<Vec<PolicyRule>> {
    let selectors = role
        .aggregation_rule
        .as_ref()?
        .cluster_role_selectors
        .as_ref();
    let mut sorted: Vec<&ClusterRole> = all.iter().collect();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut rules: Vec<PolicyRule> = Vec::new();
    for selector in selectors.into_iter().flatten() {
        for other in &sorted {
            if other.metadata.name == role.metadata.name {
                continue;
            }
            let no_labels = BTreeMap::new();
            let labels = other.metadata.labels.as_ref().unwrap_or(&no_labels);
            if !selector_matches(selector, labels) {
                continue;
            }
            for rule in other.rules.iter().flatten() {
                if !rules.contains(rule) {
                    rules.push(rule.clone());
                }
            }
        }
    }
    Some(rules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::rbac::v1::AggregationRule;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.to_owned(),
            operator: op.to_owned(),
            values: (!values.is_empty()).then(|| values.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    fn role(name: &str, l: &[(&str, &str)], verb: &str) -> ClusterRole {
        ClusterRole {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some(labels(l)),
                ..ObjectMeta::default()
            },
            rules: Some(vec![PolicyRule {
                verbs: vec![verb.to_owned()],
                api_groups: Some(vec![String::new()]),
                resources: Some(vec!["pods".to_owned()]),
                ..PolicyRule::default()
            }]),
            aggregation_rule: None,
        }
    }

    fn aggregating(name: &str, l: &[(&str, &str)], selectors: Vec<LabelSelector>) -> ClusterRole {
        ClusterRole {
            rules: None,
            aggregation_rule: Some(AggregationRule {
                cluster_role_selectors: Some(selectors),
            }),
            ..role(name, l, "unused")
        }
    }

    fn verbs(role: &ClusterRole) -> Vec<String> {
        role.rules
            .iter()
            .flatten()
            .flat_map(|r| r.verbs.clone())
            .collect()
    }

    #[test]
    fn rbac_selector_match_labels_and_expressions() {
        let l = labels(&[("tier", "web"), ("env", "prod")]);
        let sel = |pairs: &[(&str, &str)], exprs: Vec<LabelSelectorRequirement>| LabelSelector {
            match_labels: (!pairs.is_empty()).then(|| labels(pairs)),
            match_expressions: (!exprs.is_empty()).then_some(exprs),
        };
        assert!(selector_matches(&sel(&[], vec![]), &l));
        assert!(selector_matches(&sel(&[("tier", "web")], vec![]), &l));
        assert!(!selector_matches(&sel(&[("tier", "db")], vec![]), &l));
        assert!(selector_matches(
            &sel(&[], vec![expr("env", "In", &["prod", "qa"])]),
            &l
        ));
        assert!(!selector_matches(
            &sel(&[], vec![expr("env", "In", &["qa"])]),
            &l
        ));
        assert!(selector_matches(
            &sel(&[], vec![expr("env", "NotIn", &["qa"])]),
            &l
        ));
        assert!(selector_matches(
            &sel(&[], vec![expr("zone", "NotIn", &["a"])]),
            &l
        ));
        assert!(!selector_matches(
            &sel(&[], vec![expr("env", "NotIn", &["prod"])]),
            &l
        ));
        assert!(selector_matches(
            &sel(&[], vec![expr("env", "Exists", &[])]),
            &l
        ));
        assert!(!selector_matches(
            &sel(&[], vec![expr("zone", "Exists", &[])]),
            &l
        ));
        assert!(selector_matches(
            &sel(&[], vec![expr("zone", "DoesNotExist", &[])]),
            &l
        ));
        assert!(!selector_matches(
            &sel(&[], vec![expr("env", "DoesNotExist", &[])]),
            &l
        ));
        assert!(!selector_matches(
            &sel(&[], vec![expr("env", "Gt", &["1"])]),
            &l
        ));
        assert!(!selector_matches(
            &sel(&[], vec![expr("env", "In", &[])]),
            &l
        ));
        assert!(!selector_matches(
            &sel(&[("tier", "web")], vec![expr("env", "In", &["qa"])]),
            &l
        ));
    }

    #[test]
    fn rbac_aggregate_match_labels_unions_rules_once() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("agg", "true")])),
            match_expressions: None,
        };
        let mut roles = vec![
            aggregating("combined", &[], vec![sel.clone(), sel]),
            role("b-list", &[("agg", "true")], "list"),
            role("a-get", &[("agg", "true")], "get"),
            role("a-get-again", &[("agg", "true")], "get"),
            role("other", &[("agg", "false")], "delete"),
        ];
        aggregate(&mut roles);
        let combined = roles.first().expect("the aggregated role");
        assert_eq!(verbs(combined), ["get", "list"]);
    }

    #[test]
    fn rbac_aggregate_match_expressions_and_chains() {
        let exprs = |e: Vec<LabelSelectorRequirement>| LabelSelector {
            match_labels: None,
            match_expressions: Some(e),
        };
        let mut roles = vec![
            // `top` aggregates `middle`, which aggregates the leaves: the chain converges.
            aggregating(
                "top",
                &[],
                vec![exprs(vec![expr("level", "In", &["middle"])])],
            ),
            aggregating(
                "middle",
                &[("level", "middle")],
                vec![exprs(vec![
                    expr("leaf", "Exists", &[]),
                    expr("deprecated", "DoesNotExist", &[]),
                ])],
            ),
            role("watch", &[("leaf", "x")], "watch"),
            role("old", &[("leaf", "y"), ("deprecated", "true")], "delete"),
        ];
        aggregate(&mut roles);
        let names: Vec<Vec<String>> = roles.iter().map(verbs).collect();
        assert_eq!(
            names.first().map(Vec::as_slice),
            Some(["watch".to_owned()].as_slice())
        );
        assert_eq!(
            names.get(1).map(Vec::as_slice),
            Some(["watch".to_owned()].as_slice())
        );
    }

    #[test]
    fn rbac_aggregate_cycles_terminate() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("ring", "true")])),
            match_expressions: None,
        };
        let mut roles = vec![
            aggregating("a", &[("ring", "true")], vec![sel.clone()]),
            aggregating("b", &[("ring", "true")], vec![sel]),
            role("c", &[("ring", "true")], "get"),
        ];
        aggregate(&mut roles);
        assert!(roles.iter().all(|r| verbs(r) == ["get"]));
    }
}
