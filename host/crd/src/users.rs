//! Each user's namespace: its name, derived from the user name the API server authenticated
//! (`oidc:alice`), and the objects that make it theirs (the Namespace, under Pod Security
//! `restricted`, and a RoleBinding to the `vdi-user` ClusterRole from `deploy/rbac/users.yaml`).
//! Pure: whoever creates them (`vdi user add`, the API on a user's first session) applies them.

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// The ClusterRole a user holds in their namespace.
pub const USER_ROLE: &str = "vdi-user";
/// Label on a user's namespace, so admins can list them.
pub const USER_NAMESPACE_LABEL: &str = "vdi.dev/user-namespace";
/// Annotation on a user's namespace: the user name it belongs to.
pub const USER_ANNOTATION: &str = "vdi.dev/user";

/// Longest readable part of the name (the whole name stays under the 63 characters of a DNS
/// label).
const READABLE_MAX: usize = 40;

/// The namespace of `user`: `u-<readable>-<hash>`, where `readable` is the user name without
/// its prefix (`oidc:`) lowered to DNS-label characters and `hash` the first 10 hex digits of
/// SHA-256 of the whole user name. Two user names never share a namespace unless their hashes
/// collide in 40 bits, whatever their readable parts; the same user always gets the same one.
pub fn user_namespace(user: &str) -> String {
    let bare = user.rsplit_once(':').map_or(user, |(_, rest)| rest);
    let mut readable = String::new();
    for c in bare.chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && (readable.is_empty() || readable.ends_with('-'))) {
            readable.push(c);
        }
        if readable.len() >= READABLE_MAX {
            break;
        }
    }
    let readable = readable.trim_end_matches('-');
    let digest = Sha256::digest(user.as_bytes());
    let hash: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    if readable.is_empty() {
        format!("u-{hash}")
    } else {
        format!("u-{readable}-{hash}")
    }
}

/// The Namespace object of `user`'s namespace.
pub fn user_namespace_object(user: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": user_namespace(user),
            "labels": {
                USER_NAMESPACE_LABEL: "true",
                "app.kubernetes.io/part-of": "vdi",
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
                "pod-security.kubernetes.io/audit": "restricted",
                "pod-security.kubernetes.io/warn": "restricted",
            },
            "annotations": {USER_ANNOTATION: user},
        },
    })
}

/// The RoleBinding that gives `user` the `vdi-user` role in their namespace.
pub fn user_role_binding(user: &str) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": USER_ROLE, "namespace": user_namespace(user)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": USER_ROLE},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns_label(s: &str) -> bool {
        !s.is_empty()
            && s.len() <= 63
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    }

    #[test]
    fn names_are_readable_stable_and_valid() {
        let alice = user_namespace("oidc:alice");
        assert!(alice.starts_with("u-alice-"), "{alice}");
        assert_eq!(alice, user_namespace("oidc:alice"));
        for user in [
            "oidc:alice",
            "oidc:Alice.Smith@Example.COM",
            "oidc:---",
            "oidc:",
            "system:serviceaccount:ns:builder",
            &format!("oidc:{}", "x".repeat(300)),
            "oidc:日本語",
        ] {
            let ns = user_namespace(user);
            assert!(dns_label(&ns), "{user:?} → {ns:?}");
        }
    }

    #[test]
    fn users_whose_readable_parts_collide_get_different_namespaces() {
        let pairs = [
            ("oidc:alice", "oidc:Alice"),
            ("oidc:a.b", "oidc:a-b"),
            ("oidc:alice", "other:alice"),
            (
                &*format!("oidc:{}a", "x".repeat(60)),
                &*format!("oidc:{}b", "x".repeat(60)),
            ),
        ];
        for (a, b) in pairs {
            assert_ne!(user_namespace(a), user_namespace(b), "{a} vs {b}");
        }
    }

    #[test]
    fn the_binding_names_the_user_in_their_namespace() {
        let rb = user_role_binding("oidc:bob");
        assert_eq!(rb["metadata"]["namespace"], user_namespace("oidc:bob"));
        assert_eq!(rb["subjects"][0]["name"], "oidc:bob");
        assert_eq!(rb["roleRef"]["name"], USER_ROLE);
        let ns = user_namespace_object("oidc:bob");
        assert_eq!(ns["metadata"]["annotations"][USER_ANNOTATION], "oidc:bob");
        assert_eq!(
            ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
            "restricted"
        );
    }
}
