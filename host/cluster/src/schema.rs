//! Validation of custom resources against their CRD's `openAPIV3Schema` (types, required,
//! enums, bounds, lengths). Unknown fields are kept, not pruned.

use serde_json::Value;

use crate::error::{ApiError, Result};
use crate::resources::ResourceType;

/// Validates (and prunes) `obj` if `rt` has a schema. `metadata` is the server's business.
pub fn validate(rt: &ResourceType, obj: &Value) -> Result<()> {
    let Some(schema) = &rt.schema else {
        return Ok(());
    };
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let Some(props) = schema["properties"].as_object() else {
        return Ok(());
    };
    let Some(fields) = obj.as_object() else {
        return Ok(());
    };
    for (k, v) in fields {
        if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        if let Some(s) = props.get(k) {
            check(s, v, k).map_err(|(field, reason)| ApiError::Invalid {
                kind: rt.kind.clone(),
                name: name.to_owned(),
                field,
                reason,
            })?;
        }
    }
    for req in schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !fields.contains_key(req) {
            return Err(ApiError::Invalid {
                kind: rt.kind.clone(),
                name: name.to_owned(),
                field: req.to_owned(),
                reason: "Required value".into(),
            });
        }
    }
    Ok(())
}

/// Checks `v` against `s`; errors carry (field path, reason).
fn check(s: &Value, v: &Value, path: &str) -> Result<(), (String, String)> {
    let fail = |reason: String| Err((path.to_owned(), reason));
    if v.is_null() && s["nullable"].as_bool() == Some(true) {
        return Ok(());
    }
    if s["x-kubernetes-int-or-string"].as_bool() == Some(true) {
        return if v.is_i64() || v.is_u64() || v.is_string() {
            Ok(())
        } else {
            fail(format!("{v}: must be an integer or a string"))
        };
    }
    match s["type"].as_str() {
        Some("object") => {
            let Some(o) = v.as_object() else {
                return fail(format!("{}: must be of type object", short(v)));
            };
            let props = s["properties"].as_object();
            for (k, child) in o {
                let sub = format!("{path}.{k}");
                if let Some(cs) = props.and_then(|p| p.get(k)) {
                    check(cs, child, &sub)?;
                } else if s["additionalProperties"].is_object() {
                    check(&s["additionalProperties"], child, &sub)?;
                }
            }
            for req in s["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !o.contains_key(req) {
                    return Err((format!("{path}.{req}"), "Required value".into()));
                }
            }
        }
        Some("array") => {
            let Some(a) = v.as_array() else {
                return fail(format!("{}: must be of type array", short(v)));
            };
            if let Some(max) = s["maxItems"].as_u64()
                && a.len() as u64 > max
            {
                return fail(format!("must have at most {max} items"));
            }
            for (i, item) in a.iter().enumerate() {
                check(&s["items"], item, &format!("{path}[{i}]"))?;
            }
        }
        Some("string") => {
            let Some(text) = v.as_str() else {
                return fail(format!("{}: must be of type string", short(v)));
            };
            if let Some(max) = s["maxLength"].as_u64()
                && text.chars().count() as u64 > max
            {
                return fail(format!("must have at most {max} characters"));
            }
            if let Some(min) = s["minLength"].as_u64()
                && (text.chars().count() as u64) < min
            {
                return fail(format!("must have at least {min} characters"));
            }
        }
        Some("integer") if !(v.is_i64() || v.is_u64()) => {
            return fail(format!("{}: must be of type integer", short(v)));
        }
        Some("number") if !v.is_number() => {
            return fail(format!("{}: must be of type number", short(v)));
        }
        Some("boolean") if !v.is_boolean() => {
            return fail(format!("{}: must be of type boolean", short(v)));
        }
        _ => {}
    }
    if let Some(n) = v.as_f64() {
        if let Some(min) = s["minimum"].as_f64()
            && n < min
        {
            return fail(format!("{v}: should be greater than or equal to {min}"));
        }
        if let Some(max) = s["maximum"].as_f64()
            && n > max
        {
            return fail(format!("{v}: should be less than or equal to {max}"));
        }
    }
    if let Some(allowed) = s["enum"].as_array()
        && !allowed.contains(v)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        return fail(format!(
            "{}: supported values: {}",
            short(v),
            list.join(", ")
        ));
    }
    Ok(())
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 64 {
        format!(
            "{}...",
            &s[..s.char_indices().nth(60).map_or(s.len(), |(i, _)| i)]
        )
    } else {
        s
    }
}
