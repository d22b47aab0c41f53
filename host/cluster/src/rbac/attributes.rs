//! What a request asks for (the authorizer's input) and the Kubernetes forbidden wording.

/// The group every authenticated identity carries.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";
/// The group of requests that carry no credentials.
pub const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";
/// The group whose members may do anything (bound to `cluster-admin`).
pub const MASTERS_GROUP: &str = "system:masters";
/// The group of every service account.
pub const SERVICE_ACCOUNTS_GROUP: &str = "system:serviceaccounts";

/// Who is asking, as authentication established it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name (`alice`, `system:serviceaccount:ns:name`).
    pub name: String,
    /// The groups the identity belongs to.
    pub groups: Vec<String>,
}

impl UserInfo {
    /// A user with the given groups.
    pub fn new(
        name: impl Into<String>,
        groups: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            name: name.into(),
            groups: groups.into_iter().map(Into::into).collect(),
        }
    }

    /// The identity of a service account's token: its user name and the groups
    /// `system:serviceaccounts`, `system:serviceaccounts:<namespace>` and `system:authenticated`.
    pub fn service_account(namespace: &str, name: &str) -> Self {
        Self::new(
            service_account_username(namespace, name),
            [
                SERVICE_ACCOUNTS_GROUP.to_owned(),
                format!("{SERVICE_ACCOUNTS_GROUP}:{namespace}"),
                AUTHENTICATED_GROUP.to_owned(),
            ],
        )
    }

    /// Whether the identity belongs to `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// The user name of a service account: `system:serviceaccount:<namespace>:<name>`.
pub fn service_account_username(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// A request for an API resource (`/api/v1/namespaces/ns/pods/p/log`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceAttributes {
    /// The API group; empty for the core group.
    pub api_group: String,
    /// The resource, plural (`pods`).
    pub resource: String,
    /// The subresource (`log`, `status`); empty for the resource itself.
    pub subresource: String,
    /// The namespace; empty for cluster-scoped resources and all-namespace lists.
    pub namespace: String,
    /// The object's name; empty for list, watch of a collection, create and deletecollection.
    pub name: String,
}

/// What a request targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An API resource.
    Resource(ResourceAttributes),
    /// A path outside the resource API (`/healthz`, `/apis`, `/metrics`).
    NonResource {
        /// The request path.
        path: String,
    },
}

/// Everything the authorizer looks at: who, which verb, on what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    /// Who is asking.
    pub user: UserInfo,
    /// The verb: `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`, `impersonate`, ... (for non-resource paths, the lower-case HTTP
    /// method, as kube-apiserver does).
    pub verb: String,
    /// The resource or path.
    pub target: Target,
}

impl Attributes {
    /// A request on a resource in `api_group`, cluster-wide and unnamed until
    /// [`Self::in_namespace`] and [`Self::named`] say otherwise. A `resource` written
    /// `pods/log` is split into resource and subresource.
    pub fn resource(user: UserInfo, verb: &str, api_group: &str, resource: &str) -> Self {
        let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
        Self {
            user,
            verb: verb.to_owned(),
            target: Target::Resource(ResourceAttributes {
                api_group: api_group.to_owned(),
                resource: resource.to_owned(),
                subresource: subresource.to_owned(),
                ..ResourceAttributes::default()
            }),
        }
    }

    /// A request on a path outside the resource API.
    pub fn non_resource(user: UserInfo, verb: &str, path: &str) -> Self {
        Self {
            user,
            verb: verb.to_owned(),
            target: Target::NonResource {
                path: path.to_owned(),
            },
        }
    }

    /// The same request in `namespace` (no effect on a non-resource request).
    #[must_use]
    pub fn in_namespace(mut self, namespace: &str) -> Self {
        if let Target::Resource(r) = &mut self.target {
            namespace.clone_into(&mut r.namespace);
        }
        self
    }

    /// The same request on the object `name` (no effect on a non-resource request).
    #[must_use]
    pub fn named(mut self, name: &str) -> Self {
        if let Target::Resource(r) = &mut self.target {
            name.clone_into(&mut r.name);
        }
        self
    }

    /// The namespace whose RoleBindings apply: empty for cluster-scoped and non-resource requests.
    pub fn namespace(&self) -> &str {
        match &self.target {
            Target::Resource(r) => &r.namespace,
            Target::NonResource { .. } => "",
        }
    }
}

/// kube-apiserver's explanation of a denial (`forbiddenMessage`):
/// `User "alice" cannot list resource "pods" in API group "" in the namespace "bob"`,
/// `... at the cluster scope`, or `User "x" cannot get path "/metrics"`.
pub fn forbidden_message(attrs: &Attributes) -> String {
    let user = &attrs.user.name;
    let verb = &attrs.verb;
    match &attrs.target {
        Target::NonResource { path } => format!("User {user:?} cannot {verb} path {path:?}"),
        Target::Resource(r) => {
            let resource = combined_resource(r);
            let group = &r.api_group;
            if r.namespace.is_empty() {
                format!(
                    "User {user:?} cannot {verb} resource {resource:?} in API group {group:?} at the cluster scope"
                )
            } else {
                let ns = &r.namespace;
                format!(
                    "User {user:?} cannot {verb} resource {resource:?} in API group {group:?} in the namespace {ns:?}"
                )
            }
        }
    }
}

/// The message of the 403 `Status` kube-apiserver answers for a denial with `reason`
/// (from [`super::Decision::Deny`]): `pods "p" is forbidden: <reason>`,
/// `vdisessions.vdi.dev is forbidden: <reason>`, or `forbidden: <reason>` for paths.
pub fn status_message(attrs: &Attributes, reason: &str) -> String {
    match &attrs.target {
        Target::NonResource { .. } => format!("forbidden: {reason}"),
        Target::Resource(r) => {
            let qualified = if r.api_group.is_empty() {
                r.resource.clone()
            } else {
                format!("{}.{}", r.resource, r.api_group)
            };
            if r.name.is_empty() {
                format!("{qualified} is forbidden: {reason}")
            } else {
                format!("{qualified} {:?} is forbidden: {reason}", r.name)
            }
        }
    }
}

/// `resource/subresource`, or the resource alone.
pub(crate) fn combined_resource(r: &ResourceAttributes) -> String {
    if r.subresource.is_empty() {
        r.resource.clone()
    } else {
        format!("{}/{}", r.resource, r.subresource)
    }
}
