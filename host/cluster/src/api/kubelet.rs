//! What a kubelet and metrics-server answer through the API server: `GET pods/<name>/log` and
//! `metrics.k8s.io` (the figures themselves: [`crate::metrics`]).
//!
//! The simulated nodes run no containers and keep no logs, so a log request for a pod on one is
//! refused with that reason; a pod that has not started is refused in kube-apiserver's (the
//! kubelet's) words. A node agent that keeps real logs (the process node) registers in
//! [`crate::node_logs`], and its pods' logs are read from it.

use std::collections::HashMap;

use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{AppState, Target, filter_for, wants_watch};
use crate::error::{ApiError, Result};
use crate::node_logs::LogRequest;
use crate::nodes::SIMULATED_LABEL;

/// The query of a log request (`PodLogOptions`), checked.
#[derive(Debug, Default, PartialEq)]
struct LogOptions {
    container: Option<String>,
    follow: bool,
    previous: bool,
    timestamps: bool,
    tail_lines: Option<u64>,
    since_seconds: Option<u64>,
    since_time: Option<String>,
    limit_bytes: Option<u64>,
}

/// A 400 naming the parameter.
fn bad(param: &str, value: &str, why: &str) -> ApiError {
    ApiError::BadRequest(format!("invalid {param} {value:?}: {why}"))
}

impl LogOptions {
    fn parse(q: &HashMap<String, String>) -> Result<Self> {
        let flag = |param: &str| -> Result<bool> {
            match q.get(param).map(String::as_str) {
                None => Ok(false),
                Some(v) if v.is_empty() || v == "1" || v.eq_ignore_ascii_case("true") => Ok(true),
                Some(v) if v == "0" || v.eq_ignore_ascii_case("false") => Ok(false),
                Some(v) => Err(bad(param, v, "must be true or false")),
            }
        };
        let number = |param: &str, min: u64| -> Result<Option<u64>> {
            let Some(v) = q.get(param) else {
                return Ok(None);
            };
            match v.parse::<i64>() {
                Ok(n) => u64::try_from(n)
                    .ok()
                    .filter(|n| *n >= min)
                    .map(Some)
                    .ok_or_else(|| bad(param, v, &format!("must be at least {min}"))),
                Err(_) => Err(bad(param, v, "must be an integer")),
            }
        };
        let since_time = match q.get("sinceTime") {
            Some(t) if t.parse::<jiff::Timestamp>().is_err() => {
                return Err(bad("sinceTime", t, "must be an RFC 3339 time"));
            }
            t => t.cloned(),
        };
        let options = Self {
            container: q.get("container").filter(|c| !c.is_empty()).cloned(),
            follow: flag("follow")?,
            previous: flag("previous")?,
            timestamps: flag("timestamps")?,
            tail_lines: number("tailLines", 0)?,
            since_seconds: number("sinceSeconds", 1)?,
            since_time,
            limit_bytes: number("limitBytes", 1)?,
        };
        if options.since_seconds.is_some() && options.since_time.is_some() {
            return Err(ApiError::BadRequest(
                "at most one of sinceTime or sinceSeconds may be specified".into(),
            ));
        }
        Ok(options)
    }

    /// What a node agent is asked for.
    fn request(&self) -> Result<LogRequest> {
        let since = match (&self.since_time, self.since_seconds) {
            (Some(t), _) => Some(
                t.parse::<jiff::Timestamp>()
                    .map_err(|_| bad("sinceTime", t, "must be an RFC 3339 time"))?,
            ),
            (None, Some(secs)) => i64::try_from(secs)
                .ok()
                .and_then(|s| {
                    jiff::Timestamp::now()
                        .checked_sub(jiff::SignedDuration::from_secs(s))
                        .ok()
                })
                .or(Some(jiff::Timestamp::MIN)),
            (None, None) => None,
        };
        Ok(LogRequest {
            follow: self.follow,
            previous: self.previous,
            timestamps: self.timestamps,
            tail_lines: self.tail_lines,
            since,
            limit_bytes: self.limit_bytes,
        })
    }
}

