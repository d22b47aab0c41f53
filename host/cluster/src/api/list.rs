//! `GET` of a collection: the items straight from the store's committed view, each as the JSON
//! serialized when it was written, stitched into the list's body; `resourceVersion` and
//! `resourceVersionMatch` as kube-apiserver reads them; continue tokens.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{AppState, Target};
use crate::error::{ApiError, Result};
use crate::selectors::{FieldSelector, LabelSelector};

/// The label and field selectors of a list, watch or collection delete of `t`, as one filter
/// on stored objects.
pub(super) fn filter_for(
    state: &AppState,
    t: &Target,
    q: &HashMap<String, String>,
) -> Result<impl Fn(&Value) -> bool + use<>> {
    let labels = LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))?;
    let fields = match q.get("fieldSelector").filter(|s| !s.is_empty()) {
        Some(s) => {
            let selectable = crate::selectors::selectable_fields(&state.store, &t.rt);
            FieldSelector::for_type(&t.rt, s, &selectable)?
        }
        None => FieldSelector::default(),
    };
    Ok(move |o: &Value| labels.matches(o) && fields.matches(o))
}

pub(super) fn list_items(
    state: &AppState,
    t: &Target,
    q: &HashMap<String, String>,
) -> Result<Vec<Value>> {
    let filter = filter_for(state, t, q)?;
    Ok(state
        .store
        .list(
            &t.rt,
            t.ns_in_path.then_some(t.ns.as_str()),
            None,
            None,
            &filter,
        )
        .0)
}

pub(super) fn list(state: &AppState, t: &Target, q: &HashMap<String, String>) -> Result<Response> {
    let filter = filter_for(state, t, q)?;
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let after = match q.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => Some(decode_continue(token)?),
        None => None,
    };
    let (items, rv, next) = state.store.list_json(
        &t.rt,
        t.ns_in_path.then_some(t.ns.as_str()),
        after.as_ref(),
        limit,
        &filter,
    )?;
    check_list_version(q, rv)?;
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if let Some(next) = next {
        metadata["continue"] = json!(encode_continue(&next));
    }
    let kind = format!("{}List", t.rt.kind);
    Ok(json_response(list_body(
        &kind,
        &t.rt.api_version(),
        &metadata,
        &items,
    )?))
}

/// A list's body stitched from its items' JSON (each serialized once, when it was written):
/// `{"apiVersion":...,"kind":...,"metadata":...,"items":[...]}`.
fn list_body(kind: &str, api_version: &str, metadata: &Value, items: &[Bytes]) -> Result<Bytes> {
    let internal = |e: serde_json::Error| ApiError::Internal(e.to_string());
    let size: usize = items.iter().map(|i| i.len() + 1).sum();
    let mut body = Vec::with_capacity(size + 256);
    body.extend_from_slice(b"{\"apiVersion\":");
    serde_json::to_writer(&mut body, api_version).map_err(internal)?;
    body.extend_from_slice(b",\"kind\":");
    serde_json::to_writer(&mut body, kind).map_err(internal)?;
    body.extend_from_slice(b",\"metadata\":");
    serde_json::to_writer(&mut body, metadata).map_err(internal)?;
    body.extend_from_slice(b",\"items\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(item);
    }
    body.extend_from_slice(b"]}");
    Ok(Bytes::from(body))
}

/// A 200 answer whose body is already JSON.
pub(super) fn json_response(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The list's `resourceVersion` and `resourceVersionMatch` against the version it is served
/// at (always the latest committed one): unset, "0" and NotOlderThan accept it (every version
/// a client can have seen is committed, so none is newer); Exact accepts only that version,
/// as the store keeps no older snapshots (kube-apiserver answers a compacted one the same way).
fn check_list_version(q: &HashMap<String, String>, served: u64) -> Result<()> {
    let wanted = q.get("resourceVersion").map(String::as_str).unwrap_or("");
    let parsed = match wanted {
        "" => None,
        rv => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::BadRequest(format!("invalid resourceVersion {rv:?}")))?,
        ),
    };
    match (q.get("resourceVersionMatch").map(String::as_str), parsed) {
        (None | Some(""), _) | (Some("NotOlderThan"), Some(_)) => Ok(()),
        (Some("Exact"), Some(rv)) if rv != 0 && rv != served => Err(ApiError::Gone {
            requested: rv,
            oldest: served,
        }),
        (Some("Exact"), Some(rv)) if rv != 0 => Ok(()),
        (Some(m), _) => Err(ApiError::BadRequest(format!(
            "resourceVersionMatch: Unsupported value: {m:?} with resourceVersion {wanted:?}: \
             supported values: \"Exact\" and \"NotOlderThan\" with a non-zero resourceVersion"
        ))),
    }
}

fn encode_continue((ns, name): &(String, String)) -> String {
    serde_json::to_string(&[ns, name])
        .map(|s| s.bytes().map(|b| format!("{b:02x}")).collect())
        .unwrap_or_default()
}

fn decode_continue(token: &str) -> Result<(String, String)> {
    let bad = || ApiError::BadRequest("invalid continue token".into());
    let bytes: Vec<u8> = (0..token.len())
        .step_by(2)
        .map(|i| {
            token
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    let [ns, name]: [String; 2] = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    Ok((ns, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_stitched_list_is_the_json_of_the_list() {
        let items = [
            json!({"kind": "ConfigMap", "metadata": {"name": "a"}}),
            json!({"kind": "ConfigMap", "metadata": {"name": "b", "labels": {"x": "\"y\""}}}),
        ];
        let bytes: Vec<Bytes> = items
            .iter()
            .map(|i| Bytes::from(serde_json::to_vec(i).expect("serialize")))
            .collect();
        let metadata = json!({"resourceVersion": "7", "continue": "ab"});
        let body = list_body("ConfigMapList", "v1", &metadata, &bytes).expect("body");
        let parsed: Value = serde_json::from_slice(&body).expect("valid JSON");
        assert_eq!(
            parsed,
            json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": metadata, "items": items})
        );
        let empty = list_body("PodList", "v1", &json!({}), &[]).expect("body");
        assert_eq!(
            serde_json::from_slice::<Value>(&empty).expect("valid JSON")["items"],
            json!([])
        );
    }

    #[test]
    fn list_versions_are_read_as_kube_apiserver_reads_them() {
        let ok = |pairs: &[(&str, &str)]| check_list_version(&query(pairs), 42).is_ok();
        assert!(ok(&[]));
        assert!(ok(&[("resourceVersion", "")]));
        assert!(ok(&[("resourceVersion", "0")]));
        assert!(ok(&[("resourceVersion", "17")]));
        assert!(ok(&[
            ("resourceVersion", "17"),
            ("resourceVersionMatch", "NotOlderThan")
        ]));
        assert!(ok(&[
            ("resourceVersion", "42"),
            ("resourceVersionMatch", "Exact")
        ]));
        assert!(matches!(
            check_list_version(
                &query(&[("resourceVersion", "17"), ("resourceVersionMatch", "Exact")]),
                42
            ),
            Err(ApiError::Gone { requested: 17, .. })
        ));
        for bad in [
            &[("resourceVersion", "x")][..],
            &[("resourceVersionMatch", "Exact")],
            &[("resourceVersion", "0"), ("resourceVersionMatch", "Exact")],
            &[("resourceVersionMatch", "NotOlderThan")],
            &[("resourceVersion", "3"), ("resourceVersionMatch", "Newest")],
        ] {
            assert!(
                matches!(
                    check_list_version(&query(bad), 42),
                    Err(ApiError::BadRequest(_))
                ),
                "{bad:?} is refused"
            );
        }
    }
}
