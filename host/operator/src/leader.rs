//! Leader election with a `coordination.k8s.io/v1` Lease, as kube-controller-manager does it:
//! one operator replica reconciles, the others wait and take over when its lease runs out.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

/// Where the lease lives and how long it holds.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This replica's identity (pod name, or host and pid).
    pub identity: String,
    /// How long a lease holds without renewal.
    pub duration: Duration,
}

impl LeaseSettings {
    /// How often the holder renews (a third of the duration).
    pub fn renew_every(&self) -> Duration {
        self.duration / 3
    }
}

/// Outcome of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// We hold the lease.
    Leader,
    /// Someone else does.
    Follower(String),
}

fn expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    let Some(renewed) = &spec.renew_time else {
        return true;
    };
    let secs = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    renewed.0 + jiff::SignedDuration::from_secs(secs) < now
}

/// Tries once to acquire or renew the lease.
pub async fn try_acquire(client: &Client, s: &LeaseSettings) -> Result<Attempt, kube::Error> {
    let api: Api<Lease> = Api::namespaced(client.clone(), &s.namespace);
    let now = Timestamp::now();
    let secs = i32::try_from(s.duration.as_secs().max(1)).unwrap_or(i32::MAX);
    match api.get_opt(&s.name).await? {
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(s.name.clone()),
                    namespace: Some(s.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(s.identity.clone()),
                    lease_duration_seconds: Some(secs),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Leader),
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    Ok(Attempt::Follower("another replica".into()))
                }
                Err(e) => Err(e),
            }
        }
        Some(mut lease) => {
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            let holder = spec.holder_identity.clone().unwrap_or_default();
            let ours = holder == s.identity;
            if !ours && !holder.is_empty() && !expired(spec, now) {
                return Ok(Attempt::Follower(holder));
            }
            if !ours {
                spec.acquire_time = Some(MicroTime(now));
                spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
                spec.holder_identity = Some(s.identity.clone());
            }
            spec.renew_time = Some(MicroTime(now));
            spec.lease_duration_seconds = Some(secs);
            // The resourceVersion makes this a compare-and-swap: two replicas cannot both win.
            match api.replace(&s.name, &PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Leader),
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    Ok(Attempt::Follower("another replica".into()))
                }
                Err(e) => Err(e),
            }
        }
    }
}

/// Waits until this replica holds the lease.
pub async fn acquire(client: &Client, s: &LeaseSettings) {
    let mut logged = String::new();
    loop {
        match try_acquire(client, s).await {
            Ok(Attempt::Leader) => {
                tracing::info!(lease = %s.name, identity = %s.identity, "became the leader");
                return;
            }
            Ok(Attempt::Follower(holder)) => {
                if holder != logged {
                    tracing::info!(lease = %s.name, %holder, "waiting for the leader's lease to run out");
                    logged = holder;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the lease"),
        }
        tokio::time::sleep(s.renew_every()).await;
    }
}

/// Renews the lease until it is lost (someone else holds it, or renewal failed for longer
/// than the lease lasts); then returns.
pub async fn hold(client: &Client, s: &LeaseSettings) {
    let mut last_renewed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(s.renew_every()).await;
        match try_acquire(client, s).await {
            Ok(Attempt::Leader) => last_renewed = tokio::time::Instant::now(),
            Ok(Attempt::Follower(holder)) => {
                tracing::warn!(%holder, "lost the lease");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot renew the lease");
                if last_renewed.elapsed() >= s.duration {
                    return;
                }
            }
        }
    }
}

/// Gives the lease up (on graceful shutdown), so another replica takes over at once.
pub async fn release(client: &Client, s: &LeaseSettings) {
    let api: Api<Lease> = Api::namespaced(client.clone(), &s.namespace);
    if let Ok(Some(mut lease)) = api.get_opt(&s.name).await
        && let Some(spec) = lease.spec.as_mut()
        && spec.holder_identity.as_deref() == Some(s.identity.as_str())
    {
        spec.holder_identity = None;
        spec.renew_time = None;
        if let Err(e) = api.replace(&s.name, &PostParams::default(), &lease).await {
            tracing::debug!(error = %e, "lease not released");
        }
    }
}
