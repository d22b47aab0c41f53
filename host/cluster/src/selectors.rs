//! Label selectors (`a=b,c!=d,e in (x,y),!f,g`) and field selectors (`spec.nodeName=n`, on the
//! fields kube-apiserver supports per kind).

use serde_json::Value;

use crate::error::{ApiError, Result};
use crate::resources::ResourceType;
use crate::store::Store;

#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(Vec<Requirement>);

/// Splits on commas outside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

impl LabelSelector {
    /// Parses the `labelSelector` query parameter.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |r: &str| ApiError::BadRequest(format!("unable to parse requirement: {r:?}"));
        let mut reqs = Vec::new();
        for raw in split_top(s)
            .into_iter()
            .map(str::trim)
            .filter(|r| !r.is_empty())
        {
            let set = |rest: &str| -> Option<Vec<String>> {
                let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
                Some(
                    inner
                        .split(',')
                        .map(|v| v.trim().to_owned())
                        .filter(|v| !v.is_empty())
                        .collect(),
                )
            };
            let req = if let Some(key) = raw.strip_prefix('!') {
                Requirement::NotExists(key.trim().to_owned())
            } else if let Some((k, v)) = raw.split_once("!=") {
                Requirement::NotEq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = raw.split_once("==").or_else(|| raw.split_once('=')) {
                Requirement::Eq(k.trim().into(), v.trim().into())
            } else if let Some((k, rest)) = raw.split_once(" notin ") {
                Requirement::NotIn(k.trim().into(), set(rest).ok_or_else(|| bad(raw))?)
            } else if let Some((k, rest)) = raw.split_once(" in ") {
                Requirement::In(k.trim().into(), set(rest).ok_or_else(|| bad(raw))?)
            } else if raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
            {
                Requirement::Exists(raw.to_owned())
            } else {
                return Err(bad(raw));
            };
            reqs.push(req);
        }
        Ok(Self(reqs))
    }

    /// Whether `obj`'s labels satisfy every requirement.
    pub fn matches(&self, obj: &Value) -> bool {
        let labels = &obj["metadata"]["labels"];
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Eq(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEq(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        })
    }
}

/// How a field-selector label reads its value from a stored object.
#[derive(Debug, Clone, PartialEq)]
enum Field {
    /// A dotted path; a missing field reads as "".
    Path(String),
    /// A dotted path to a boolean; a missing field reads as "false".
    Flag(String),
    /// An Event's `source`: `source.component`, else the reporting component.
    EventSource,
}

