//! Test vectors: JSON files of input and expected result that every implementation of a plugin
//! (Rust, JavaScript, Python) must pass. Used by `vdi plugin test` and the test suite.
//!
//! A vector is one file:
//!
//! ```json
//! { "hook": "admission", "description": "...", "settings": {...},
//!   "request": {...}, "context": {...}, "expect": {"Deny": "..."} }
//! ```
//!
//! Scheduler vectors carry `requests` (a batch) and `nodes` and expect a list of decisions;
//! template vectors carry `template` and `placement`. The expected
//! value is matched as a subset of the actual one: every object key given must match, arrays
//! must have the same length; so a vector states only what it is about.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::plugin::{Hook, Plugin};
use crate::render::RenderPolicy;
use crate::types::{AdmissionContext, Node, Placement, SessionRequest, TemplateInfo};

/// The inputs of one vector.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "hook", rename_all = "lowercase")]
pub enum Input {
    /// An admission review.
    Admission {
        /// The request.
        request: SessionRequest,
        /// Its context.
        context: AdmissionContext,
    },
    /// A batch of placements.
    Scheduler {
        /// The requests, placed in order.
        requests: Vec<SessionRequest>,
        /// The candidate nodes.
        nodes: Vec<Node>,
    },
    /// A render.
    Template {
        /// The request.
        request: SessionRequest,
        /// The template.
        template: TemplateInfo,
        /// The placement.
        placement: Placement,
    },
}

impl Input {
    /// The hook the vector exercises.
    pub fn hook(&self) -> Hook {
        match self {
            Self::Admission { .. } => Hook::Admission,
            Self::Scheduler { .. } => Hook::Scheduler,
            Self::Template { .. } => Hook::Template,
        }
    }
}

/// One test vector.
#[derive(Debug, Clone, Deserialize)]
pub struct Vector {
    /// What it checks, in a sentence.
    #[serde(default)]
    pub description: String,
    /// The plugin's settings for this vector.
    #[serde(default)]
    pub settings: Value,
    /// The inputs.
    #[serde(flatten)]
    pub input: Input,
    /// The expected result: the decision, or `{"Err": ...}` for an error the plugin returns.
    pub expect: Value,
}

/// The outcome of one vector.
#[derive(Debug, Clone)]
pub struct VectorResult {
    /// File the vector came from.
    pub path: PathBuf,
    /// Its description.
    pub description: String,
    /// What the plugin returned (decision, or `{"Err": "..."}`).
    pub actual: Value,
    /// Mismatches, one line each; empty when the vector passed.
    pub diff: Vec<String>,
}

impl VectorResult {
    /// Whether the plugin matched the expectation.
    pub fn passed(&self) -> bool {
        self.diff.is_empty()
    }
}

/// Reads every `*.json` vector in `dir` (sorted by file name).
pub fn load_dir(dir: &Path) -> Result<Vec<(PathBuf, Vector)>, String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            let v: Vector =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
            Ok((p, v))
        })
        .collect()
}

/// Runs `vector` against `plugin` (configured with the vector's settings).
pub fn run(plugin: &Plugin, path: &Path, vector: &Vector) -> VectorResult {
    let actual = evaluate(plugin, vector);
    let mut diff = Vec::new();
    if vector.input.hook() != plugin.hook() {
        diff.push(format!(
            "vector is for the {} hook, plugin implements {}",
            vector.input.hook().name(),
            plugin.hook().name()
        ));
    } else {
        subset(&vector.expect, &actual, "$", &mut diff);
    }
    VectorResult {
        path: path.to_owned(),
        description: vector.description.clone(),
        actual,
        diff,
    }
}

fn evaluate(plugin: &Plugin, vector: &Vector) -> Value {
    let settings = if vector.settings.is_null() {
        String::new()
    } else {
        vector.settings.to_string()
    };
    let plugin = match plugin.with_settings(&settings) {
        Ok(p) => p,
        Err(e) => return serde_json::json!({ "Err": e.to_string() }),
    };
    let to_json = |r: Result<Value, String>| r.unwrap_or_else(|e| serde_json::json!({ "Err": e }));
    match &vector.input {
        Input::Admission { request, context } => to_json(
            plugin
                .review(request, context)
                .map_err(|e| e.to_string())
                .and_then(|v| serde_json::to_value(v).map_err(|e| e.to_string())),
        ),
        Input::Scheduler { requests, nodes } => to_json(
            plugin
                .place_batch(requests, nodes)
                .map_err(|e| e.to_string())
                .and_then(|v| serde_json::to_value(v).map_err(|e| e.to_string())),
        ),
        Input::Template {
            request,
            template,
            placement,
        } => to_json(
            plugin
                .render(request, template, placement, &RenderPolicy::default())
                .map(Value::Array)
                .map_err(|e| e.to_string()),
        ),
    }
}

/// Records where `expected` is not a subset of `actual`.
fn subset(expected: &Value, actual: &Value, path: &str, diff: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                match a.get(k) {
                    Some(av) => subset(ev, av, &format!("{path}.{k}"), diff),
                    None => diff.push(format!("{path}.{k}: expected {ev}, missing")),
                }
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                subset(ev, av, &format!("{path}[{i}]"), diff);
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            diff.push(format!(
                "{path}: expected {} elements, got {}: {actual}",
                e.len(),
                a.len()
            ));
        }
        (e, a) if e == a => {}
        (e, a) => diff.push(format!("{path}: expected {e}, got {a}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subset_reports_each_mismatch_with_its_path() {
        let mut diff = Vec::new();
        let expected = json!({"Placed": {"node": "a", "gpu": 0}, "list": [1, {"x": 2}]});
        let actual = json!({"Placed": {"node": "b", "gpu": 0, "reason": "r"}, "list": [1, {"x": 3, "y": 1}]});
        subset(&expected, &actual, "$", &mut diff);
        assert_eq!(
            diff,
            [
                "$.Placed.node: expected \"a\", got \"b\"",
                "$.list[1].x: expected 2, got 3"
            ]
        );
        let mut diff = Vec::new();
        subset(&json!({"Deny": "x"}), &json!("Allow"), "$", &mut diff);
        assert_eq!(diff, ["$: expected {\"Deny\":\"x\"}, got \"Allow\""]);
        let mut diff = Vec::new();
        subset(&json!([1]), &json!([1, 2]), "$", &mut diff);
        assert_eq!(diff.len(), 1);
    }
}
