//! The streamer's HTTP server: the web player, WebSocket signalling (session token checked
//! before any offer, within `--auth-timeout-seconds`; at most `--max-connections` sockets and
//! `--max-viewers` viewers; one controlling viewer, others view-only or refused; all of them
//! branches of one shared encode), `/healthz`,
//! `/metrics` and `/activity`. Every route is served at the root and under `--base-path`.

mod media;
mod metrics;
mod viewer;

pub use metrics::Refusal;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use serde_json::json;

use crate::activity::{Activity, ActivityClock};
use crate::encoder::{CurrentEncoder, Encoder};
use crate::settings::Settings;
use crate::token::{Claims, Verifier};
use crate::webrtc::IceConfig;
use metrics::StreamMetrics;

/// The web player page.
pub const PLAYER_HTML: &str = include_str!("../web/player.html");
/// The web player script.
pub const PLAYER_JS: &str = include_str!("../web/player.js");

/// Shared by every connection.
pub struct Streamer {
    settings: Settings,
    encoder: CurrentEncoder,
    verifier: Option<Verifier>,
    ice: IceConfig,
    controller: AtomicBool,
    /// Shared encodes running (one, or two for a moment while one replaces the other).
    active_pipelines: Arc<AtomicU64>,
    media: std::sync::Mutex<media::MediaState>,
    generation: tokio::sync::watch::Sender<u64>,
    /// Open WebSockets, authenticated or not.
    sockets: Arc<AtomicU32>,
    /// Authenticated viewers.
    viewers: Arc<AtomicU32>,
    activity: ActivityClock,
    metrics: StreamMetrics,
    registry: std::sync::Mutex<Registry>,
}

/// One place in a capped count, given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot(Arc<AtomicU32>);

