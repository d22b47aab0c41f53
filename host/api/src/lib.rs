//! The VDI platform's GraphQL API (`/graphql`, `/graphql/ws`).
//!
//! Owns: checking the caller's OIDC ID token, acting for them on the Kubernetes API by
//! impersonation (so RBAC and the admission plugins decide, never the API), the schema
//! (`me`, templates, sessions with Relay cursors, the node inventory; launching, extending,
//! terminating and connecting to sessions; templates and plugins for admins; session events
//! over graphql-transport-ws), the mapping of Kubernetes' answers to GraphQL error codes, and
//! the API's limits (depth, complexity, page size, body size, per-user mutation rate, CORS).
//!
//! Does not own: serving HTTPS (the platform mounts [`router`] on its one port), connect token
//! minting (`vdi_operator::connect`), users' namespaces' shape (`vdi_crd::users`).

mod auth;
mod config;
mod error;
mod http;
mod ids;
mod limits;
mod schema;
mod state;

pub use auth::Caller;
pub use config::{
    ApiConfig, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_COMPLEXITY, DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_PAGE_SIZE, IceServer,
};
pub use error::{ApiError, Result};
pub use http::{GRAPHQL_PATH, WS_PATH, router};
pub use ids::{parse_session_id, session_id};
pub use schema::{ApiSchema, FIELD_MANAGER, QUOTA_PLUGIN, sdl};
pub use state::{ApiState, KeySource};

#[cfg(test)]
mod tests {
    /// Regenerate with `cargo run -p vdi-api --bin vdi-api-sdl > dashboard/schema.graphql`.
    #[test]
    fn committed_sdl_matches_the_code() {
        let committed = include_str!("../../../dashboard/schema.graphql");
        assert!(
            super::sdl() == committed,
            "dashboard/schema.graphql drifted from host/api: run `cargo run -p vdi-api --bin vdi-api-sdl > dashboard/schema.graphql`"
        );
    }
}