impl Field {
    fn read(&self, obj: &Value) -> String {
        let at = |path: &str| path.split('.').try_fold(obj, |v, seg| v.get(seg));
        let text = |v: Option<&Value>| match v {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        match self {
            Self::Path(p) => text(at(p)),
            Self::Flag(p) => at(p).and_then(Value::as_bool).unwrap_or(false).to_string(),
            Self::EventSource => match text(at("source.component")) {
                s if s.is_empty() => text(at("reportingComponent")),
                s => s,
            },
        }
    }
}

/// One `label=value` or `label!=value` term.
#[derive(Debug, Clone, PartialEq)]
struct Term {
    label: String,
    field: Field,
    equal: bool,
    value: String,
}

/// A parsed field selector: `label=value`, `label==value` and `label!=value` terms, joined by
/// commas, on the labels kube-apiserver supports for the kind (see [`FieldSelector::for_type`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector(Vec<Term>);

/// The labels every kind supports.
const META: &[&str] = &["metadata.name", "metadata.namespace"];

/// Labels beyond `metadata.*` that kube-apiserver supports, by storage key; `true` marks a
/// boolean field (missing reads as `false`).
const KIND_FIELDS: &[(&str, &[(&str, bool)])] = &[
    (
        "pods",
        &[
            ("spec.nodeName", false),
            ("spec.restartPolicy", false),
            ("spec.schedulerName", false),
            ("spec.serviceAccountName", false),
            ("spec.hostNetwork", true),
            ("status.phase", false),
            ("status.podIP", false),
            ("status.nominatedNodeName", false),
        ],
    ),
    (
        "events",
        &[
            ("involvedObject.kind", false),
            ("involvedObject.namespace", false),
            ("involvedObject.name", false),
            ("involvedObject.uid", false),
            ("involvedObject.apiVersion", false),
            ("involvedObject.resourceVersion", false),
            ("involvedObject.fieldPath", false),
            ("reason", false),
            ("reportingComponent", false),
            ("type", false),
        ],
    ),
    ("secrets", &[("type", false)]),
    (
        "services",
        &[("spec.clusterIP", false), ("spec.type", false)],
    ),
];

/// The field `label` reads on a stored object of `rt`, if kube-apiserver supports it there.
/// `selectable` are a custom resource's `selectableFields` (as labels, without the leading dot).
fn field_for(rt: &ResourceType, label: &str, selectable: &[String]) -> Option<Field> {
    let path = || Some(Field::Path(label.to_owned()));
    if crate::events::is_view(rt) {
        // Evaluated on the stored core/v1 object, under its name there.
        return crate::events::FIELD_LABELS
            .iter()
            .find(|(l, _)| *l == label)
            .map(|(_, core)| Field::Path((*core).to_owned()));
    }
    match (rt.key().as_str(), label) {
        // Cluster-scoped kinds with their own conversion know no `metadata.namespace`.
        ("nodes", "metadata.name") => path(),
        ("nodes", "spec.unschedulable") => Some(Field::Flag(label.to_owned())),
        ("namespaces", "metadata.name" | "status.phase") => path(),
        ("nodes" | "namespaces", _) => None,
        ("events", "source") => Some(Field::EventSource),
        (_, l) if META.contains(&l) => path(),
        (key, l) => {
            let by_kind = KIND_FIELDS
                .iter()
                .find(|(k, _)| *k == key)
                .and_then(|(_, fields)| fields.iter().find(|(f, _)| *f == l));
            match by_kind {
                Some((_, true)) => Some(Field::Flag(label.to_owned())),
                Some((_, false)) => path(),
                None if selectable.iter().any(|s| s == l) => path(),
                None => None,
            }
        }
    }
}

/// Splits `s` at `sep` where it is not escaped by a backslash.
fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
    let (mut out, mut start, mut escaped) = (Vec::new(), 0, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            c if c == sep => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// Splits a term at its first unescaped operator: (label, whether `=`/`==`, raw value).
fn split_term(term: &str) -> Option<(&str, bool, &str)> {
    let mut escaped = false;
    for (i, c) in term.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        let rest = &term[i..];
        match c {
            '\\' => escaped = true,
            '!' if rest.starts_with("!=") => return Some((&term[..i], false, &rest[2..])),
            '=' if rest.starts_with("==") => return Some((&term[..i], true, &rest[2..])),
            '=' => return Some((&term[..i], true, &rest[1..])),
            _ => {}
        }
    }
    None
}

/// Undoes `\\`, `\,` and `\=` escapes in a value (kube's `fields.EscapeValue`).
fn unescape(raw: &str, term: &str) -> Result<String> {
    let bad = |why: &str| ApiError::BadRequest(format!("invalid field selector {term:?}: {why}"));
    let (mut out, mut chars) = (String::new(), raw.chars());
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                _ => return Err(bad("invalid escape sequence")),
            },
            '=' | ',' => return Err(bad("unescaped operator character in the value")),
            c => out.push(c),
        }
    }
    Ok(out)
}

impl FieldSelector {
    /// Parses the `fieldSelector` query parameter for objects of `rt`: a label kube-apiserver
    /// does not support for the kind is a 400 `field label not supported: <label>`, as it
    /// answers. `selectable` are a custom resource's `selectableFields` (see
    /// [`selectable_fields`]).
    pub fn for_type(rt: &ResourceType, s: &str, selectable: &[String]) -> Result<Self> {
        let mut terms = Vec::new();
        for raw in split_unescaped(s, ',')
            .into_iter()
            .map(str::trim)
            .filter(|r| !r.is_empty())
        {
            let (label, equal, value) = split_term(raw).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "invalid selector: '{raw}'; can't understand '{raw}'"
                ))
            })?;
            let label = label.trim();
            let field = field_for(rt, label, selectable).ok_or_else(|| {
                ApiError::BadRequest(format!("field label not supported: {label}"))
            })?;
            terms.push(Term {
                label: label.to_owned(),
                field,
                equal,
                value: unescape(value.trim(), raw)?,
            });
        }
        Ok(Self(terms))
    }

    /// Whether `obj` (a stored object of the type the selector was parsed for) satisfies every
    /// term.
    pub fn matches(&self, obj: &Value) -> bool {
        self.0
            .iter()
            .all(|t| (t.field.read(obj) == t.value) == t.equal)
    }

    /// The labels the selector tests, in order.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|t| t.label.as_str())
    }
}

