//! What a session's streamer says about its use: `GET <basePath>/activity` on the desktop pod
//! (first frame, last input, viewers). The answer comes from inside the user's desktop and is
//! treated as hostile: a short timeout, a size cap, and a parse error is only logged.
//!
//! [`endpoint`] and [`parse`] are pure; [`Prober`] does the HTTP; `run_poller` polls the
//! running sessions that need it from one task, a few at a time, and when a report changed
//! (a first frame, new input) runs the session controller's check of running sessions at once
//! (which records the first frame, clears an idle warning, ...); the controller itself runs that
//! check again when a warning or the end is due.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client, ResourceExt as _};
use serde::Deserialize;
use vdi_crd::{LOCAL_ENDPOINT_ANNOTATION, SessionPhase, VDISession};

use crate::context::Context;

/// Most bytes of an `/activity` answer read.
pub const MAX_ACTIVITY_BYTES: usize = 16 * 1024;
/// How long one `/activity` request may take.
pub const ACTIVITY_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a running session is polled until its first frame.
pub const FIRST_FRAME_POLL: Duration = Duration::from_secs(2);
/// How often a running session with an idle timeout is polled after its first frame.
pub const IDLE_POLL: Duration = Duration::from_secs(30);
/// Most `/activity` requests in flight at once.
pub const POLL_CONCURRENCY: usize = 16;
/// Name of the pod port the streamer serves on.
pub const STREAMER_PORT_NAME: &str = "http";
/// Environment variable of the streamer container holding its base path.
pub const BASE_PATH_ENV: &str = "VDI_BASE_PATH";

/// The streamer's report, as `GET <basePath>/activity` answers it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    /// When the streamer started.
    pub started_at: Timestamp,
    /// When it sent its first video frame.
    #[serde(default)]
    pub first_frame_at: Option<Timestamp>,
    /// When a viewer last sent input.
    #[serde(default)]
    pub last_input_at: Option<Timestamp>,
    /// Viewers connected now.
    #[serde(default)]
    pub viewers: u32,
    /// Whether a viewer holds the controls.
    #[serde(default)]
    pub controller_connected: bool,
}

/// Parses an `/activity` answer.
pub fn parse(body: &[u8]) -> Result<Activity, String> {
    serde_json::from_slice(body).map_err(|e| format!("activity answer: {e}"))
}

/// Where the streamer of `pod` answers `/activity`: the loopback address the node agent
/// announces in [`LOCAL_ENDPOINT_ANNOTATION`] (one that is not loopback is ignored), else the
/// pod IP and the port named [`STREAMER_PORT_NAME`]; the path is the streamer container's
/// [`BASE_PATH_ENV`] plus `/activity`. `None` when the pod has no such port or no address yet.
pub fn endpoint(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let (container, port) = spec.containers.iter().find_map(|c| {
        c.ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(STREAMER_PORT_NAME))
            .map(|p| (c, p.container_port))
    })?;
    let base = container
        .env
        .iter()
        .flatten()
        .find(|e| e.name == BASE_PATH_ENV)
        .and_then(|e| e.value.as_deref())
        .unwrap_or("")
        .trim_end_matches('/');
    if !base.is_empty() && !base.starts_with('/') {
        return None;
    }
    let local = pod
        .annotations()
        .get(LOCAL_ENDPOINT_ANNOTATION)
        .and_then(|a| a.parse::<SocketAddr>().ok())
        .filter(|a| a.ip().is_loopback());
    let host = match local {
        Some(addr) => addr.to_string(),
        None => {
            let ip: std::net::IpAddr = pod.status.as_ref()?.pod_ip.as_deref()?.parse().ok()?;
            let port = u16::try_from(port).ok().filter(|p| *p > 0)?;
            SocketAddr::new(ip, port).to_string()
        }
    };
    Some(format!("http://{host}{base}/activity"))
}

/// Asks streamers for their activity over plain HTTP.
#[derive(Clone)]
pub struct Prober {
    http: HttpClient<HttpConnector, Empty<Bytes>>,
}

