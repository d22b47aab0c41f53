//! One viewer's WebSocket from the upgrade to goodbye: authentication (within the timeout), the
//! viewer cap and the controller, then its media pipeline, input and statistics.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket};
use futures::{SinkExt as _, StreamExt as _};
use serde_json::json;
use tokio::sync::mpsc;

use super::{Refusal, Slot, Streamer};
use crate::adapt::Adaptation;
use crate::input::Injector;
use crate::media::Encode;
use crate::protocol::{ChannelMessage, ClientMessage, Role, ServerMessage, parse};
use crate::settings::ExtraViewers;
use crate::token::{Claims, stream_time_left};
use crate::webrtc::{IceConfig, Peer, PeerEvent};

type Sink = futures::stream::SplitSink<WebSocket, Message>;
type Stream = futures::stream::SplitStream<WebSocket>;

pub(super) fn text(m: &ServerMessage) -> Message {
    Message::Text(serde_json::to_string(m).unwrap_or_default().into())
}

/// Refuses with `code` and `message`, then closes the socket.
async fn refuse(s: &Streamer, sink: &mut Sink, why: Refusal, code: &str, message: String) {
    s.metrics.refuse(why);
    let _ = sink.send(text(&ServerMessage::error(code, message))).await;
    let _ = sink.close().await;
}

/// Waits for `hello` with a valid token; nothing else is answered before it. `None`: refused
/// (and told so) or gone.
async fn await_hello(s: &Streamer, sink: &mut Sink, stream: &mut Stream) -> Option<Claims> {
    loop {
        let Some(Ok(msg)) = stream.next().await else {
            return None;
        };
        let Message::Text(t) = msg else { continue };
        match parse(&t) {
            Ok(ClientMessage::Hello { token }) => {
                let verdict = match &s.verifier {
                    Some(v) => v.verify(&token).map_err(|e| e.to_string()),
                    None => Err("this streamer has no token key configured".into()),
                };
                return match verdict {
                    Ok(c) => Some(c),
                    Err(e) => {
                        refuse(s, sink, Refusal::Unauthorized, "unauthorized", e).await;
                        None
                    }
                };
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
    }
}

/// One viewer from hello to goodbye; `_open` is its place among the open sockets.
pub(super) async fn viewer(s: Arc<Streamer>, socket: WebSocket, _open: Slot) {
    let (mut sink, mut stream) = socket.split();
    let limit = Duration::from_secs(s.settings.auth_timeout_seconds);
    let claims = match tokio::time::timeout(limit, await_hello(&s, &mut sink, &mut stream)).await {
        Ok(Some(claims)) => claims,
        Ok(None) => return,
        Err(_) => {
            let message = format!(
                "no valid hello with a session token within {} s",
                limit.as_secs()
            );
            refuse(&s, &mut sink, Refusal::AuthTimeout, "unauthorized", message).await;
            return;
        }
    };
    let Some(_viewer) = Slot::take(&s.viewers, s.settings.max_viewers) else {
        let message = format!(
            "this session has the most viewers it allows ({})",
            s.settings.max_viewers
        );
        refuse(&s, &mut sink, Refusal::MaxViewers, "busy", message).await;
        return;
    };
    let controls = s
        .controller
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_ok();
    if !controls && s.settings.extra_viewers == ExtraViewers::Refuse {
        let message = "another viewer controls this session".to_owned();
        refuse(&s, &mut sink, Refusal::ControllerBusy, "busy", message).await;
        return;
    }
    if controls {
        // A controller connecting is activity: the session was just opened.
        s.activity.input(jiff::Timestamp::now());
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
            ice_servers: s.ice_servers(&claims),
        }))
        .await;
    let stream_left = stream_time_left(&claims);
    run_viewer(&s, &claims, controls, stream_left, &mut sink, &mut stream).await;
    if controls {
        s.controller.store(false, Ordering::Release);
    }
    s.metrics.viewers.dec();
    tracing::info!(user = %claims.sub, "viewer left");
}

