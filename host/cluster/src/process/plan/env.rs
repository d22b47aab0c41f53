//! A container's environment (`env`, `envFrom`, `valueFrom`) and the files of configMap and
//! secret volumes, as the kubelet builds them.

use base64::Engine as _;
use serde_json::Value;

use super::{PodContext, Waiting};

/// `PATH` when the container sets none.
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Reads a namespaced object of the pod's namespace: (`configmaps` | `secrets`, name).
pub(crate) type Lookup<'a> = dyn Fn(&str, &str) -> Option<Value> + 'a;

/// Variables in the order they were set (a later set replaces the value in place).
#[derive(Debug, Default)]
pub(crate) struct Env(Vec<(String, String)>);

impl Env {
    pub(crate) fn set(&mut self, k: &str, v: String) {
        match self.0.iter_mut().find(|(n, _)| n == k) {
            Some(slot) => slot.1 = v,
            None => self.0.push((k.to_owned(), v)),
        }
    }

    fn get(&self, k: &str) -> Option<String> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    pub(crate) fn into_pairs(self) -> Vec<(String, String)> {
        self.0
    }
}

/// Expands `$(VAR)` with the variables defined so far; `$$` is a literal `$`; an unknown
/// reference stays as written (kubelet's rules).
pub(crate) fn expand(s: &str, var: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('(') {
            match body.find(')') {
                Some(end) => {
                    let name = &body[..end];
                    match var(name) {
                        Some(v) => out.push_str(&v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &body[end + 1..];
                }
                None => {
                    out.push_str(&rest[i..]);
                    rest = "";
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The text of `data[key]` of a ConfigMap (or `binaryData`) or a Secret (base64).
fn value_of(obj: &Value, secret: bool, key: &str) -> Option<Result<Vec<u8>, String>> {
    if secret {
        if let Some(b64) = obj["data"][key].as_str() {
            return Some(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| format!("data[{key}] is not base64: {e}")),
            );
        }
        return obj["stringData"][key]
            .as_str()
            .map(|s| Ok(s.as_bytes().to_vec()));
    }
    if let Some(s) = obj["data"][key].as_str() {
        return Some(Ok(s.as_bytes().to_vec()));
    }
    obj["binaryData"][key].as_str().map(|b64| {
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("binaryData[{key}] is not base64: {e}"))
    })
}

/// All keys of a ConfigMap or Secret.
fn keys(obj: &Value, secret: bool) -> Vec<String> {
    let fields: &[&str] = if secret {
        &["data", "stringData"]
    } else {
        &["data", "binaryData"]
    };
    let mut keys: Vec<String> = fields
        .iter()
        .filter_map(|f| obj[*f].as_object())
        .flat_map(|m| m.keys().cloned())
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The files of a configMap or secret volume: (relative path, contents, mode).
pub(crate) fn volume_files(
    obj: &Value,
    secret: bool,
    src: &Value,
    default_mode: u32,
) -> Result<Vec<(String, Vec<u8>, u32)>, Waiting> {
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let bad = |e: String| Waiting::config(format!("{name}: {e}"));
    match src["items"].as_array() {
        None => keys(obj, secret)
            .into_iter()
            .filter_map(|k| value_of(obj, secret, &k).map(|v| (k, v)))
            .map(|(k, v)| Ok((k, v.map_err(bad)?, default_mode)))
            .collect(),
        Some(items) => items
            .iter()
            .map(|item| {
                let key = item["key"].as_str().unwrap_or_default();
                let path = item["path"].as_str().unwrap_or(key);
                let mode = item["mode"]
                    .as_u64()
                    .and_then(|m| u32::try_from(m).ok())
                    .unwrap_or(default_mode);
                match value_of(obj, secret, key) {
                    Some(v) => Ok((path.to_owned(), v.map_err(bad)?, mode)),
                    None => Err(Waiting::config(format!(
                        "{name}: no key {key:?} for the volume's items"
                    ))),
                }
            })
            .collect(),
    }
}

/// `valueFrom.fieldRef.fieldPath` of the pod.
fn field(pod: &Value, path: &str) -> Option<String> {
    let inside = |prefix: &str| -> Option<String> {
        let rest = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(rest.to_owned())
    };
    match path {
        "metadata.name" | "metadata.namespace" | "metadata.uid" => pod["metadata"]
            [path.trim_start_matches("metadata.")]
        .as_str()
        .map(str::to_owned),
        "spec.nodeName" | "spec.serviceAccountName" => pod["spec"]
            [path.trim_start_matches("spec.")]
        .as_str()
        .map(str::to_owned),
        "status.podIP" | "status.hostIP" | "status.podIPs" | "status.hostIPs" => {
            Some("127.0.0.1".to_owned())
        }
        _ => {
            if let Some(k) = inside("metadata.labels['") {
                return Some(
                    pod["metadata"]["labels"][&k]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
            inside("metadata.annotations['").map(|k| {
                pod["metadata"]["annotations"][&k]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
        }
    }
}

/// Adds `envFrom` then `env` of container `c` to `vars`.
pub(crate) fn resolve(
    ctx: &PodContext<'_>,
    c: &Value,
    name: &str,
    vars: &mut Env,
) -> Result<(), Waiting> {
    for (i, from) in c["envFrom"].as_array().into_iter().flatten().enumerate() {
        let prefix = from["prefix"].as_str().unwrap_or_default();
        let (src, secret, kind, what) = if from["secretRef"].is_object() {
            (&from["secretRef"], true, "secrets", "secret")
        } else if from["configMapRef"].is_object() {
            (&from["configMapRef"], false, "configmaps", "configmap")
        } else {
            return Err(Waiting::config(format!(
                "containers[{name}].envFrom[{i}]: neither configMapRef nor secretRef"
            )));
        };
        let obj_name = src["name"].as_str().unwrap_or_default();
        match (ctx.lookup)(kind, obj_name) {
            Some(obj) => {
                for k in keys(&obj, secret) {
                    if let Some(v) = value_of(&obj, secret, &k) {
                        let v =
                            v.map_err(|e| Waiting::config(format!("{what} {obj_name:?}: {e}")))?;
                        vars.set(
                            &format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v).into_owned(),
                        );
                    }
                }
            }
            None if src["optional"] == true => {}
            None => {
                return Err(Waiting::config(format!("{what} {obj_name:?} not found")));
            }
        }
    }
    for (i, e) in c["env"].as_array().into_iter().flatten().enumerate() {
        let Some(var) = e["name"].as_str().filter(|n| !n.is_empty()) else {
            return Err(Waiting::config(format!(
                "containers[{name}].env[{i}].name is missing"
            )));
        };
        let from = &e["valueFrom"];
        let value = if let Some(v) = e["value"].as_str() {
            expand(v, &|k| vars.get(k))
        } else if let Some(path) = from["fieldRef"]["fieldPath"].as_str() {
            field(ctx.pod, path).ok_or_else(|| {
                Waiting::config(format!(
                    "containers[{name}].env[{var}].valueFrom.fieldRef.fieldPath {path:?} is not supported"
                ))
            })?
        } else if from["configMapKeyRef"].is_object() || from["secretKeyRef"].is_object() {
            let secret = from["secretKeyRef"].is_object();
            let (r, kind, what) = if secret {
                (&from["secretKeyRef"], "secrets", "secret")
            } else {
                (&from["configMapKeyRef"], "configmaps", "configmap")
            };
            let obj_name = r["name"].as_str().unwrap_or_default();
            let key = r["key"].as_str().unwrap_or_default();
            let optional = r["optional"] == true;
            match (ctx.lookup)(kind, obj_name) {
                None if optional => continue,
                None => {
                    return Err(Waiting::config(format!("{what} {obj_name:?} not found")));
                }
                Some(obj) => match value_of(&obj, secret, key) {
                    Some(v) => {
                        let v =
                            v.map_err(|e| Waiting::config(format!("{what} {obj_name:?}: {e}")))?;
                        String::from_utf8_lossy(&v).into_owned()
                    }
                    None if optional => continue,
                    None => {
                        return Err(Waiting::config(format!(
                            "couldn't find key {key} in {what} {}/{obj_name}",
                            ctx.pod["metadata"]["namespace"]
                                .as_str()
                                .unwrap_or("default")
                        )));
                    }
                },
            }
        } else if from.is_object() {
            return Err(Waiting::config(format!(
                "containers[{name}].env[{var}].valueFrom: only fieldRef, configMapKeyRef and secretKeyRef are supported"
            )));
        } else {
            String::new()
        };
        vars.set(var, value);
    }
    Ok(())
}
