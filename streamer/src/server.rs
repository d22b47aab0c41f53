//! The streamer's HTTP server: the web player, WebSocket signalling (session token checked
//! before any offer; one controlling viewer, others view-only or refused), `/healthz` and
//! `/metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures::{SinkExt as _, StreamExt as _};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde_json::json;
use tokio::sync::mpsc;

use crate::adapt::Adaptation;
use crate::encoder::{CurrentEncoder, Encoder, GstProbe};
use crate::input::Injector;
use crate::protocol::{ChannelMessage, ClientMessage, Role, ServerMessage, parse};
use crate::settings::{ExtraViewers, Settings};
use crate::token::{Verifier, stream_time_left};
use crate::webrtc::{IceConfig, Peer, PeerEvent};

/// The web player page.
pub const PLAYER_HTML: &str = include_str!("../web/player.html");
/// The web player script.
pub const PLAYER_JS: &str = include_str!("../web/player.js");

/// Counters and gauges `/metrics` shows (the gauges describe the latest viewer's stream).
#[derive(Debug)]
pub struct StreamMetrics {
    viewers: Gauge,
    connections: Counter,
    refused: Counter,
    input_events: Counter,
    pipeline_failures: Counter,
    frames_encoded: Counter,
    encode_seconds: Histogram,
    fps: Gauge<f64, AtomicU64>,
    target_bitrate_kbps: Gauge,
    sent_bitrate_kbps: Gauge<f64, AtomicU64>,
    rtt_ms: Gauge<f64, AtomicU64>,
    packets_lost: Gauge,
    latency_ms: Gauge<f64, AtomicU64>,
}

impl Default for StreamMetrics {
    fn default() -> Self {
        Self {
            viewers: Gauge::default(),
            connections: Counter::default(),
            refused: Counter::default(),
            input_events: Counter::default(),
            pipeline_failures: Counter::default(),
            frames_encoded: Counter::default(),
            encode_seconds: Histogram::new(exponential_buckets(0.000_25, 2.0, 14)),
            fps: Gauge::default(),
            target_bitrate_kbps: Gauge::default(),
            sent_bitrate_kbps: Gauge::default(),
            rtt_ms: Gauge::default(),
            packets_lost: Gauge::default(),
            latency_ms: Gauge::default(),
        }
    }
}