/// Hangs this viewer's branch on `encode` (the running one when `None`); `renegotiate` sends a
/// fresh `welcome` first so the browser builds a new connection.
async fn start_peer(
    s: &Arc<Streamer>,
    encode: Option<Arc<Encode>>,
    ice: &IceConfig,
    claims: &Claims,
    controls: bool,
    sink: &mut Sink,
    renegotiate: bool,
) -> Option<(Peer, mpsc::UnboundedReceiver<PeerEvent>)> {
    let encode = match encode.map_or_else(|| s.acquire_encode(), Ok) {
        Ok(e) => e,
        Err(e) => {
            let _ = sink.send(text(&ServerMessage::error("pipeline", e))).await;
            return None;
        }
    };
    let (tx, events) = mpsc::unbounded_channel();
    match Peer::attach(&encode, ice, tx) {
        Ok(peer) => {
            if renegotiate {
                let welcome = ServerMessage::Welcome {
                    role: if controls {
                        Role::Controller
                    } else {
                        Role::Viewer
                    },
                    ice_servers: s.ice_servers(claims),
                };
                let _ = sink.send(text(&welcome)).await;
            }
            Some((peer, events))
        }
        Err(e) => {
            s.metrics.pipeline_failures.inc();
            let _ = sink.send(text(&ServerMessage::error("pipeline", e))).await;
            None
        }
    }
}

