//! In-process admission: what a validating/mutating webhook does on a real cluster, as a trait
//! the platform implements (its plugin chain runs here for `VDISession`).

use serde_json::Value;

use crate::error::Result;
use crate::resources::ResourceType;

/// Why admission runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A new object.
    Create,
    /// A change to an object (not to its status).
    Update,
}

/// Who sent a request: the token's identity, or the user it impersonates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    /// User name.
    pub user: String,
    /// Groups.
    pub groups: Vec<String>,
}

impl Requester {
    /// The identity of the cluster's bearer token (and of in-process callers).
    pub fn admin() -> Self {
        Self {
            user: "system:admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        }
    }
}

/// Mutates or refuses objects before they are stored.
pub trait AdmissionHook: Send + Sync {
    /// Whether this hook judges objects of `rt`.
    fn handles(&self, rt: &ResourceType) -> bool;
    /// Mutates `obj` in place, or refuses it with an error: `ApiError::Forbidden` for a policy
    /// denial (as a webhook's denial reads), `ApiError::Invalid` for a bad field. `old` is set on update;
    /// `requester` is who asked (the impersonated user, if any).
    fn admit(
        &self,
        op: Operation,
        requester: &Requester,
        rt: &ResourceType,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> Result<()>;
}