/// The names of a pod's containers: (app and ephemeral, init).
fn container_names(pod: &Value) -> (Vec<String>, Vec<String>) {
    let names = |field: &str| -> Vec<String> {
        pod["spec"][field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect()
    };
    let mut main = names("containers");
    main.extend(names("ephemeralContainers"));
    (main, names("initContainers"))
}

/// Why a pod's container has not started yet, as its status says (or `ContainerCreating`).
fn waiting_reason(pod: &Value, container: &str) -> Option<String> {
    let statuses = ["containerStatuses", "initContainerStatuses"]
        .iter()
        .flat_map(|f| pod["status"][*f].as_array().cloned().unwrap_or_default());
    let status = statuses
        .into_iter()
        .find(|s| s["name"].as_str() == Some(container));
    match status {
        None => Some("ContainerCreating".into()),
        Some(s) if s["state"]["waiting"].is_object() => Some(
            s["state"]["waiting"]["reason"]
                .as_str()
                .unwrap_or("ContainerCreating")
                .to_owned(),
        ),
        Some(_) => None,
    }
}

/// `GET pods/<name>/log`.
pub(super) fn pod_log(
    state: &AppState,
    t: &Target,
    q: &HashMap<String, String>,
) -> Result<Response> {
    let options = LogOptions::parse(q)?;
    let name = t.name.as_deref().unwrap_or_default();
    let pod = state.store.get(&t.rt, &t.ns, name)?;
    let (main, init) = container_names(&pod);
    let container = match (&options.container, main.as_slice()) {
        (Some(c), _) if main.contains(c) || init.contains(c) => c.clone(),
        (Some(c), _) => {
            return Err(ApiError::BadRequest(format!(
                "container {c} is not valid for pod {name}"
            )));
        }
        (None, [only]) => only.clone(),
        (None, _) => {
            let mut message = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                main.join(" ")
            );
            if !init.is_empty() {
                message.push_str(&format!(
                    " or one of the init containers: [{}]",
                    init.join(" ")
                ));
            }
            return Err(ApiError::BadRequest(message));
        }
    };
    let Some(node) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) else {
        return Err(ApiError::BadRequest(format!(
            "pod {name} does not have a host assigned"
        )));
    };
    let source = state.store.log_sources.get(node);
    // A container backing off after a crash still has its previous instance's log.
    if !(options.previous && source.is_some())
        && let Some(reason) = waiting_reason(&pod, &container)
    {
        return Err(ApiError::BadRequest(format!(
            "container {container:?} in pod {name:?} is waiting to start: {reason}"
        )));
    }
    if let Some(source) = source {
        let stream = source.read(&pod, &container, &options.request()?)?;
        return Ok((
            [(header::CONTENT_TYPE, "text/plain")],
            axum::body::Body::from_stream(stream),
        )
            .into_response());
    }
    let simulated = state
        .store
        .registry
        .find("", "v1", "nodes")
        .and_then(|nodes| state.store.get(&nodes, "", node).ok())
        .is_some_and(|n| n["metadata"]["labels"][SIMULATED_LABEL] == "true");
    if simulated {
        return Err(ApiError::BadRequest(format!(
            "pod {name:?} runs on simulated node {node:?}: simulated nodes run no containers and keep no logs"
        )));
    }
    Err(ApiError::BadRequest(format!(
        "pod {name:?} runs on node {node:?}, whose logs this control plane cannot reach"
    )))
}

/// `GET` on `metrics.k8s.io` (a Table when asked for one); any other verb is 405.
pub(super) fn metrics(
    state: &AppState,
    t: &Target,
    method: &Method,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Response> {
    if *method != Method::GET || wants_watch(q) || t.sub.is_some() {
        return Err(ApiError::MethodNotAllowed(format!(
            "{} are read-only: only get and list are served",
            t.rt.key()
        )));
    }
    let filter = filter_for(state, t, q)?;
    let ns = t.ns_in_path.then_some(t.ns.as_str());
    let answer = crate::metrics::get(&state.store, &t.rt, ns, t.name.as_deref(), &filter)?;
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !crate::table::wanted(accept) {
        return Ok(axum::Json(answer).into_response());
    }
    let items = match answer.get("items").and_then(Value::as_array) {
        Some(items) => items.clone(),
        None => vec![answer],
    };
    Ok(axum::Json(crate::table::render(&t.rt, &items, "")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn log_options_are_checked_naming_the_parameter() {
        let ok = LogOptions::parse(&query(&[
            ("follow", "true"),
            ("previous", "false"),
            ("timestamps", "1"),
            ("tailLines", "10"),
            ("sinceSeconds", "60"),
            ("container", "desktop"),
        ]))
        .expect("valid");
        assert!(ok.follow && !ok.previous && ok.timestamps);
        assert_eq!((ok.tail_lines, ok.since_seconds), (Some(10), Some(60)));
        for (param, value, says) in [
            ("follow", "maybe", "must be true or false"),
            ("tailLines", "-1", "must be at least 0"),
            ("tailLines", "ten", "must be an integer"),
            ("sinceSeconds", "0", "must be at least 1"),
            ("limitBytes", "0", "must be at least 1"),
            ("sinceTime", "yesterday", "RFC 3339"),
        ] {
            let err = LogOptions::parse(&query(&[(param, value)]))
                .expect_err(param)
                .to_string();
            assert!(err.contains(param) && err.contains(says), "{param}: {err}");
        }
        assert!(
            LogOptions::parse(&query(&[
                ("sinceSeconds", "5"),
                ("sinceTime", "2026-01-01T00:00:00Z")
            ]))
            .is_err()
        );
    }

    #[test]
    fn agents_get_an_absolute_since() {
        let at = LogOptions::parse(&query(&[("sinceTime", "2026-01-01T00:00:00Z")]))
            .and_then(|o| o.request())
            .expect("request");
        assert_eq!(
            at.since,
            Some("2026-01-01T00:00:00Z".parse().expect("time"))
        );
        let before = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60);
        let ago = LogOptions::parse(&query(&[("sinceSeconds", "60"), ("tailLines", "3")]))
            .and_then(|o| o.request())
            .expect("request");
        let since = ago.since.expect("since");
        assert!(
            since >= before && since <= jiff::Timestamp::now(),
            "{since}"
        );
        assert_eq!(ago.tail_lines, Some(3));
        let none = LogOptions::parse(&query(&[])).and_then(|o| o.request());
        assert_eq!(none.expect("request").since, None);
    }

    #[test]
    fn a_container_that_has_not_started_is_waiting() {
        let pod = json!({"status": {"containerStatuses": [
            {"name": "a", "state": {"waiting": {"reason": "ImagePullBackOff"}}},
            {"name": "b", "state": {"running": {}}},
        ]}});
        assert_eq!(
            waiting_reason(&pod, "a").as_deref(),
            Some("ImagePullBackOff")
        );
        assert_eq!(waiting_reason(&pod, "b"), None);
        assert_eq!(
            waiting_reason(&pod, "c").as_deref(),
            Some("ContainerCreating")
        );
    }
}