/// Streams to one viewer until it leaves, the pipeline gives up, or `stream_left` (the token's
/// `stream_exp`: the session's expiry) passes.
async fn run_viewer(
    s: &Arc<Streamer>,
    claims: &Claims,
    controls: bool,
    stream_left: Option<Duration>,
    sink: &mut Sink,
    stream: &mut Stream,
) {
    let mut ice = s.ice.clone();
    ice.turns.extend(s.turn_url(claims));
    let mut changes = s.media_changes();
    changes.borrow_and_update();
    let Some((mut peer, mut events)) =
        start_peer(s, None, &ice, claims, controls, sink, false).await
    else {
        return;
    };
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
    let mut last = (Instant::now(), 0u64);
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
                tracing::info!(user = %claims.sub, "session expired; closing the stream");
                let _ = sink.send(text(&ServerMessage::error("expired", "the session has expired"))).await;
                let _ = sink.close().await;
                break;
            }
            _ = tick.tick() => {
                let stats = peer.stats().await;
                // Whichever viewer asks first after a second reports the shared encoder.
                if let Some(sample) = peer.encode().sample(Duration::from_secs(1)) {
                    for t in &sample.times {
                        s.metrics.encode_seconds.observe(t.as_secs_f64());
                    }
                    if !sample.times.is_empty() {
                        encode_ms = sample.times.iter().map(Duration::as_secs_f64).sum::<f64>() * 1e3 / sample.times.len() as f64;
                    }
                    s.metrics.frames_encoded.inc_by(sample.frames);
                    s.metrics.fps.set(sample.fps);
                }
                let elapsed = last.0.elapsed().as_secs_f64().max(1e-3);
                s.metrics.sent_bitrate_kbps.set(stats.bytes_sent.saturating_sub(last.1) as f64 * 8.0 / 1000.0 / elapsed);
                last = (Instant::now(), stats.bytes_sent);
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
                // One encoder for everyone: its bitrate follows the controller's link.
                if let Some(kbps) = stats.fraction_lost.filter(|_| controls).and_then(|f| adaptation.update(f, stats.rtt_ms)) {
                    tracing::debug!(kbps, "bitrate adapted");
                    peer.encode().set_bitrate(kbps);
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
                Some(PeerEvent::FrameSent) => {
                    let now = jiff::Timestamp::now();
                    if s.activity.frame_sent(now)
                        && let Some(secs) = s.activity().first_frame_seconds()
                    {
                        s.metrics.first_frame_seconds.set(secs);
                    }
                }
                Some(PeerEvent::Input(t)) => match serde_json::from_str::<ChannelMessage>(&t) {
                    Ok(ChannelMessage::Stats { jitter_buffer_ms, rtt_ms }) => {
                        // The viewer's own view: its jitter buffer completes the latency estimate.
                        let frame = 1000.0 / f64::from(s.settings.fps.max(1));
                        s.metrics.latency_ms.set(encode_ms + rtt_ms / 2.0 + jitter_buffer_ms + frame / 2.0);
                    }
                    Ok(ChannelMessage::Clipboard { text }) => {
                        if controls {
                            s.activity.input(jiff::Timestamp::now());
                        }
                        if let Some(cb) = &clipboard {
                            match cb.set(&text) {
                                Ok(()) => clipboard_seen = Some(text),
                                Err(e) => tracing::debug!(error = %e, "clipboard not set"),
                            }
                        }
                    }
                    Ok(ChannelMessage::Resize { width, height }) if controls => {
                        s.activity.input(jiff::Timestamp::now());
                        let display = s.settings.display.clone();
                        match tokio::task::block_in_place(|| crate::resize::resize(&display, width, height)) {
                            Ok(()) => {
                                // The capture and the stream take the new size: renegotiate.
                                tracing::info!(width, height, "display resized");
                                let encode = s.resize_encode(u32::from(width & !1), u32::from(height & !1));
                                changes.borrow_and_update();
                                let encode = match encode {
                                    Ok(e) => e,
                                    Err(e) => {
                                        let _ = sink.send(text(&ServerMessage::error("pipeline", e))).await;
                                        break;
                                    }
                                };
                                match start_peer(s, Some(encode), &ice, claims, controls, sink, true).await {
                                    Some((p, ev)) => (peer, events) = (p, ev),
                                    None => break,
                                }
                                adaptation = Adaptation::new(s.settings.min_bitrate_kbps, s.settings.max_bitrate_kbps);
                            }
                            Err(e) => {
                                tracing::info!(error = %e, "resize refused");
                                let msg = json!({"type": "resize-error", "message": e});
                                let _ = peer.send(&msg.to_string());
                            }
                        }
                    }
                    Ok(ChannelMessage::Input(event)) => {
                        if controls {
                            s.activity.input(jiff::Timestamp::now());
                        }
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
                    // This viewer's branch alone: the others go on; this one reconnects.
                    s.metrics.pipeline_failures.inc();
                    let _ = sink.send(text(&ServerMessage::error("pipeline", e))).await;
                    break;
                }
                Some(PeerEvent::EncodeFailed(e)) => {
                    // Keep the viewer: move to the replacement (NVENC → CPU) and negotiate afresh
                    // on the same socket.
                    let failed = peer.encode().clone();
                    let next = s.recover_encode(&failed, &e);
                    drop(failed);
                    changes.borrow_and_update();
                    let encode = match next {
                        Ok(encode) => encode,
                        Err(e) => {
                            let _ = sink.send(text(&ServerMessage::error("pipeline", e))).await;
                            break;
                        }
                    };
                    match start_peer(s, Some(encode), &ice, claims, controls, sink, true).await {
                        Some((p, ev)) => (peer, events) = (p, ev),
                        None => break,
                    }
                    adaptation = Adaptation::new(s.settings.min_bitrate_kbps, s.settings.max_bitrate_kbps);
                }
                None => break,
            },
            Ok(()) = changes.changed() => {
                // Another viewer replaced the shared encode (resize, fallback): follow it.
                changes.borrow_and_update();
                let Ok(current) = s.acquire_encode() else { break };
                if !Arc::ptr_eq(&current, peer.encode()) {
                    match start_peer(s, Some(current), &ice, claims, controls, sink, true).await {
                        Some((p, ev)) => (peer, events) = (p, ev),
                        None => break,
                    }
                }
            }
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
}