impl Default for Prober {
    fn default() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(ACTIVITY_TIMEOUT));
        Self {
            http: HttpClient::builder(TokioExecutor::new()).build(connector),
        }
    }
}

impl Prober {
    /// `GET url`: the parsed answer, or why there is none.
    pub async fn fetch(&self, url: &str) -> Result<Activity, String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
        let ask = async {
            let response = self
                .http
                .get(uri)
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            if !response.status().is_success() {
                return Err(format!("{url}: HTTP {}", response.status()));
            }
            let body = Limited::new(response.into_body(), MAX_ACTIVITY_BYTES)
                .collect()
                .await
                .map_err(|e| format!("{url}: {e}"))?
                .to_bytes();
            parse(&body).map_err(|e| format!("{url}: {e}"))
        };
        tokio::time::timeout(ACTIVITY_TIMEOUT, ask)
            .await
            .map_err(|_| format!("{url}: no answer within {ACTIVITY_TIMEOUT:?}"))?
    }

    /// The activity of the desktop pod `pod` of namespace `ns`.
    pub async fn fetch_pod(
        &self,
        client: &Client,
        ns: &str,
        pod: &str,
    ) -> Result<Activity, String> {
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let pod = pods
            .get_opt(pod)
            .await
            .map_err(|e| format!("pod {ns}/{pod}: {e}"))?
            .ok_or_else(|| format!("pod {ns}/{pod} is gone"))?;
        let url = endpoint(&pod)
            .ok_or_else(|| format!("pod {ns}/{} has no streamer address yet", pod.name_any()))?;
        self.fetch(&url).await
    }
}

/// The latest activity seen per session uid, shared by the poller and the reconciles.
#[derive(Default)]
pub(crate) struct Activities {
    seen: Mutex<HashMap<String, Seen>>,
}

#[derive(Clone, Copy)]
struct Seen {
    activity: Option<ActivityTimes>,
    next_poll: tokio::time::Instant,
    /// Polls that failed in a row (each doubles the wait, up to [`MAX_POLL_BACKOFF`]).
    failures: u32,
}

/// Longest wait between polls of a streamer that does not answer.
pub const MAX_POLL_BACKOFF: Duration = Duration::from_secs(60);

/// The wait before the next poll after `failures` failed polls in a row at interval `every`.
fn backoff(every: Duration, failures: u32) -> Duration {
    every
        .saturating_mul(2u32.saturating_pow(failures.min(16)))
        .min(MAX_POLL_BACKOFF.max(every))
}

/// The times of an activity report the operator acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ActivityTimes {
    pub(crate) first_frame_at: Option<Timestamp>,
    pub(crate) last_input_at: Option<Timestamp>,
}

impl From<&Activity> for ActivityTimes {
    fn from(a: &Activity) -> Self {
        Self {
            first_frame_at: a.first_frame_at,
            last_input_at: a.last_input_at,
        }
    }
}

impl Activities {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Seen>> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The last report of session `uid`.
    pub(crate) fn get(&self, uid: &str) -> Option<ActivityTimes> {
        self.lock().get(uid).and_then(|s| s.activity)
    }

    /// Records a report of session `uid`; returns whether it differs from the last one.
    pub(crate) fn record(&self, uid: &str, a: ActivityTimes, next: Duration) -> bool {
        let mut seen = self.lock();
        let next_poll = tokio::time::Instant::now() + next;
        let old = seen.insert(
            uid.to_owned(),
            Seen {
                activity: Some(a),
                next_poll,
                failures: 0,
            },
        );
        old.and_then(|o| o.activity) != Some(a)
    }

    fn due(&self, uid: &str) -> bool {
        self.lock()
            .get(uid)
            .is_none_or(|s| s.next_poll <= tokio::time::Instant::now())
    }

    /// A poll of session `uid` failed: the next one waits longer each time.
    fn postpone(&self, uid: &str, every: Duration) {
        let mut seen = self.lock();
        let now = tokio::time::Instant::now();
        let s = seen.entry(uid.to_owned()).or_insert(Seen {
            activity: None,
            next_poll: now,
            failures: 0,
        });
        s.next_poll = now + backoff(every, s.failures);
        s.failures = s.failures.saturating_add(1);
    }