impl Slot {
    /// Takes a place when fewer than `max` are taken.
    pub(crate) fn take(count: &Arc<AtomicU32>, max: u32) -> Option<Self> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(count.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Streamer {
    /// A streamer with these settings and encoder; `verifier` checks session tokens (`None`
    /// refuses every viewer: a streamer without a key cannot tell who may watch).
    pub fn new(settings: Settings, encoder: Encoder, verifier: Option<Verifier>) -> Arc<Self> {
        let ice = IceConfig {
            stun: settings
                .stun
                .first()
                .map(|s| s.replacen("stun:", "stun://", 1)),
            turns: Vec::new(),
            local_addresses: settings.ice_local_addresses.clone(),
        };
        let (metrics, registry) = StreamMetrics::new();
        Arc::new(Self {
            media: std::sync::Mutex::new(media::MediaState::new(settings.clone())),
            generation: tokio::sync::watch::Sender::new(0),
            settings,
            encoder: CurrentEncoder::new(encoder),
            verifier,
            ice,
            controller: AtomicBool::new(false),
            active_pipelines: Arc::new(AtomicU64::new(0)),
            sockets: Arc::new(AtomicU32::new(0)),
            viewers: Arc::new(AtomicU32::new(0)),
            activity: ActivityClock::new(jiff::Timestamp::now()),
            metrics,
            registry: std::sync::Mutex::new(registry),
        })
    }

    /// The router: every route at the root and, with `--base-path`, under it as well (the
    /// session proxy forwards the whole path).
    pub fn router(self: &Arc<Self>) -> Router {
        let base = self.settings.base_prefix();
        let mut router = Router::new();
        let prefixes: &[&str] = if base.is_empty() { &[""] } else { &["", base] };
        for prefix in prefixes {
            router = router
                .route(&format!("{prefix}/"), get(|| async { Html(PLAYER_HTML) }))
                .route(
                    &format!("{prefix}/player.js"),
                    get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], PLAYER_JS) }),
                )
                .route(&format!("{prefix}/ws"), get(ws))
                .route(&format!("{prefix}/healthz"), get(healthz))
                .route(&format!("{prefix}/metrics"), get(metrics))
                .route(&format!("{prefix}/activity"), get(activity));
        }
        if !base.is_empty() {
            // The player finds `ws` relative to its page: it must be served from `<base>/`.
            let to = format!("{base}/");
            router = router.route(base, get(move || async move { Redirect::permanent(&to) }));
        }
        router.with_state(self.clone())
    }

    /// The activity document now.
    pub fn activity(&self) -> Activity {
        self.activity.snapshot(
            self.viewers.load(Ordering::Acquire),
            self.controller.load(Ordering::Acquire),
        )
    }

    /// The TURN server and fresh credentials for the viewer of `claims`, when TURN is
    /// configured: they expire with the stream (`stream_exp`) when that comes first.
    fn turn(&self, claims: &Claims) -> Option<(&str, crate::turn::TurnCredentials)> {
        let (turn, secret) = (
            self.settings.turn.as_deref()?,
            self.settings.turn_secret.as_deref()?,
        );
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let ttl = crate::turn::ttl(self.settings.turn_ttl_seconds, now, claims.stream_exp);
        let c = crate::turn::credentials(secret, &claims.sub, now, ttl);
        Some((turn, c))
    }

    /// ICE servers for the browser's RTCPeerConnection.
    fn ice_servers(&self, claims: &Claims) -> Vec<serde_json::Value> {
        let mut servers: Vec<serde_json::Value> = self
            .settings
            .stun
            .iter()
            .map(|s| json!({"urls": s}))
            .collect();
        if let Some((turn, c)) = self.turn(claims) {
            servers.push(json!({"urls": turn, "username": c.username, "credential": c.credential}));
        }
        servers
    }

    /// The TURN server for the streamer's own side, with credentials (GStreamer URL form).
    fn turn_url(&self, claims: &Claims) -> Option<String> {
        let (turn, c) = self.turn(claims)?;
        let hostport = turn.trim_start_matches("turn:").trim_start_matches("//");
        Some(format!(
            "turn://{}:{}@{hostport}",
            url_encode(&c.username),
            url_encode(&c.credential)
        ))
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn healthz(State(s): State<Arc<Streamer>>) -> Response {
    let body = json!({
        "encoder": s.encoder.get().element(),
        "viewers": s.metrics.viewers.get(),
        "pipelines": s.active_pipelines.load(Ordering::Relaxed),
    });
    axum::Json(body).into_response()
}

async fn activity(State(s): State<Arc<Streamer>>) -> Response {
    axum::Json(s.activity()).into_response()
}

async fn metrics(State(s): State<Arc<Streamer>>) -> Response {
    // The idle gauge is a function of the present moment: computed per scrape.
    let now = s.activity();
    s.metrics
        .idle_seconds
        .set(now.idle_seconds(jiff::Timestamp::now()));
    let mut out = String::new();
    let registry = s
        .registry
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

async fn ws(State(s): State<Arc<Streamer>>, upgrade: WebSocketUpgrade) -> Response {
    // Counted from the upgrade request on, so sockets that never authenticate count too.
    let Some(slot) = Slot::take(&s.sockets, s.settings.max_connections) else {
        s.metrics.refuse(Refusal::MaxConnections);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(crate::protocol::ServerMessage::error(
                "busy",
                format!(
                    "this session has the most connections it allows ({})",
                    s.settings.max_connections
                ),
            )),
        )
            .into_response();
    };
    upgrade
        .max_message_size(crate::protocol::MAX_MESSAGE_BYTES * 2)
        .on_upgrade(move |socket| viewer::viewer(s, socket, slot))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_taken_only_below_the_cap_and_given_back_on_drop() {
        let count = Arc::new(AtomicU32::new(0));
        let a = Slot::take(&count, 2).expect("first");
        let b = Slot::take(&count, 2).expect("second");
        assert!(Slot::take(&count, 2).is_none(), "the cap holds");
        assert_eq!(count.load(Ordering::Acquire), 2);
        drop(a);
        let c = Slot::take(&count, 2).expect("a place came free");
        drop((b, c));
        assert_eq!(count.load(Ordering::Acquire), 0);
    }
}
