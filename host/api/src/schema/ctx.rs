//! What resolvers take from the request's context: the shared state and the signed-in caller.

use std::time::Instant;

use async_graphql::Context;
use kube::Client;

use crate::auth::Caller;
use crate::error::{ApiError, Result};
use crate::state::{ApiState, Inner};

/// The shared state.
pub(crate) fn state<'a>(ctx: &Context<'a>) -> Result<&'a Inner> {
    ctx.data::<ApiState>()
        .map(|s| &*s.inner)
        .map_err(|_| ApiError::internal("the API state is missing from the context"))
}

/// The signed-in caller; `UNAUTHENTICATED` when the request carried no valid token.
pub(crate) fn caller<'a>(ctx: &Context<'a>) -> Result<&'a Caller> {
    ctx.data::<Caller>().map_err(|_| {
        ApiError::Unauthenticated("sign in: send an OIDC ID token as a bearer token".into())
    })
}

/// The caller and a Kubernetes client acting as them.
pub(crate) fn acting(ctx: &Context<'_>) -> Result<(Caller, Client)> {
    let caller = caller(ctx)?;
    let client = state(ctx)?.clients.for_caller(caller)?;
    Ok((caller.clone(), client))
}

/// Takes one mutation from the caller's rate limit.
pub(crate) fn mutation(ctx: &Context<'_>) -> Result<(Caller, Client)> {
    let (caller, client) = acting(ctx)?;
    state(ctx)?
        .limiter
        .check(&caller.user, Instant::now())
        .map_err(|wait| ApiError::RateLimited {
            retry_after_secs: wait.as_secs().max(1),
        })?;
    Ok((caller, client))
}