    fn forget_all_but(&self, live: &std::collections::HashSet<String>) {
        self.lock().retain(|uid, _| live.contains(uid));
    }
}

/// What the poller needs of a session: the uid, where its pod is, and whether it is polled.
fn poll_target(
    session: &VDISession,
    idle_templates: &dyn Fn(&str) -> bool,
    pool_pod: &dyn Fn(&str) -> Option<String>,
) -> Option<Target> {
    let status = session.status.as_ref()?;
    if status.phase() != SessionPhase::Running || session.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let waiting_for_frame = status.timings.first_frame.is_none();
    let idle = status
        .admitted
        .as_ref()
        .is_some_and(|a| idle_templates(&a.template));
    if !waiting_for_frame && !idle {
        return None;
    }
    // A session served by the warm pool streams from the pool session's pod.
    let (namespace, pod) = match status.served_by.as_deref() {
        Some(served_by) => (vdi_crd::POOL_NAMESPACE.to_owned(), pool_pod(served_by)?),
        None => (session.namespace()?, status.pods().into_iter().next()?.name),
    };
    Some(Target {
        uid: session.uid()?,
        namespace,
        pod,
        object: ObjectRef::from_obj(session),
        every: if waiting_for_frame {
            FIRST_FRAME_POLL
        } else {
            IDLE_POLL
        },
    })
}

struct Target {
    uid: String,
    namespace: String,
    pod: String,
    object: ObjectRef<VDISession>,
    every: Duration,
}