/// A custom resource's `selectableFields` for its served version, as field-selector labels
/// (`.spec.color` → `spec.color`); empty for built-in kinds.
pub(crate) fn selectable_fields(store: &Store, rt: &ResourceType) -> Vec<String> {
    let Some(crds) = store
        .registry
        .find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    else {
        return Vec::new();
    };
    let Ok(crd) = store.get(&crds, "", &rt.key()) else {
        return Vec::new();
    };
    crd["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["name"].as_str() == Some(rt.version.as_str()))
        .flat_map(|v| {
            v["selectableFields"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|f| {
            f["jsonPath"]
                .as_str()
                .map(|p| p.trim_start_matches('.').to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors_follow_kubernetes_syntax() {
        let obj = json!({"metadata": {"labels": {"app": "vdi", "tier": "gpu"}}});
        for (sel, want) in [
            ("", true),
            ("app=vdi", true),
            ("app==vdi,tier=gpu", true),
            ("app!=vdi", false),
            ("tier in (gpu, cpu)", true),
            ("tier notin (gpu)", false),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("missing notin (x)", true),
        ] {
            assert_eq!(
                LabelSelector::parse(sel).expect(sel).matches(&obj),
                want,
                "{sel}"
            );
        }
        assert!(LabelSelector::parse("tier in gpu").is_err());
    }

    fn served(group: &str, plural: &str) -> ResourceType {
        crate::resources::Registry::default()
            .find(group, "v1", plural)
            .expect("served type")
    }

    fn selects(rt: &ResourceType, sel: &str, obj: &Value) -> bool {
        FieldSelector::for_type(rt, sel, &[])
            .expect(sel)
            .matches(obj)
    }

    #[test]
    fn pod_field_selectors_read_the_fields_kube_supports() {
        let pods = served("", "pods");
        let pod = json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        for (sel, want) in [
            ("", true),
            (
                "spec.nodeName=n1,status.phase!=Pending,metadata.namespace==ns",
                true,
            ),
            ("spec.nodeName=n2", false),
            ("spec.hostNetwork=false", true),
            ("spec.restartPolicy=", true),
            ("status.podIP!=", false),
        ] {
            assert_eq!(selects(&pods, sel, &pod), want, "{sel}");
        }
        assert!(selects(&pods, "spec.nodeName=", &json!({})));
    }

    #[test]
    fn unsupported_labels_are_refused_as_kube_refuses_them() {
        for (group, plural, sel) in [
            ("", "pods", "spec.containers=x"),
            ("", "nodes", "metadata.namespace=x"),
            ("", "configmaps", "data.k=v"),
            ("", "events", "message=x"),
            ("events.k8s.io", "events", "involvedObject.name=x"),
        ] {
            let err = FieldSelector::for_type(&served(group, plural), sel, &[])
                .expect_err(sel)
                .to_string();
            let label = sel.split('=').next().unwrap_or_default();
            assert!(
                err.contains(&format!("field label not supported: {label}")),
                "{sel}: {err}"
            );
        }
        assert!(FieldSelector::for_type(&served("", "pods"), "spec.nodeName", &[]).is_err());
    }

    #[test]
    fn event_selectors_work_on_both_versions() {
        let stored = json!({"metadata": {"name": "e", "namespace": "d"},
            "involvedObject": {"kind": "VDISession", "name": "s1", "uid": "u"},
            "reason": "Running", "type": "Normal", "reportingComponent": "vdi-operator"});
        let core = served("", "events");
        assert!(selects(
            &core,
            "involvedObject.name=s1,involvedObject.kind=VDISession,reason=Running",
            &stored
        ));
        assert!(selects(&core, "source=vdi-operator", &stored));
        assert!(selects(
            &served("events.k8s.io", "events"),
            "regarding.name=s1,reportingController=vdi-operator,type!=Warning",
            &stored
        ));
    }

    #[test]
    fn nodes_secrets_and_custom_fields() {
        let nodes = served("", "nodes");
        assert!(selects(&nodes, "spec.unschedulable=false", &json!({})));
        assert!(selects(
            &nodes,
            "spec.unschedulable=true",
            &json!({"spec": {"unschedulable": true}})
        ));
        let secrets = served("", "secrets");
        assert!(selects(&secrets, "type=Opaque", &json!({"type": "Opaque"})));
        let namespaces = served("", "namespaces");
        assert!(selects(
            &namespaces,
            "status.phase=Active",
            &json!({"status": {"phase": "Active"}})
        ));
        let crd_type = served("apiextensions.k8s.io", "customresourcedefinitions");
        let colour = ["spec.colour".to_owned()];
        let sel = FieldSelector::for_type(&crd_type, "spec.colour=red", &colour).expect("sel");
        assert!(sel.matches(&json!({"spec": {"colour": "red"}})));
        assert!(FieldSelector::for_type(&crd_type, "spec.colour=red", &[]).is_err());
    }

    #[test]
    fn escaped_values_and_bad_terms() {
        let pods = served("", "pods");
        let pod = json!({"metadata": {"name": "a,b=c\\d"}});
        assert!(selects(&pods, "metadata.name=a\\,b\\=c\\\\d", &pod));
        for bad in ["metadata.name=a,b=c", "metadata.name=a\\x", "nonsense"] {
            assert!(FieldSelector::for_type(&pods, bad, &[]).is_err(), "{bad}");
        }
    }
}
