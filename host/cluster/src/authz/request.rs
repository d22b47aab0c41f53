//! What a request asks for, read from its method, path and query the way kube-apiserver's
//! `RequestInfoFactory` reads them: the authorizer's [`Attributes`].

use crate::rbac::{Attributes, UserInfo};

/// The attributes of `method path?query` sent by `user`. Paths under `/api/v1/` and
/// `/apis/<group>/<version>/` that name a resource are resource requests; everything else
/// (discovery, `/version`, `/healthz`, `/openapi/...`) is a non-resource request whose verb is
/// the lower-case HTTP method.
pub fn request_attributes(user: UserInfo, method: &str, path: &str, watch: bool) -> Attributes {
    let lower = method.to_ascii_lowercase();
    let non_resource = |user| Attributes::non_resource(user, &lower, path);
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (group, rest) = match parts.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return non_resource(user),
    };
    if rest.is_empty() {
        return non_resource(user);
    }
    // `namespaces/<ns>/<resource>...` is a namespaced request; `namespaces/<ns>` alone (or with
    // a subresource: `namespaces/<ns>/status`) is the namespace object itself, which RoleBindings
    // in that namespace may grant (kube-apiserver sets the namespace to the name).
    let (namespace, rest): (&str, &[&str]) = match rest {
        ["namespaces", ns, tail @ ..]
            if tail.first().is_some_and(|r| !is_namespace_subresource(r)) =>
        {
            (ns, tail)
        }
        ["namespaces", ns, ..] => (ns, rest),
        _ => ("", rest),
    };
    let (resource, name, subresource) = match rest {
        [resource] => (*resource, "", ""),
        [resource, name] => (*resource, *name, ""),
        [resource, name, sub, ..] => (*resource, *name, *sub),
        [] => return non_resource(user),
    };
    let verb = match (lower.as_str(), name.is_empty()) {
        ("get" | "head", true) if watch => "watch",
        ("get" | "head", true) => "list",
        ("get" | "head", false) if watch => "watch",
        ("get" | "head", false) => "get",
        ("post", _) => "create",
        ("put", _) => "update",
        ("patch", _) => "patch",
        ("delete", true) => "deletecollection",
        ("delete", false) => "delete",
        (other, _) => other,
    };
    let resource = if subresource.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource}/{subresource}")
    };
    Attributes::resource(user, verb, group, &resource)
        .in_namespace(namespace)
        .named(name)
}

/// The subresources of a namespace (`/api/v1/namespaces/<ns>/status`), as opposed to a
/// resource inside it.
fn is_namespace_subresource(segment: &str) -> bool {
    matches!(segment, "status" | "finalize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::{ResourceAttributes, Target};

    fn resource(method: &str, path: &str, watch: bool) -> (String, ResourceAttributes) {
        let attrs = request_attributes(UserInfo::default(), method, path, watch);
        match attrs.target {
            Target::Resource(r) => (attrs.verb, r),
            Target::NonResource { path } => panic!("{path} read as a non-resource request"),
        }
    }

    fn expect((verb, r): (String, ResourceAttributes), want: (&str, &str, &str, &str, &str, &str)) {
        assert_eq!(
            (
                verb.as_str(),
                r.api_group.as_str(),
                r.resource.as_str(),
                r.subresource.as_str(),
                r.namespace.as_str(),
                r.name.as_str()
            ),
            want
        );
    }

    #[test]
    fn resource_paths_read_as_kube_apiserver_reads_them() {
        expect(
            resource("GET", "/api/v1/namespaces/a/pods", false),
            ("list", "", "pods", "", "a", ""),
        );
        expect(
            resource("GET", "/api/v1/namespaces/a/pods", true),
            ("watch", "", "pods", "", "a", ""),
        );
        expect(
            resource("GET", "/api/v1/pods", false),
            ("list", "", "pods", "", "", ""),
        );
        expect(
            resource("GET", "/api/v1/namespaces/a/pods/p/log", false),
            ("get", "", "pods", "log", "a", "p"),
        );
        expect(
            resource(
                "PUT",
                "/apis/vdi.dev/v1alpha1/namespaces/a/vdisessions/s/status",
                false,
            ),
            ("update", "vdi.dev", "vdisessions", "status", "a", "s"),
        );
        expect(
            resource(
                "POST",
                "/apis/vdi.dev/v1alpha1/namespaces/a/vdisessions",
                false,
            ),
            ("create", "vdi.dev", "vdisessions", "", "a", ""),
        );
        expect(
            resource(
                "PATCH",
                "/apis/vdi.dev/v1alpha1/namespaces/a/vdisessions/s",
                false,
            ),
            ("patch", "vdi.dev", "vdisessions", "", "a", "s"),
        );
        expect(
            resource("DELETE", "/api/v1/namespaces/a/configmaps", false),
            ("deletecollection", "", "configmaps", "", "a", ""),
        );
        expect(
            resource("DELETE", "/api/v1/namespaces/a/configmaps/c", false),
            ("delete", "", "configmaps", "", "a", "c"),
        );
        expect(
            resource(
                "POST",
                "/api/v1/namespaces/a/serviceaccounts/default/token",
                false,
            ),
            ("create", "", "serviceaccounts", "token", "a", "default"),
        );
        expect(
            resource(
                "GET",
                "/apis/rbac.authorization.k8s.io/v1/clusterroles/view",
                false,
            ),
            (
                "get",
                "rbac.authorization.k8s.io",
                "clusterroles",
                "",
                "",
                "view",
            ),
        );
    }

    #[test]
    fn a_namespace_is_in_itself() {
        expect(
            resource("GET", "/api/v1/namespaces/a", false),
            ("get", "", "namespaces", "", "a", "a"),
        );
        expect(
            resource("PUT", "/api/v1/namespaces/a/status", false),
            ("update", "", "namespaces", "status", "a", "a"),
        );
        expect(
            resource("GET", "/api/v1/namespaces", false),
            ("list", "", "namespaces", "", "", ""),
        );
    }

    #[test]
    fn discovery_and_health_are_non_resource_requests() {
        for path in [
            "/api",
            "/api/v1",
            "/apis",
            "/apis/vdi.dev",
            "/apis/vdi.dev/v1alpha1",
            "/version",
            "/healthz",
            "/openapi/v3/apis/vdi.dev/v1alpha1",
        ] {
            let attrs = request_attributes(UserInfo::default(), "GET", path, false);
            assert_eq!(
                attrs.target,
                Target::NonResource {
                    path: path.to_owned()
                },
                "{path}"
            );
            assert_eq!(attrs.verb, "get");
        }
    }
}
