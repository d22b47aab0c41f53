//! The GraphQL schema: queries, mutations and the subscription, with the configured depth and
//! complexity limits and introspection.

mod ctx;
pub(crate) mod hub;
mod inventory;
mod mutation;
mod page;
mod query;
mod quota;
mod settings_check;
mod subscription;
mod types;

use async_graphql::Schema;

pub use mutation::{FIELD_MANAGER, Mutation};
pub use query::{QUOTA_PLUGIN, Query};
pub use subscription::Subscription;

use crate::config::ApiConfig;

/// The API's schema type.
pub type ApiSchema = Schema<Query, Mutation, Subscription>;

/// The schema with `config`'s limits; request data (the state, the caller) is added by the
/// HTTP layer.
pub fn build(config: &ApiConfig) -> async_graphql::SchemaBuilder<Query, Mutation, Subscription> {
    let builder = Schema::build(Query, Mutation, Subscription)
        .extension(crate::error::ErrorCodes)
        .limit_depth(config.max_depth)
        .limit_complexity(config.max_complexity);
    if config.introspection {
        builder
    } else {
        builder.disable_introspection()
    }
}

/// The schema's SDL, as committed in `dashboard/schema.graphql`.
pub fn sdl() -> String {
    Schema::build(Query, Mutation, Subscription).finish().sdl()
}