/// Polls the running sessions that wait for their first frame (every [`FIRST_FRAME_POLL`]) or
/// have an idle timeout (every [`IDLE_POLL`]), [`POLL_CONCURRENCY`] at a time, and checks a
/// session again (`crate::session::on_activity`) when its report changed.
pub(crate) async fn run_poller(ctx: Arc<Context>) {
    let mut tick = tokio::time::interval(FIRST_FRAME_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let activities = ctx.activities.clone();
    loop {
        tick.tick().await;
        let state = ctx.sessions.state();
        let has_idle_timeout = |template: &str| {
            ctx.templates
                .get(&ObjectRef::new(template))
                .is_some_and(|t| t.spec.idle_timeout.is_some())
        };
        let pool_pod = |served_by: &str| {
            let name = vdi_crd::pool::pool_session_name(served_by)?;
            let pool = ctx
                .sessions
                .get(&ObjectRef::new(name).within(vdi_crd::POOL_NAMESPACE))?;
            Some(pool.status.as_ref()?.pods().into_iter().next()?.name)
        };
        let live = state.iter().filter_map(|s| s.uid()).collect();
        activities.forget_all_but(&live);
        let targets: Vec<Target> = state
            .iter()
            .filter_map(|s| poll_target(s, &has_idle_timeout, &pool_pod))
            .filter(|t| activities.due(&t.uid))
            .collect();
        futures::stream::iter(targets)
            .for_each_concurrent(POLL_CONCURRENCY, |t| {
                let (ctx, activities) = (&ctx, &activities);
                async move {
                    match ctx
                        .prober
                        .fetch_pod(&ctx.client, &t.namespace, &t.pod)
                        .await
                    {
                        Ok(a) => {
                            if activities.record(&t.uid, ActivityTimes::from(&a), t.every)
                                && let Some(session) = ctx.sessions.get(&t.object)
                            {
                                crate::session::on_activity(ctx, &session).await;
                            }
                        }
                        Err(e) => {
                            tracing::debug!(session = %t.object, error = %e, "no activity report");
                            activities.postpone(&t.uid, t.every);
                        }
                    }
                }
            })
            .await;
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Container, ContainerPort, EnvVar, PodSpec, PodStatus};

    use super::*;

    fn pod(annotation: Option<&str>, ip: Option<&str>, base: Option<&str>) -> Pod {
        let mut p = Pod::default();
        if let Some(a) = annotation {
            p.metadata.annotations = Some([(LOCAL_ENDPOINT_ANNOTATION.into(), a.into())].into());
        }
        p.spec = Some(PodSpec {
            containers: vec![
                Container {
                    name: "desktop".into(),
                    ..Container::default()
                },
                Container {
                    name: "streamer".into(),
                    env: base.map(|b| {
                        vec![EnvVar {
                            name: BASE_PATH_ENV.into(),
                            value: Some(b.into()),
                            ..EnvVar::default()
                        }]
                    }),
                    ports: Some(vec![ContainerPort {
                        name: Some(STREAMER_PORT_NAME.into()),
                        container_port: 8080,
                        ..ContainerPort::default()
                    }]),
                    ..Container::default()
                },
            ],
            ..PodSpec::default()
        });
        p.status = Some(PodStatus {
            pod_ip: ip.map(Into::into),
            ..PodStatus::default()
        });
        p
    }

    #[test]
    fn the_endpoint_prefers_a_loopback_announcement() {
        let base = Some("/sessions/ns/s");
        assert_eq!(
            endpoint(&pod(Some("127.0.0.1:4100"), Some("10.0.0.7"), base)).as_deref(),
            Some("http://127.0.0.1:4100/sessions/ns/s/activity")
        );
        assert_eq!(
            endpoint(&pod(Some("10.9.9.9:4100"), Some("10.0.0.7"), base)).as_deref(),
            Some("http://10.0.0.7:8080/sessions/ns/s/activity"),
            "a non-loopback announcement is not followed"
        );
        assert_eq!(
            endpoint(&pod(Some("not an address"), Some("fd00::7"), Some("/b/"))).as_deref(),
            Some("http://[fd00::7]:8080/b/activity")
        );
        assert_eq!(
            endpoint(&pod(None, Some("10.0.0.7"), None)).as_deref(),
            Some("http://10.0.0.7:8080/activity")
        );
        assert_eq!(endpoint(&pod(None, None, base)), None, "no address yet");
        assert_eq!(
            endpoint(&pod(None, Some("10.0.0.7"), Some("x@evil"))),
            None,
            "a base path that is not a path"
        );
        assert_eq!(endpoint(&Pod::default()), None);
    }

    #[test]
    fn parses_the_report_and_refuses_garbage() {
        let a = parse(
            br#"{"startedAt":"2026-12-01T12:00:00Z","firstFrameAt":"2026-12-01T12:00:02Z",
                "lastInputAt":null,"viewers":1,"controllerConnected":true,"extra":1}"#,
        )
        .expect("a report");
        assert_eq!(a.first_frame_at, "2026-12-01T12:00:02Z".parse().ok());
        assert_eq!((a.last_input_at, a.viewers), (None, 1));
        assert!(parse(b"{\"startedAt\": 5}").is_err());
        assert!(parse(b"\xff\xfe").is_err());
        assert!(parse(br#"{"startedAt":"2026-12-01T12:00:00Z","viewers":-1}"#).is_err());
    }

    #[test]
    fn an_unanswering_streamer_is_polled_less_and_less() {
        let every = FIRST_FRAME_POLL;
        assert_eq!(backoff(every, 0), every);
        assert_eq!(backoff(every, 1), every * 2);
        assert_eq!(backoff(every, 3), every * 8);
        assert_eq!(backoff(every, 40), MAX_POLL_BACKOFF);
        assert_eq!(backoff(Duration::from_secs(90), 2), Duration::from_secs(90));
    }

    #[test]
    fn records_say_when_a_report_changed() {
        let activities = Activities::default();
        let a = ActivityTimes {
            first_frame_at: None,
            last_input_at: None,
        };
        assert!(
            activities.record("u", a, Duration::ZERO),
            "the first report"
        );
        assert!(!activities.record("u", a, Duration::ZERO), "the same again");
        let b = ActivityTimes {
            first_frame_at: "2026-12-01T12:00:02Z".parse().ok(),
            ..a
        };
        assert!(activities.record("u", b, Duration::ZERO));
        assert_eq!(activities.get("u"), Some(b));
        activities.forget_all_but(&std::collections::HashSet::new());
        assert_eq!(activities.get("u"), None);
    }
}