/// Shared by every connection.
pub struct Streamer {
    settings: Settings,
    encoder: CurrentEncoder,
    verifier: Option<Verifier>,
    ice: IceConfig,
    controller: AtomicBool,
    active_pipelines: AtomicU64,
    metrics: StreamMetrics,
    registry: std::sync::Mutex<Registry>,
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
        let metrics = StreamMetrics::default();
        let mut registry = Registry::with_prefix("vdi_streamer");
        registry.register("viewers", "Connected viewers", metrics.viewers.clone());
        registry.register(
            "connections",
            "Signalling connections accepted",
            metrics.connections.clone(),
        );
        registry.register(
            "refused",
            "Viewers refused (token, busy)",
            metrics.refused.clone(),
        );
        registry.register(
            "input_events",
            "Input events injected",
            metrics.input_events.clone(),
        );
        registry.register(
            "pipeline_failures",
            "Media pipelines that failed",
            metrics.pipeline_failures.clone(),
        );
        let m = &metrics;
        registry.register(
            "frames_encoded",
            "Video frames encoded",
            m.frames_encoded.clone(),
        );
        registry.register(
            "encode_seconds",
            "Time a frame spends in the encoder",
            m.encode_seconds.clone(),
        );
        registry.register(
            "fps",
            "Frames encoded per second (latest viewer)",
            m.fps.clone(),
        );
        registry.register(
            "target_bitrate_kbps",
            "Encoder bitrate the adaptation chose",
            m.target_bitrate_kbps.clone(),
        );
        registry.register(
            "sent_bitrate_kbps",
            "Bitrate actually sent",
            m.sent_bitrate_kbps.clone(),
        );
        registry.register(
            "rtt_ms",
            "Round trip to the viewer (RTCP)",
            m.rtt_ms.clone(),
        );
        registry.register(
            "packets_lost",
            "Packets the viewer reported lost",
            m.packets_lost.clone(),
        );
        registry.register(
            "glass_to_glass_estimate_ms",
            "Estimated capture-to-display latency: encode + half the round trip + the viewer's jitter buffer + half a frame",
            m.latency_ms.clone(),
        );
        Arc::new(Self {
            settings,
            encoder: CurrentEncoder::new(encoder),
            verifier,
            ice,
            controller: AtomicBool::new(false),
            active_pipelines: AtomicU64::new(0),
            metrics,
            registry: std::sync::Mutex::new(registry),
        })
    }

    /// The router.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/", get(|| async { Html(PLAYER_HTML) }))
            .route(
                "/player.js",
                get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], PLAYER_JS) }),
            )
            .route("/ws", get(ws))
            .route("/healthz", get(healthz))
            .route("/metrics", get(metrics))
            .with_state(self.clone())
    }

    /// The TURN server and fresh credentials for `user`, when TURN is configured.
    fn turn(&self, user: &str) -> Option<(&str, crate::turn::TurnCredentials)> {
        let (turn, secret) = (
            self.settings.turn.as_deref()?,
            self.settings.turn_secret.as_deref()?,
        );
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let c = crate::turn::credentials(secret, user, now, self.settings.turn_ttl_seconds);
        Some((turn, c))
    }

    /// ICE servers for the browser's RTCPeerConnection.
    fn ice_servers(&self, user: &str) -> Vec<serde_json::Value> {
        let mut servers: Vec<serde_json::Value> = self
            .settings
            .stun
            .iter()
            .map(|s| json!({"urls": s}))
            .collect();
        if let Some((turn, c)) = self.turn(user) {
            servers.push(json!({"urls": turn, "username": c.username, "credential": c.credential}));
        }
        servers
    }

    /// The TURN server for the streamer's own side, with credentials (GStreamer URL form).
    fn turn_url(&self, user: &str) -> Option<String> {
        let (turn, c) = self.turn(user)?;
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

async fn metrics(State(s): State<Arc<Streamer>>) -> Response {
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
    upgrade
        .max_message_size(crate::protocol::MAX_MESSAGE_BYTES * 2)
        .on_upgrade(move |socket| viewer(s, socket))
}

fn text(m: &ServerMessage) -> Message {
    Message::Text(serde_json::to_string(m).unwrap_or_default().into())
}

/// One viewer from hello to goodbye.
async fn viewer(s: Arc<Streamer>, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    // The token comes first; nothing else is answered before it.
    let claims = loop {
        let Some(Ok(msg)) = stream.next().await else {
            return;
        };
        let Message::Text(t) = msg else { continue };
        match parse(&t) {
            Ok(ClientMessage::Hello { token }) => {
                let verdict = match &s.verifier {
                    Some(v) => v.verify(&token).map_err(|e| e.to_string()),
                    None => Err("this streamer has no token key configured".into()),
                };
                match verdict {
                    Ok(c) => break c,
                    Err(e) => {
                        s.metrics.refused.inc();
                        let _ = sink
                            .send(text(&ServerMessage::error("unauthorized", e)))
                            .await;
                        let _ = sink.close().await;
                        return;
                    }
                }
            }
            Ok(_) => {
                let _ = sink
                    .send(text(&ServerMessage::error(
                        "unauthorized",
                        "send hello with a session token first",
                    )))
                    .await;
            }
            Err(e) => {
                let _ = sink.send(text(&e)).await;
            }
        }
    };
    let controls = s
        .controller
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_ok();
    if !controls && s.settings.extra_viewers == ExtraViewers::Refuse {
        s.metrics.refused.inc();
        let _ = sink
            .send(text(&ServerMessage::error(
                "busy",
                "another viewer controls this session",
            )))
            .await;
        let _ = sink.close().await;
        return;
    }
    let role = if controls {
        Role::Controller
    } else {
        Role::Viewer
    };
    s.metrics.connections.inc();
    s.metrics.viewers.inc();
    tracing::info!(user = %claims.sub, ?role, "viewer connected");
    let _ = sink
        .send(text(&ServerMessage::Welcome {
            role,
            ice_servers: s.ice_servers(&claims.sub),
        }))
        .await;
    let stream_left = stream_time_left(&claims);
    run_viewer(
        &s,
        &claims.sub,
        controls,
        stream_left,
        &mut sink,
        &mut stream,
    )
    .await;
    if controls {
        s.controller.store(false, Ordering::Release);
    }
    s.metrics.viewers.dec();
    tracing::info!(user = %claims.sub, "viewer left");
}

/// Starts a media pipeline with the current encoder, falling back (NVENC → CPU) when it cannot
/// start; `renegotiate` sends a fresh `welcome` first so the browser builds a new connection.
async fn start_peer(
    s: &Arc<Streamer>,
    settings: &Settings,
    ice: &IceConfig,
    user: &str,
    sink: &mut futures::stream::SplitSink<WebSocket, Message>,
    renegotiate: bool,
) -> Option<(Peer, mpsc::UnboundedReceiver<PeerEvent>)> {
    loop {
        let encoder = s.encoder.get();
        let (tx, events) = mpsc::unbounded_channel();
        match Peer::start(settings, encoder, ice, tx) {
            Ok(peer) => {
                if renegotiate {
                    let welcome = ServerMessage::Welcome {
                        role: if s.controller.load(Ordering::Acquire) {
                            Role::Controller
                        } else {
                            Role::Viewer
                        },
                        ice_servers: s.ice_servers(user),
                    };
                    let _ = sink.send(text(&welcome)).await;
                }
                return Some((peer, events));
            }
            Err(e) => {
                s.metrics.pipeline_failures.inc();
                match encoder.fallback(&GstProbe) {
                    Some(next) => {
                        tracing::warn!(error = %e, from = encoder.element(), to = next.element(), "encoder cannot start; falling back");
                        s.encoder.set(next);
                    }
                    None => {
                        let _ = sink.send(text(&ServerMessage::error("pipeline", e))).await;
                        return None;
                    }
                }
            }
        }
    }
}

/// Streams to one viewer until it leaves, the pipeline gives up, or `stream_left` (the token's
/// `stream_exp`: the session's expiry) passes.
async fn run_viewer(
    s: &Arc<Streamer>,
    user: &str,
    controls: bool,
    stream_left: Option<Duration>,
    sink: &mut futures::stream::SplitSink<WebSocket, Message>,
    stream: &mut futures::stream::SplitStream<WebSocket>,
) {
    let mut ice = s.ice.clone();
    ice.turns.extend(s.turn_url(user));
    // This viewer's own settings: a resize changes its frame size.
    let mut settings = s.settings.clone();
    let Some((mut peer, mut events)) = start_peer(s, &settings, &ice, user, sink, false).await
    else {
        return;
    };
    s.active_pipelines.fetch_add(1, Ordering::Relaxed);
    let mut injector = if controls {
        match Injector::connect(&s.settings.display) {
            Ok(i) => Some(i),
            Err(e) => {
                tracing::warn!(error = %e, "input disabled");
                None
            }
        }
    } else {
        None
    };
    let clipboard = if controls {
        crate::clipboard::Clipboard::connect(&s.settings.display)
            .map_err(|e| tracing::warn!(error = %e, "clipboard disabled"))
            .ok()
    } else {
        None
    };
    let mut clipboard_seen: Option<String> = None;
    let mut adaptation = Adaptation::new(s.settings.min_bitrate_kbps, s.settings.max_bitrate_kbps);
    s.metrics
        .target_bitrate_kbps
        .set(i64::from(adaptation.current()));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last = (Instant::now(), 0u64, 0u64);
    let mut encode_ms = 0.0;
    // No `stream_exp`: the stream lasts as long as the viewer stays.
    let stream_end = async {
        match stream_left {
            Some(left) => tokio::time::sleep(left).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stream_end);
    loop {
        tokio::select! {
            () = &mut stream_end => {
                tracing::info!(user, "session expired; closing the stream");
                let _ = sink.send(text(&ServerMessage::error("expired", "the session has expired"))).await;
                let _ = sink.close().await;
                break;
            }
            _ = tick.tick() => {
                let stats = peer.stats().await;
                let (times, frames) = peer.take_encode_times();
                for t in &times {
                    s.metrics.encode_seconds.observe(t.as_secs_f64());
                }
                if !times.is_empty() {
                    encode_ms = times.iter().map(Duration::as_secs_f64).sum::<f64>() * 1e3 / times.len() as f64;
                }
                let elapsed = last.0.elapsed().as_secs_f64().max(1e-3);
                s.metrics.frames_encoded.inc_by(frames.saturating_sub(last.2));
                s.metrics.fps.set(frames.saturating_sub(last.2) as f64 / elapsed);
                s.metrics.sent_bitrate_kbps.set(stats.bytes_sent.saturating_sub(last.1) as f64 * 8.0 / 1000.0 / elapsed);
                last = (Instant::now(), stats.bytes_sent, frames);
                if let Some(rtt) = stats.rtt_ms {
                    s.metrics.rtt_ms.set(rtt);
                }
                if let Some(lost) = stats.packets_lost {
                    s.metrics.packets_lost.set(lost);
                }
                // The desktop's clipboard, when it changed, goes to the controlling browser.
                if let Some(cb) = &clipboard {
                    let now = tokio::task::block_in_place(|| cb.get()).ok().flatten();
                    if now.is_some() && now != clipboard_seen {
                        let msg = json!({"type": "clipboard", "text": now});
                        if peer.send(&msg.to_string()).is_ok() {
                            clipboard_seen = now;
                        }
                    }
                }
                if let Some(kbps) = stats.fraction_lost.and_then(|f| adaptation.update(f, stats.rtt_ms)) {
                    tracing::debug!(kbps, "bitrate adapted");
                    peer.set_bitrate(kbps);
                    s.metrics.target_bitrate_kbps.set(i64::from(kbps));
                }
            }
            event = events.recv() => match event {
                Some(PeerEvent::Offer(sdp)) => {
                    if sink.send(text(&ServerMessage::Offer { sdp })).await.is_err() { break; }
                }
                Some(PeerEvent::Ice { mline, candidate }) => {
                    let m = ServerMessage::Ice { candidate, sdp_mline_index: mline };
                    if sink.send(text(&m)).await.is_err() { break; }
                }
                Some(PeerEvent::Input(t)) => match serde_json::from_str::<ChannelMessage>(&t) {
                    Ok(ChannelMessage::Stats { jitter_buffer_ms, rtt_ms }) => {
                        // The viewer's own view: its jitter buffer completes the latency estimate.
                        let frame = 1000.0 / f64::from(s.settings.fps.max(1));
                        s.metrics.latency_ms.set(encode_ms + rtt_ms / 2.0 + jitter_buffer_ms + frame / 2.0);
                    }
                    Ok(ChannelMessage::Clipboard { text }) => {
                        if let Some(cb) = &clipboard {
                            match cb.set(&text) {
                                Ok(()) => clipboard_seen = Some(text),
                                Err(e) => tracing::debug!(error = %e, "clipboard not set"),
                            }
                        }
                    }
                    Ok(ChannelMessage::Resize { width, height }) if controls => {
                        let display = s.settings.display.clone();
                        match tokio::task::block_in_place(|| crate::resize::resize(&display, width, height)) {
                            Ok(()) => {
                                // The capture and the stream take the new size: renegotiate.
                                tracing::info!(width, height, "display resized");
                                settings.width = u32::from(width & !1);
                                settings.height = u32::from(height & !1);
                                peer.stop();
                                match start_peer(s, &settings, &ice, user, sink, true).await {
                                    Some((p, ev)) => (peer, events) = (p, ev),
                                    None => break,
                                }
                            }
                            Err(e) => {
                                tracing::info!(error = %e, "resize refused");
                                let msg = json!({"type": "resize-error", "message": e});
                                let _ = peer.send(&msg.to_string());
                            }
                        }
                    }
                    Ok(ChannelMessage::Input(event)) => {
                        if let Some(inj) = injector.as_mut() {
                            match inj.handle(&event) {
                                Ok(()) => {
                                    s.metrics.input_events.inc();
                                }
                                Err(e) => tracing::debug!(error = %e, "input event dropped"),
                            }
                        }
                    }
                    // Resizing is the controller's; view-only viewers are ignored.
                    Ok(ChannelMessage::Resize { .. }) => {}
                    Err(e) => tracing::debug!(error = %e, "data channel message dropped"),
                },
                Some(PeerEvent::Failed(e)) => {
                    s.metrics.pipeline_failures.inc();
                    let failed = s.encoder.get();
                    let Some(next) = failed.fallback(&GstProbe) else {
                        let _ = sink.send(text(&ServerMessage::error("pipeline", e))).await;
                        break;
                    };
                    // Keep the viewer: switch encoder and negotiate afresh on the same socket.
                    tracing::warn!(error = %e, from = failed.element(), to = next.element(), "encoder failed; falling back");
                    s.encoder.set(next);
                    peer.stop();
                    match start_peer(s, &settings, &ice, user, sink, true).await {
                        Some((p, ev)) => (peer, events) = (p, ev),
                        None => break,
                    }
                    adaptation = Adaptation::new(s.settings.min_bitrate_kbps, s.settings.max_bitrate_kbps);
                }
                None => break,
            },
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(t))) => match parse(&t) {
                    Ok(ClientMessage::Answer { sdp }) => {
                        if let Err(e) = peer.set_answer(&sdp) {
                            let _ = sink.send(text(&ServerMessage::error("bad-message", e))).await;
                        }
                    }
                    Ok(ClientMessage::Ice { candidate, sdp_mline_index }) => peer.add_ice(sdp_mline_index, &candidate),
                    Ok(ClientMessage::Hello { .. }) => {
                        let _ = sink.send(text(&ServerMessage::error("bad-message", "already said hello"))).await;
                    }
                    Err(e) => { let _ = sink.send(text(&e)).await; }
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    if let Some(inj) = injector.as_mut() {
        inj.release_all();
    }
    drop(peer);
    s.active_pipelines.fetch_sub(1, Ordering::Relaxed);
}
