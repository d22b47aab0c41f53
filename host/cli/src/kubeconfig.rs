//! Merging an exec-credential user (and a context) into a kubeconfig without touching the other
//! entries: the document is edited as a generic value, so fields this code does not know
//! survive.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

/// The exec credential API version `vdi token` speaks.
pub(crate) const EXEC_API_VERSION: &str = "client.authentication.k8s.io/v1";

/// A kubeconfig user whose credentials come from running a command.
pub(crate) struct ExecUser {
    /// The user entry's name.
    pub(crate) name: String,
    /// The command (an absolute path).
    pub(crate) command: String,
    /// Its arguments.
    pub(crate) args: Vec<String>,
}

/// The kubeconfig path: `KUBECONFIG`'s first entry, or `~/.kube/config`.
pub(crate) fn default_path() -> Result<PathBuf> {
    if let Some(first) = std::env::var_os("KUBECONFIG")
        .as_deref()
        .and_then(|list| std::env::split_paths(list).find(|p| !p.as_os_str().is_empty()))
    {
        return Ok(first);
    }
    let home = std::env::var_os("HOME").context("neither KUBECONFIG nor HOME is set")?;
    Ok(PathBuf::from(home).join(".kube/config"))
}

/// Reads the kubeconfig at `path`; a missing or empty file is an empty config.
pub(crate) fn read(path: &Path) -> Result<Value> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    };
    parse(&text).with_context(|| format!("{} is not a kubeconfig", path.display()))
}

fn parse(text: &str) -> Result<Value> {
    let doc = if text.trim().is_empty() {
        json!({})
    } else {
        serde_saphyr::from_str::<Value>(text)?
    };
    match doc {
        Value::Object(_) => Ok(doc),
        Value::Null => Ok(json!({})),
        _ => bail!("a kubeconfig is a mapping"),
    }
}

/// The document as YAML.
pub(crate) fn to_yaml(doc: &Value) -> Result<String> {
    serde_saphyr::to_string(doc).context("write the kubeconfig as YAML")
}

/// The names of the entries in list `key` (`clusters`, `users`, `contexts`).
pub(crate) fn names<'a>(doc: &'a Value, key: &str) -> Vec<&'a str> {
    doc.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("name").and_then(Value::as_str))
        .collect()
}

/// Adds or replaces the user `user.name` with an exec credential plugin entry and, with
/// `cluster` (which must exist), the context `<user>@<cluster>`, which becomes current. Returns
/// the context's name.
pub(crate) fn merge(
    doc: &mut Value,
    user: &ExecUser,
    cluster: Option<&str>,
) -> Result<Option<String>> {
    if let Some(cluster) = cluster
        && !names(doc, "clusters").contains(&cluster)
    {
        bail!("the kubeconfig has no cluster named {cluster:?}");
    }
    let root = doc.as_object_mut().context("a kubeconfig is a mapping")?;
    root.entry("apiVersion").or_insert_with(|| json!("v1"));
    root.entry("kind").or_insert_with(|| json!("Config"));
    for key in ["clusters", "contexts", "users"] {
        if !root.get(key).is_some_and(Value::is_array) {
            root.insert(key.to_owned(), json!([]));
        }
    }
    upsert(
        root,
        "users",
        &user.name,
        json!({
            "exec": {
                "apiVersion": EXEC_API_VERSION,
                "command": user.command,
                "args": user.args,
                "interactiveMode": "Never",
                "provideClusterInfo": false,
            }
        }),
        "user",
    );
    let Some(cluster) = cluster else {
        return Ok(None);
    };
    let context = format!("{}@{cluster}", user.name);
    upsert(
        root,
        "contexts",
        &context,
        json!({"cluster": cluster, "user": user.name}),
        "context",
    );
    root.insert("current-context".to_owned(), json!(context));
    Ok(Some(context))
}

/// Replaces entry `name` of list `key` (keeping its place) or appends it.
fn upsert(root: &mut Map<String, Value>, key: &str, name: &str, body: Value, field: &str) {
    let entry = json!({"name": name, field: body});
    let Some(list) = root.get_mut(key).and_then(Value::as_array_mut) else {
        return;
    };
    match list
        .iter_mut()
        .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
    {
        Some(existing) => *existing = entry,
        None => list.push(entry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXISTING: &str = "\
apiVersion: v1
kind: Config
preferences: {}
clusters:
- name: dev
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: Q0E=
users:
- name: admin
  user:
    token: secret
- name: alice
  user:
    token: old
contexts:
- name: dev-admin
  context:
    cluster: dev
    user: admin
current-context: dev-admin
";

    fn user() -> ExecUser {
        ExecUser {
            name: "alice".into(),
            command: "/bin/vdi".into(),
            args: vec!["token".into(), "--issuer".into(), "https://idp".into()],
        }
    }

    #[test]
    fn merges_the_exec_user_and_a_context_keeping_everything_else() {
        let mut doc = parse(EXISTING).unwrap();
        let context = merge(&mut doc, &user(), Some("dev")).unwrap();
        assert_eq!(context.as_deref(), Some("alice@dev"));
        let doc = parse(&to_yaml(&doc).unwrap()).unwrap();

        assert_eq!(names(&doc, "users"), ["admin", "alice"]);
        assert_eq!(doc["users"][0]["user"]["token"], "secret");
        let exec = &doc["users"][1]["user"]["exec"];
        assert_eq!(exec["apiVersion"], EXEC_API_VERSION);
        assert_eq!(exec["command"], "/bin/vdi");
        assert_eq!(exec["args"], json!(["token", "--issuer", "https://idp"]));
        assert_eq!(exec["interactiveMode"], "Never");
        assert!(doc["users"][1]["user"].get("token").is_none());

        assert_eq!(names(&doc, "contexts"), ["dev-admin", "alice@dev"]);
        assert_eq!(
            doc["contexts"][1]["context"],
            json!({"cluster": "dev", "user": "alice"})
        );
        assert_eq!(doc["current-context"], "alice@dev");
        assert_eq!(
            doc["clusters"][0]["cluster"]["certificate-authority-data"],
            "Q0E="
        );
        assert_eq!(doc["preferences"], json!({}));
    }

    #[test]
    fn without_a_cluster_only_the_user_changes() {
        let mut doc = parse(EXISTING).unwrap();
        assert_eq!(merge(&mut doc, &user(), None).unwrap(), None);
        assert_eq!(doc["current-context"], "dev-admin");
        assert_eq!(names(&doc, "contexts"), ["dev-admin"]);
    }

    #[test]
    fn an_unknown_cluster_is_refused_and_an_empty_file_starts_a_config() {
        let mut doc = parse(EXISTING).unwrap();
        let err = merge(&mut doc, &user(), Some("prod")).unwrap_err();
        assert!(
            err.to_string().contains("no cluster named \"prod\""),
            "{err}"
        );

        let mut doc = parse("").unwrap();
        merge(&mut doc, &user(), None).unwrap();
        assert_eq!(doc["apiVersion"], "v1");
        assert_eq!(doc["kind"], "Config");
        assert_eq!(names(&doc, "users"), ["alice"]);
        assert_eq!(doc["clusters"], json!([]));
        assert!(parse("- a list").is_err());
    }
}
